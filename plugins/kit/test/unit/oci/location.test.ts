import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {
  formatImageLocation,
  type ImageLocation,
  isFileLocation,
  parseImageLocation,
  resolveImageLocation,
} from '../../../src/oci/index.js'

describe('parseImageLocation', () => {
  it('reads the file transports, with and without an image name', () => {
    expect(parseImageLocation('oci:out/layout')).toEqual({kind: 'oci', path: 'out/layout'})
    expect(parseImageLocation('oci:out/layout:bookworm')).toEqual({kind: 'oci', path: 'out/layout', ref: 'bookworm'})
    expect(parseImageLocation('oci-archive:/tmp/a.tar')).toEqual({kind: 'oci-archive', path: '/tmp/a.tar'})
    expect(parseImageLocation('oci-archive:a.tar:1.0')).toEqual({kind: 'oci-archive', path: 'a.tar', ref: '1.0'})
    expect(parseImageLocation('docker-archive:../x.tar.zst')).toEqual({kind: 'docker-archive', path: '../x.tar.zst'})
  })

  it('ends the path at the first colon, as skopeo does: the rest names the image, colons and all', () => {
    expect(parseImageLocation('docker-archive:x.tar:app:1')).toEqual({
      kind: 'docker-archive',
      path: 'x.tar',
      ref: 'app:1',
    })
    expect(parseImageLocation('docker-archive:x.tar:localhost:5000/team/app:1')).toEqual({
      kind: 'docker-archive',
      path: 'x.tar',
      ref: 'localhost:5000/team/app:1',
    })
    // a directory named a:b cannot be written after oci: (skopeo refuses such paths too)
    expect(parseImageLocation('oci:/tmp/a:b:c')).toEqual({kind: 'oci', path: '/tmp/a', ref: 'b:c'})
  })

  it('takes an empty name as none', () => {
    expect(parseImageLocation('oci:dir:')).toEqual({kind: 'oci', path: 'dir'})
  })

  it('reads everything else as an image of an engine, and docker-daemon:REF as skopeo names one', () => {
    expect(parseImageLocation('app:1')).toEqual({kind: 'engine', ref: 'app:1'})
    expect(parseImageLocation('localhost:5000/oci:1')).toEqual({kind: 'engine', ref: 'localhost:5000/oci:1'})
    expect(parseImageLocation('ociapp')).toEqual({kind: 'engine', ref: 'ociapp'})
    expect(parseImageLocation('./out/layout')).toEqual({kind: 'engine', ref: './out/layout'})
    expect(parseImageLocation('docker-daemon:app:1')).toEqual({kind: 'engine', ref: 'app:1'})
  })

  it('refuses a transport without a path (with the caller’s error code)', () => {
    for (const value of ['oci:', 'oci::tag', 'oci-archive:', 'docker-archive::app:1', 'docker-daemon:']) {
      expect(() => parseImageLocation(value, {code: 'SOME_INPUT'}), value).toThrow(
        expect.objectContaining({code: 'SOME_INPUT', exit: 2, message: expect.stringContaining(`"${value}"`)}),
      )
    }

    expect(() => parseImageLocation('oci:')).toThrow(expect.objectContaining({code: 'IMAGE_INPUT'}))
  })
})

describe('formatImageLocation', () => {
  it('round-trips with parseImageLocation', () => {
    for (const value of [
      'oci:out/layout',
      'oci:out/layout:bookworm',
      'oci:.',
      'oci-archive:../a b.tar:1',
      'docker-archive:/tmp/x.tar:localhost:5000/app:1',
      'app:1',
      'sha256:0123456789abcdef',
      'docker-daemon:oci:1',
    ]) {
      expect(formatImageLocation(parseImageLocation(value)), value).toBe(value)
    }
  })

  it('writes an engine image whose name looks like a transport with docker-daemon:', () => {
    const location: ImageLocation = {kind: 'engine', ref: 'oci:1'}
    expect(formatImageLocation(location)).toBe('docker-daemon:oci:1')
    expect(parseImageLocation(formatImageLocation(location))).toEqual(location)
  })
})

describe('isFileLocation', () => {
  it('tells files and directories from engine images', () => {
    expect(['oci:x', 'oci-archive:x', 'docker-archive:x'].map((value) => isFileLocation(value))).toEqual([
      true,
      true,
      true,
    ])
    expect(['docker-daemon:x', 'x.tar', 'oci', 'app:1', 'OCI:x'].map((value) => isFileLocation(value))).toEqual([
      false,
      false,
      false,
      false,
      false,
    ])
  })
})

describe('resolveImageLocation', () => {
  it('makes relative paths absolute against a base directory, and leaves engine images alone', () => {
    expect(resolveImageLocation(parseImageLocation('oci:out:1'), '/work/recipes')).toEqual({
      kind: 'oci',
      path: '/work/recipes/out',
      ref: '1',
    })
    expect(resolveImageLocation(parseImageLocation('oci-archive:/abs/a.tar'), '/work')).toEqual({
      kind: 'oci-archive',
      path: '/abs/a.tar',
    })
    expect(resolveImageLocation(parseImageLocation('docker-archive:x.tar'))).toEqual({
      kind: 'docker-archive',
      path: path.resolve('x.tar'),
    })
    expect(resolveImageLocation(parseImageLocation('app:1'), '/work')).toEqual({kind: 'engine', ref: 'app:1'})
  })
})
