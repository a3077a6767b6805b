import {TransshipError} from '@transship/kit'
import {
  loadNativeAddon,
  NATIVE_VERSION,
  nativeAddonFile,
  nativeStatus,
  nativeUnavailable,
  requireNative,
} from '@transship/kit/native'
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {scratch} from './helpers.js'

describe('native addon loading', () => {
  it('is built by npm install and loads', () => {
    expect(nativeStatus()).toEqual({available: true})
    expect(requireNative('anything').version).toBe(NATIVE_VERSION)
  })

  it('resolves the addon relative to the repository root', () => {
    expect(nativeAddonFile()).toBe(path.resolve('native/build/Release/transship_native.node'))
  })

  it('exports every call and the xattr flags', () => {
    const addon = requireNative('anything')
    for (const name of [
      'llistxattr',
      'lgetxattr',
      'lsetxattr',
      'lremovexattr',
      'mknod',
      'mkfifo',
      'seekData',
      'seekHole',
    ]) {
      expect(typeof addon[name as keyof typeof addon], name).toBe('function')
    }

    expect(addon.XATTR_CREATE).toBe(1)
    expect(addon.XATTR_REPLACE).toBe(2)
  })

  it('reports a missing build without throwing', () => {
    const {dir, remove} = scratch('load')
    try {
      const result = loadNativeAddon(path.join(dir, 'missing.node'))
      expect(result.addon).toBeUndefined()
      expect(result.reason).toMatch(/^the native addon (was not built|could not be built)/)
    } finally {
      remove()
    }
  })

  it('reports an addon that cannot be loaded', () => {
    const {dir, remove} = scratch('load')
    try {
      const file = path.join(dir, 'broken.node')
      writeFileSync(file, 'not a shared object')
      const result = loadNativeAddon(file)
      expect(result.addon).toBeUndefined()
      expect(result.reason).toMatch(/^the native addon could not be loaded \(.+\)$/)
    } finally {
      remove()
    }
  })

  it('says which fidelity is lost when the addon is unavailable', () => {
    const error = nativeUnavailable('xattrs and file capabilities cannot be read')
    expect(error).toBeInstanceOf(TransshipError)
    expect(error.code).toBe('NATIVE_UNAVAILABLE')
    expect(error.exit).toBe(1)
    expect(error.message).toBe(
      'xattrs and file capabilities cannot be read: the native addon was not built (npm rebuild / see native/README.md)',
    )
    expect(error.suggestions.join('\n')).toContain('npm rebuild')
  })

  it('validates arguments with TypeErrors and RangeErrors', () => {
    const addon = requireNative('anything')
    expect(() => addon.llistxattr(42 as unknown as string)).toThrow(
      expect.objectContaining({code: 'ERR_INVALID_ARG_TYPE'}),
    )
    expect(() => addon.llistxattr('a\0b')).toThrow(expect.objectContaining({code: 'ERR_INVALID_ARG_VALUE'}))
    expect(() => addon.lsetxattr('/x', 'user.a', 'text' as unknown as Buffer)).toThrow(TypeError)
    expect(() => addon.mkfifo('/x', -1)).toThrow(expect.objectContaining({code: 'ERR_OUT_OF_RANGE'}))
    expect(() => addon.seekData(0, 1.5)).toThrow(RangeError)
    expect(() => addon.seekData(-1, 0)).toThrow(RangeError)
  })

  it('encodes device numbers like fs.Stats#rdev', () => {
    const addon = requireNative('anything')
    expect(addon.makedev(1, 3)).toBe(0x1_03)
    expect(addon.major(0x1_03)).toBe(1)
    expect(addon.minor(0x1_03)).toBe(3)
    const large = addon.makedev(259, 1_048_575)
    expect(addon.major(large)).toBe(259)
    expect(addon.minor(BigInt(large))).toBe(1_048_575)
  })
})
