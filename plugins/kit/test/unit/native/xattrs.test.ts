import {readXattrs, writeXattrs} from '@transship/kit/native'
import {copyFileSync, lstatSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {addon, isRoot, scratch, tool} from './helpers.js'

/** A v2 file capability blob (VFS_CAP_REVISION_2, effective) for cap_net_raw+ep. */
const CAP_NET_RAW_EP = Buffer.from([
  0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00,
])

/** A binary value with NUL bytes inside and at both ends. */
const BINARY = Buffer.from([0x00, 0x01, 0x00, 0xff, 0x7f, 0x00, 0x80, 0x00])

let dir: string
let remove: () => void
let file: string
beforeEach(() => {
  ;({dir, remove} = scratch('xattrs'))
  file = path.join(dir, 'file')
  writeFileSync(file, 'content')
})
afterEach(() => remove())

describe('extended attributes', () => {
  it('sets, reads back, lists and removes a binary user.* attribute', () => {
    const native = addon()
    expect(native.llistxattr(file)).toEqual([])
    native.lsetxattr(file, 'user.test', BINARY)
    native.lsetxattr(file, 'user.other', Buffer.from('second'))

    expect(native.lgetxattr(file, 'user.test')).toEqual(BINARY)
    expect(native.llistxattr(file).sort()).toEqual(['user.other', 'user.test'])

    native.lremovexattr(file, 'user.test')
    expect(native.llistxattr(file)).toEqual(['user.other'])
    expect(() => native.lgetxattr(file, 'user.test')).toThrow(
      expect.objectContaining({attribute: 'user.test', code: 'ENODATA', path: file, syscall: 'lgetxattr'}),
    )
  })

  it('agrees with getfattr/setfattr when they are installed', () => {
    const native = addon()
    native.lsetxattr(file, 'user.test', BINARY)
    const dumped = tool('getfattr', ['--absolute-names', '-n', 'user.test', '-e', 'hex', file])
    if (dumped !== undefined) expect(dumped).toContain(`user.test=0x${BINARY.toString('hex')}`)

    if (tool('setfattr', ['-n', 'user.fromtool', '-v', '0x00ff00', file]) !== undefined) {
      expect(native.lgetxattr(file, 'user.fromtool')).toEqual(Buffer.from([0x00, 0xff, 0x00]))
    }
  })

  it('round-trips empty and large values and accepts a Uint8Array', () => {
    const native = addon()
    native.lsetxattr(file, 'user.empty', Buffer.alloc(0))
    expect(native.lgetxattr(file, 'user.empty')).toEqual(Buffer.alloc(0))

    const large = Buffer.alloc(3000, 0xab)
    native.lsetxattr(file, 'user.large', new Uint8Array(large))
    expect(native.lgetxattr(file, 'user.large')).toEqual(large)

    const view = new Uint8Array([9, 8, 7, 6, 5]).subarray(1, 4)
    native.lsetxattr(file, 'user.view', view)
    expect(native.lgetxattr(file, 'user.view')).toEqual(Buffer.from([8, 7, 6]))
  })

  it('honours XATTR_CREATE and XATTR_REPLACE', () => {
    const native = addon()
    expect(() => native.lsetxattr(file, 'user.flag', Buffer.from('a'), native.XATTR_REPLACE)).toThrow(
      expect.objectContaining({code: 'ENODATA'}),
    )
    native.lsetxattr(file, 'user.flag', Buffer.from('a'), native.XATTR_CREATE)
    expect(() => native.lsetxattr(file, 'user.flag', Buffer.from('b'), native.XATTR_CREATE)).toThrow(
      expect.objectContaining({code: 'EEXIST'}),
    )
    native.lsetxattr(file, 'user.flag', Buffer.from('c'), native.XATTR_REPLACE)
    expect(native.lgetxattr(file, 'user.flag').toString()).toBe('c')
  })

  it('throws fs-like errors for a missing file', () => {
    const native = addon()
    const missing = path.join(dir, 'missing')
    for (const call of [
      () => native.llistxattr(missing),
      () => native.lgetxattr(missing, 'user.test'),
      () => native.lsetxattr(missing, 'user.test', BINARY),
      () => native.lremovexattr(missing, 'user.test'),
    ]) {
      let thrown: unknown
      try {
        call()
      } catch (error) {
        thrown = error
      }

      expect(thrown).toBeInstanceOf(Error)
      expect(thrown).toMatchObject({code: 'ENOENT', errno: -2, path: missing})
      expect((thrown as Error).message).toMatch(/^ENOENT: .*, l\w+xattr '.*missing'/)
    }
  })

  it('works on a symlink itself, never on its target', () => {
    const native = addon()
    const link = path.join(dir, 'link')
    symlinkSync(file, link)
    native.lsetxattr(file, 'user.test', BINARY)

    expect(native.llistxattr(link)).not.toContain('user.test')
    expect(() => native.lgetxattr(link, 'user.test')).toThrow(expect.objectContaining({code: 'ENODATA'}))
    // Linux allows user.* attributes only on regular files and directories
    expect(() => native.lsetxattr(link, 'user.test', BINARY)).toThrow(
      expect.objectContaining({code: 'EPERM', path: link, syscall: 'lsetxattr'}),
    )
    expect(native.lgetxattr(file, 'user.test')).toEqual(BINARY)
  })

  it('takes paths that are not valid UTF-8 as Buffers', () => {
    const native = addon()
    const name = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x66, 0xff, 0xfe])])
    writeFileSync(name, 'x')
    native.lsetxattr(name, 'user.test', BINARY)
    expect(native.llistxattr(name)).toEqual(['user.test'])
    expect(native.lgetxattr(name, 'user.test')).toEqual(BINARY)
  })

  it.skipIf(!isRoot)('round-trips a security.capability blob on a copy of a file (root)', () => {
    const native = addon()
    const copy = path.join(dir, 'true')
    copyFileSync('/bin/true', copy)
    native.lsetxattr(copy, 'security.capability', CAP_NET_RAW_EP)
    expect(native.lgetxattr(copy, 'security.capability')).toEqual(CAP_NET_RAW_EP)
    expect(native.llistxattr(copy)).toContain('security.capability')

    const shown = tool('getcap', [copy])
    if (shown !== undefined) expect(shown).toMatch(/cap_net_raw[=+]ep/)
  })

  it('round-trips a POSIX access ACL', () => {
    const native = addon()
    // version 2, then (tag, perm, id) entries: USER_OBJ rw, USER 1000 r, GROUP_OBJ r, MASK r, OTHER none
    const entry = (tag: number, perm: number, id = 0xff_ff_ff_ff) => {
      const bytes = Buffer.alloc(8)
      bytes.writeUInt16LE(tag, 0)
      bytes.writeUInt16LE(perm, 2)
      bytes.writeUInt32LE(id, 4)
      return bytes
    }

    const version = Buffer.alloc(4)
    version.writeUInt32LE(2)
    const acl = Buffer.concat([
      version,
      entry(0x01, 6),
      entry(0x02, 4, 1000),
      entry(0x04, 4),
      entry(0x10, 4),
      entry(0x20, 0),
    ])
    try {
      native.lsetxattr(file, 'system.posix_acl_access', acl)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOTSUP') return // mounted without ACL support
      throw error
    }

    expect(native.lgetxattr(file, 'system.posix_acl_access')).toEqual(acl)
    // eslint-disable-next-line no-bitwise -- the permission bits
    expect(lstatSync(file).mode & 0o777).toBe(0o640) // the mask became the group bits
  })
})

describe('readXattrs / writeXattrs', () => {
  it('reads every attribute in name order and writes them back to another file', () => {
    const native = addon()
    native.lsetxattr(file, 'user.b', Buffer.from('2'))
    native.lsetxattr(file, 'user.a', BINARY)
    const xattrs = readXattrs(file)
    expect([...xattrs.keys()]).toEqual(['user.a', 'user.b'])
    expect(xattrs.get('user.a')).toEqual(BINARY)

    const other = path.join(dir, 'other')
    writeFileSync(other, '')
    native.lsetxattr(other, 'user.stale', Buffer.from('x'))
    writeXattrs(other, xattrs)
    expect(readXattrs(other)).toEqual(new Map([...xattrs, ['user.stale', Buffer.from('x')]]))

    writeXattrs(other, xattrs, {exact: true})
    expect(readXattrs(other)).toEqual(xattrs)
  })

  it('reads nothing from a file without attributes', () => {
    expect(readXattrs(file)).toEqual(new Map())
  })
})
