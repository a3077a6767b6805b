import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {formatOutput, parseOutput} from '../../src/output/targets.js'

const BASE = '/work/recipes'

describe('parseOutput', () => {
  it('parses the local engine and engine hosts', () => {
    expect(parseOutput('engine', BASE)).toEqual({host: 'local', kind: 'engine'})
    expect(parseOutput('engine:builder', BASE)).toEqual({host: 'builder', kind: 'engine'})
    expect(parseOutput('engine:ssh://deploy@host:2222', BASE)).toEqual({host: 'ssh://deploy@host:2222', kind: 'engine'})
  })

  it('resolves file outputs against the base directory', () => {
    expect(parseOutput('oci:out/debian', BASE)).toEqual({kind: 'oci', path: '/work/recipes/out/debian'})
    expect(parseOutput('oci-archive:../debian.tar', BASE)).toEqual({kind: 'oci-archive', path: '/work/debian.tar'})
    expect(parseOutput('docker-archive:/tmp/d.tar', BASE)).toEqual({kind: 'docker-archive', path: '/tmp/d.tar'})
    expect(parseOutput('oci:.', BASE)).toEqual({kind: 'oci', path: BASE})
  })

  it('resolves against the working directory by default', () => {
    expect(parseOutput('oci:out')).toEqual({kind: 'oci', path: path.resolve('out')})
  })

  it('refuses a name after the path (skopeo would read oci:a:b as the layout a, image b): the tag names the image', () => {
    for (const value of ['oci:a:b', 'oci-archive:out/x.tar:app:1', 'docker-archive:x.tar:app:1']) {
      expect(() => parseOutput(value, BASE), value).toThrow(
        expect.objectContaining({code: 'ROOTFS_OUTPUT_INVALID', message: expect.stringContaining('named by its tag')}),
      )
    }
  })

  it('refuses what is not an output', () => {
    for (const value of [
      '',
      'oci',
      'oci:',
      'oci::x',
      'docker-archive:',
      'engine:',
      'tar:x',
      'docker:foo',
      'Engine',
      ':x',
    ]) {
      let error: unknown
      try {
        parseOutput(value, BASE)
      } catch (error_) {
        error = error_
      }

      expect(error, value).toMatchObject({code: 'ROOTFS_OUTPUT_INVALID'})
      expect((error as Error).message).toContain(`"${value}"`)
    }
  })
})

describe('formatOutput', () => {
  it('writes outputs back as the user would', () => {
    expect(formatOutput({host: 'local', kind: 'engine'})).toBe('engine')
    expect(formatOutput({host: 'builder', kind: 'engine'})).toBe('engine:builder')
    expect(formatOutput({kind: 'oci', path: path.resolve('out/debian')})).toBe(`oci:${path.join('out', 'debian')}`)
    expect(formatOutput({kind: 'docker-archive', path: process.cwd()})).toBe('docker-archive:.')
  })

  it('round-trips with parseOutput', () => {
    for (const value of ['engine', 'engine:builder', 'oci:out/x', 'oci-archive:x.tar', 'docker-archive:a/b.tar']) {
      expect(formatOutput(parseOutput(value))).toBe(value)
    }
  })
})
