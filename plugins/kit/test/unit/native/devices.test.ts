/* eslint-disable no-bitwise -- file modes are bit fields */
import {constants, lstatSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {addon, isRoot, scratch} from './helpers.js'

const {S_IFBLK, S_IFCHR} = constants

let dir: string
let remove: () => void
beforeEach(() => {
  ;({dir, remove} = scratch('devices'))
})
afterEach(() => remove())

describe('mknod', () => {
  it.skipIf(!isRoot)('creates a character device like /dev/null with the exact mode (root)', () => {
    const native = addon()
    const node = path.join(dir, 'null')
    native.mknod(node, S_IFCHR | 0o666, 1, 3)
    const stats = lstatSync(node)
    expect(stats.isCharacterDevice()).toBe(true)
    expect(stats.rdev).toBe(native.makedev(1, 3))
    expect(native.major(stats.rdev)).toBe(1)
    expect(native.minor(stats.rdev)).toBe(3)
    expect(stats.mode & 0o7777).toBe(0o666) // not narrowed by the umask
  })

  it.skipIf(!isRoot)('creates a block device (root)', () => {
    const native = addon()
    const node = path.join(dir, 'loop0')
    native.mknod(node, S_IFBLK | 0o660, 7, 0)
    const stats = lstatSync(node)
    expect(stats.isBlockDevice()).toBe(true)
    expect(native.major(stats.rdev)).toBe(7)
    expect(native.minor(stats.rdev)).toBe(0)
    expect(stats.mode & 0o7777).toBe(0o660)
  })

  it('throws EEXIST for an existing path', () => {
    const native = addon()
    const existing = path.join(dir, 'existing')
    writeFileSync(existing, '')
    expect(() => native.mknod(existing, S_IFCHR | 0o666, 1, 3)).toThrow(
      expect.objectContaining({code: 'EEXIST', path: existing, syscall: 'mknod'}),
    )
  })
})

describe('mkfifo', () => {
  it('creates a FIFO with the exact mode', () => {
    const native = addon()
    const fifo = path.join(dir, 'fifo')
    native.mkfifo(fifo, 0o672)
    const stats = lstatSync(fifo)
    expect(stats.isFIFO()).toBe(true)
    expect(stats.mode & 0o7777).toBe(0o672)
  })

  it('throws fs-like errors', () => {
    const native = addon()
    const missing = path.join(dir, 'no', 'fifo')
    expect(() => native.mkfifo(missing, 0o644)).toThrow(
      expect.objectContaining({code: 'ENOENT', errno: -2, path: missing, syscall: 'mkfifo'}),
    )
  })
})
