import {requireNative, writeXattrs} from '@transship/kit/native'
import {chmod, link, mkdir, mkdtemp, rm, symlink, utimes, writeFile} from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {buffer} from 'node:stream/consumers'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {RootfsEntry} from '../../src/source/entry.js'

import {failure} from '../../../../test/helpers/failure.js'
import {DirectorySource} from '../../src/source/directory.js'

const MTIME = 1_700_000_000
const BIG = Buffer.alloc(100 * 1024, 0x5a)

let work: string
let root: string
let server: net.Server
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'directory-source-test-'))
  root = path.join(work, 'root')
  await mkdir(root)
  const at = (name: string) => path.join(root, name)
  // created out of order: the source sorts
  await writeFile(at('z.txt'), 'z')
  await mkdir(at('b'))
  await writeFile(at('b/y'), 'y')
  await writeFile(at('h2'), 'shared')
  await link(at('h2'), at('h1'))
  await writeFile(at('é'), 'accent')
  await writeFile(at('a.txt'), 'a text')
  await writeFile(at('a-b'), 'dash')
  await mkdir(at('a'))
  await writeFile(at('a/x'), 'x')
  await writeFile(at('B'), 'upper')
  await writeFile(at('big'), BIG)
  await symlink('a.txt', at('sym'))
  requireNative('test').mkfifo(at('fifo'), 0o640)
  writeXattrs(at('a.txt'), new Map([['user.test', Buffer.from([0x00, 0x80, 0xff])]]))
  server = net.createServer()
  await new Promise<void>((resolve) => {
    server.listen(at('socket'), resolve)
  })
  await chmod(at('a.txt'), 0o4750)
  await chmod(at('b'), 0o700)
  for (const name of ['z.txt', 'b/y', 'h1', 'é', 'a.txt', 'a-b', 'a/x', 'B', 'big', 'fifo', 'a', 'b']) {
    await utimes(at(name), MTIME + 0.75, MTIME + 0.75)
  }
})
afterAll(async () => {
  await new Promise((resolve) => {
    server.close(resolve)
  })
  await rm(work, {force: true, recursive: true})
})

type Plain = Omit<RootfsEntry, 'open' | 'readAll' | 'xattrs'> & {
  content?: string
  readAll?: boolean
  xattrs: Record<string, string>
}

async function collect(source: DirectorySource): Promise<Plain[]> {
  const result: Plain[] = []
  for await (const entry of source.entries()) {
    const {open, readAll, xattrs, ...rest} = entry
    const plain: Plain = {...rest, xattrs: Object.fromEntries([...xattrs].map(([k, v]) => [k, v.toString('hex')]))}
    if (open) plain.content = (await buffer(open())).toString('latin1')
    if (readAll) {
      plain.readAll = true
      expect(readAll().toString('latin1')).toBe(plain.content)
    }

    result.push(plain)
  }

  return result
}

describe('DirectorySource', () => {
  it('walks depth first in byte order, each directory before its contents, skipping sockets', async () => {
    const skipped: string[] = []
    const log = {debug: (message: string) => skipped.push(message), info() {}, warn() {}}
    const entries = await collect(new DirectorySource(root, {log}))
    expect(entries.map((entry) => entry.path)).toEqual([
      'B',
      'a',
      'a/x',
      'a-b',
      'a.txt',
      'b',
      'b/y',
      'big',
      'fifo',
      'h1',
      'h2',
      'sym',
      'z.txt',
      'é',
    ])
    expect(skipped.join('\n')).toContain('socket')
  })

  it('yields types, modes, owners, whole-second mtimes, content, hardlinks and xattrs', async () => {
    const source = new DirectorySource(root)
    expect(source.description).toBe(`directory ${root}`)
    const entries = await collect(source)
    const byPath = new Map(entries.map((entry) => [entry.path, entry]))
    const uid = process.getuid?.() ?? 0
    expect(byPath.get('a.txt')).toMatchObject({
      content: 'a text',
      mode: 0o4750,
      mtime: MTIME,
      readAll: true,
      size: 6,
      type: 'file',
      uid,
      xattrs: {'user.test': '0080ff'},
    })
    expect(byPath.get('b')).toMatchObject({mode: 0o700, mtime: MTIME, size: 0, type: 'directory'})
    expect(byPath.get('b')).not.toHaveProperty('content')
    expect(byPath.get('h1')).toMatchObject({content: 'shared', size: 6, type: 'file'})
    expect(byPath.get('h2')).toMatchObject({linkname: 'h1', size: 0, type: 'link'})
    expect(byPath.get('h2')).not.toHaveProperty('content')
    expect(byPath.get('sym')).toMatchObject({linkname: 'a.txt', size: 0, type: 'symlink'})
    expect(byPath.get('fifo')).toMatchObject({mode: 0o640, size: 0, type: 'fifo'})
    expect(byPath.get('big')).toMatchObject({content: BIG.toString('latin1'), size: BIG.length, type: 'file'})
    expect(byPath.get('big')).not.toHaveProperty('readAll')
    expect(byPath.get('é')).toMatchObject({content: 'accent', type: 'file'})
    for (const entry of entries) {
      expect(Number.isInteger(entry.mtime)).toBe(true)
      if (entry.path !== 'a.txt') expect(entry.xattrs).toEqual({})
    }
  })

  it('yields the same entries on every pass and from a new source', async () => {
    const source = new DirectorySource(root)
    const first = await collect(source)
    expect(await collect(source)).toEqual(first)
    expect(await collect(new DirectorySource(root))).toEqual(first)
  })

  it.skipIf(process.getuid?.() !== 0)('reads device numbers', async () => {
    const dev = path.join(work, 'dev-root')
    await mkdir(dev)
    // S_IFCHR (0o20000) with mode 0o666
    requireNative('test').mknod(path.join(dev, 'null'), 0o2_0666, 1, 3)
    expect(await collect(new DirectorySource(dev))).toMatchObject([
      {devmajor: 1, devminor: 3, mode: 0o666, path: 'null', type: 'character-device'},
    ])
  })

  it('refuses a missing root or one that is not a directory', async () => {
    const missing = new DirectorySource(path.join(work, 'missing'))
    expect(await failure(collect(missing))).toMatchObject({code: 'ROOTFS_NOT_FOUND'})
    const notDirectory = new DirectorySource(path.join(root, 'z.txt'))
    expect(await failure(collect(notDirectory))).toMatchObject({code: 'ROOTFS_NOT_A_DIRECTORY'})
  })
})
