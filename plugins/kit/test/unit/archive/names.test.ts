import {describe, expect, it} from 'vitest'

import {
  archiveKindFromName,
  archiveSupport,
  forPlatform,
  inRequestOrder,
} from '../../../../plugin-images/src/engine-archive.js'
import {familiarName, fullName, isLoadableTag, tagOf} from '../../../src/archive/index.js'

describe('image names in archives', () => {
  it('familiarName shortens Docker Hub names only', () => {
    expect(familiarName('docker.io/library/app:1')).toBe('app:1')
    expect(familiarName('docker.io/transship-test/app:1')).toBe('transship-test/app:1')
    expect(familiarName('index.docker.io/library/busybox:latest')).toBe('busybox:latest')
    expect(familiarName('registry.example.com/library/app:1')).toBe('registry.example.com/library/app:1')
    expect(familiarName('localhost:5000/app:1')).toBe('localhost:5000/app:1')
    expect(familiarName('app:1')).toBe('app:1')
  })

  it('fullName gives what io.containerd.image.name holds', () => {
    expect(fullName('app:1')).toBe('docker.io/library/app:1')
    expect(fullName('transship-test/app:1')).toBe('docker.io/transship-test/app:1')
    expect(fullName('corp.example/team/app')).toBe('corp.example/team/app:latest')
    expect(fullName('localhost:5000/app:2')).toBe('localhost:5000/app:2')
  })

  it('tagOf and isLoadableTag: a repository and a tag', () => {
    expect(tagOf('localhost:5000/app:2')).toBe('2')
    expect(tagOf('localhost:5000/app')).toBeUndefined()
    expect(isLoadableTag('bazel/v1/tarball:test_image_1')).toBe(true)
    expect(isLoadableTag('localhost:5000/app:2')).toBe(true)
    expect(isLoadableTag('test_image_2')).toBe(false)
    expect(isLoadableTag('App:1')).toBe(false)
    expect(isLoadableTag('app@sha256:0123')).toBe(false)
  })
})

describe('engine archive helpers', () => {
  it('archiveKindFromName: layout and compression from the file name', () => {
    expect(archiveKindFromName('app.tar')).toEqual({compression: 'none'})
    expect(archiveKindFromName('app.oci.tar')).toEqual({compression: 'none', format: 'oci'})
    expect(archiveKindFromName('app.tar.gz')).toEqual({compression: 'gzip'})
    expect(archiveKindFromName('app.tgz')).toEqual({compression: 'gzip'})
    expect(archiveKindFromName('app.oci.tar.zst')).toEqual({compression: 'zstd', format: 'oci'})
    expect(archiveKindFromName('APP.TAR.BZ2')).toEqual({compression: 'bzip2'})
    expect(archiveKindFromName('app.txz')).toEqual({compression: 'xz'})
    expect(archiveKindFromName('app.image')).toEqual({})
  })

  it('archiveSupport: what each engine generation writes and reads', () => {
    expect(archiveSupport({apiVersion: '1.41'})).toEqual({
      compressions: ['none', 'gzip', 'bzip2', 'xz'],
      formats: ['docker', 'docker+oci'],
      native: 'docker',
    })
    expect(archiveSupport({apiVersion: '1.43'}).compressions).toContain('zstd')
    expect(archiveSupport({apiVersion: '1.45'})).toEqual({
      compressions: ['none', 'gzip', 'bzip2', 'xz', 'zstd'],
      formats: ['docker', 'docker+oci', 'oci'],
      native: 'docker+oci',
    })
  })

  it('inRequestOrder: images in the order they were asked for', () => {
    const a = {configDigest: `sha256:${'a'.repeat(64)}`, repoTags: ['app:1']}
    const b = {configDigest: `sha256:${'b'.repeat(64)}`, repoTags: ['corp/tool:2']}
    const c = {configDigest: `sha256:${'c'.repeat(64)}`, repoTags: []}
    expect(inRequestOrder([a, b, c], ['cccccccccccc', 'docker.io/corp/tool:2', 'app:1'])).toEqual([c, b, a])
  })

  it("forPlatform: of the platforms of one name, the engine's", () => {
    const amd = {platform: 'linux/amd64', repoTags: ['app:1']}
    const arm = {platform: 'linux/arm64/v8', repoTags: ['app:1']}
    const other = {platform: 'linux/arm64', repoTags: ['tool:1']}
    expect(forPlatform([arm, amd, other], {arch: 'amd64', os: 'linux'})).toEqual([amd, other])
    expect(forPlatform([arm, amd], {arch: 'arm64', os: 'linux'})).toEqual([arm])
    expect(forPlatform([arm, amd], {arch: 's390x', os: 'linux'})).toEqual([arm])
  })
})
