import {readXattrs} from '@transship/kit/native'
import {execFileSync} from 'node:child_process'
import {lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import tar from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {RootfsEntry} from '../../src/source/entry.js'

import {failure} from '../../../../test/helpers/failure.js'
import {measureLayer, writeLayer} from '../../src/pack/layer-tar.js'

const CAPABILITY = Buffer.from('0100000200200000000000000000000000000000', 'hex')
const HIGH_BYTES = Buffer.from([0x80, 0xff, 0x00, 0x0a, 0x3d, 0xc3])
const MTIME = 1_700_000_000
const LONG_PATH = `deep/${'a'.repeat(60)}/${'b'.repeat(84)}`
const LONG_NAME = `deep/${'c'.repeat(145)}`
const LONG_TARGET = `../${'t'.repeat(57)}/${'u'.repeat(59)}`
const UNICODE = 'ünï/çödé'

let work: string
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'layer-tar-test-'))
})
afterAll(async () => {
  await rm(work, {force: true, recursive: true})
})

function base(entryPath: string, type: RootfsEntry['type'], extra: Partial<RootfsEntry> = {}): RootfsEntry {
  return {gid: 0, mode: 0o755, mtime: MTIME, path: entryPath, size: 0, type, uid: 0, xattrs: new Map(), ...extra}
}

/** A regular file whose content comes through open() (or, with `whole`, through readAll() too). */
function file(entryPath: string, content: Buffer, extra: Partial<RootfsEntry> = {}, whole = false): RootfsEntry {
  const entry = base(entryPath, 'file', {
    mode: 0o644,
    open: () => Readable.from([content]),
    size: content.length,
    ...extra,
  })
  if (whole) entry.readAll = () => content
  return entry
}

function bytes(size: number, seed: number): Buffer {
  return Buffer.from(Array.from({length: size}, (_, index) => (index * 31 + seed) % 251))
}

async function* iterate(entries: RootfsEntry[]): AsyncIterable<RootfsEntry> {
  yield* entries
}

function mixed(): RootfsEntry[] {
  return [
    base('d', 'directory'),
    file('d/empty', Buffer.alloc(0)),
    file('d/one', bytes(1, 1)),
    file('d/f511', bytes(511, 2), {}, true),
    file('d/f512', bytes(512, 3)),
    file('d/f513', bytes(513, 4), {}, true),
    file('d/big', bytes(100 * 1024, 5)),
    base('d/sym', 'symlink', {linkname: 'f512', mode: 0o777}),
    base('d/hard', 'link', {linkname: 'd/f512', mode: 0o644}),
    base('d/fifo', 'fifo', {mode: 0o600}),
    base('d/null', 'character-device', {devmajor: 1, devminor: 3, mode: 0o666}),
    base('deep', 'directory'),
    base(`deep/${'a'.repeat(60)}`, 'directory'),
    file(LONG_PATH, Buffer.from('long path\n')),
    file(LONG_NAME, Buffer.from('long name\n')),
    base('deep/longlink', 'symlink', {linkname: LONG_TARGET, mode: 0o777}),
    base('ünï', 'directory'),
    file(UNICODE, Buffer.from('unicode\n')),
    file('owners', Buffer.from('owner\n'), {gid: 70_000_001, uid: 70_000_000}),
    file('mode0', Buffer.from('zero\n'), {mode: 0}),
    file('setuid', Buffer.from('suid\n'), {mode: 0o4755}),
    file('caps', Buffer.from('ping\n'), {
      mode: 0o755,
      xattrs: new Map([
        ['security.capability', CAPABILITY],
        ['user.x', HIGH_BYTES],
      ]),
    }),
  ]
}

async function layerOf(entries: RootfsEntry[]): Promise<Buffer> {
  return buffer(writeLayer(iterate(entries)))
}

/** The header blocks of a tar (every block that starts an entry, PAX headers included). */
function headers(data: Buffer): Buffer[] {
  const result: Buffer[] = []
  let offset = 0
  while (offset + 512 <= data.length) {
    const block = data.subarray(offset, offset + 512)
    if (block.every((byte) => byte === 0)) break
    result.push(block)
    const size = Number.parseInt(block.toString('ascii', 124, 135), 8)
    offset += 512 + Math.ceil(size / 512) * 512
  }

  return result
}

describe('measureLayer and writeLayer', () => {
  it('measures exactly the bytes written, and counts entries and the newest mtime', async () => {
    const entries = mixed()
    entries[1] = {...entries[1]!, mtime: MTIME + 5}
    const measure = await measureLayer(iterate(entries))
    const data = await layerOf(entries)
    expect(measure).toEqual({entries: entries.length, newestMtime: MTIME + 5, size: data.length})
    expect(data.length % 512).toBe(0)
    expect(data.subarray(-1024).every((byte) => byte === 0)).toBe(true)
    expect(await measureLayer(iterate([]))).toEqual({entries: 0, newestMtime: undefined, size: 1024})
    expect(await layerOf([])).toEqual(Buffer.alloc(1024))
  })

  it('measures without reading any content', async () => {
    const entry = base('f', 'file', {
      open() {
        throw new Error('read')
      },
      readAll() {
        throw new Error('read')
      },
      size: 10,
    })
    expect((await measureLayer(iterate([entry]))).size).toBe(512 + 512 + 1024)
  })

  it('writes the same bytes for the same entries', async () => {
    expect((await layerOf(mixed())).equals(await layerOf(mixed()))).toBe(true)
  })

  it('writes whole-second mtimes, empty user and group names, no atime or ctime', async () => {
    const data = await layerOf(mixed())
    const blocks = headers(data)
    expect(blocks.length).toBeGreaterThan(mixed().length)
    for (const block of blocks) {
      expect(block.toString('ascii', 257, 263)).toBe('ustar\0')
      expect(block.subarray(265, 329).every((byte) => byte === 0)).toBe(true)
      expect(Number.parseInt(block.toString('ascii', 136, 147), 8)).toBe(MTIME)
    }

    const text = data.toString('latin1')
    expect(text).not.toMatch(/\d+ (atime|ctime|mtime)=/)
  })

  it('writes a PAX header only where ustar cannot hold the entry', async () => {
    const plain = [base('etc', 'directory'), file('etc/hosts', Buffer.from('127.0.0.1 localhost\n'))]
    expect(headers(await layerOf(plain))).toHaveLength(2)
    const types = (entries: RootfsEntry[]) => layerOf(entries).then((data) => headers(data).map((block) => block[156]))
    const pax = 'x'.codePointAt(0)
    for (const entry of [
      file(LONG_NAME, Buffer.from('x')),
      file(UNICODE, Buffer.from('x')),
      base('l', 'symlink', {linkname: LONG_TARGET}),
      file('o', Buffer.from('x'), {uid: 70_000_000}),
      file('c', Buffer.from('x'), {xattrs: new Map([['user.x', HIGH_BYTES]])}),
    ]) {
      expect((await types([entry]))[0]).toBe(pax)
    }

    expect(await types([file(LONG_PATH, Buffer.from('x'))])).toEqual(['0'.codePointAt(0)])
  })

  it('is read back by tar-stream with every name, link name and type', async () => {
    const entries = mixed()
    const extract = tar.extract()
    const seen: Array<{linkname?: string; mode: number; name: string; size: number; type: string}> = []
    const done = (async () => {
      for await (const item of extract) {
        const {header} = item
        seen.push({
          linkname: header.linkname ?? undefined,
          mode: header.mode ?? -1,
          name: header.name,
          size: (await buffer(item as unknown as Readable)).length,
          type: header.type ?? '',
        })
      }
    })()
    extract.end(await layerOf(entries))
    await done
    expect(seen.map((item) => item.name)).toEqual(
      entries.map((entry) => (entry.type === 'directory' ? `${entry.path}/` : entry.path)),
    )
    expect(seen.map((item) => item.type)).toEqual(entries.map((entry) => entry.type))
    expect(seen.map((item) => item.size)).toEqual(entries.map((entry) => entry.size))
    expect(seen.map((item) => item.mode)).toEqual(entries.map((entry) => entry.mode))
    const links = Object.fromEntries(seen.filter((item) => item.linkname).map((item) => [item.name, item.linkname]))
    expect(links).toEqual({'d/hard': 'd/f512', 'd/sym': 'f512', 'deep/longlink': LONG_TARGET})
  })

  it('is listed by GNU tar with the xattrs', async () => {
    const layer = path.join(work, 'list.tar')
    await writeFile(layer, await layerOf(mixed()))
    const listing = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-tvvf', layer], {
      encoding: 'utf8',
    })
    for (const name of ['d/f513', LONG_PATH, LONG_NAME, `${LONG_TARGET}`, UNICODE, 'd/hard link to d/f512']) {
      expect(listing).toContain(name)
    }

    expect(listing).toMatch(/70000000\/70000001 .* owners\n/)
    expect(listing).toMatch(/x: +20 security\.capability/)
    expect(listing).toMatch(/x: +6 user\.x/)
    expect(listing).toMatch(/^-rwsr-xr-x .* setuid$/m)
    expect(listing).toMatch(/^---------- .* mode0$/m)
    expect(listing).toMatch(/^crw-rw-rw- .* 1,3 .*d\/null$/m)
  })

  it.skipIf(process.getuid?.() !== 0)(
    'is extracted by GNU tar with exact modes, owners, xattrs, hardlinks and names',
    async () => {
      const layer = path.join(work, 'extract.tar')
      const root = path.join(work, 'extracted')
      await mkdir(root)
      await writeFile(layer, await layerOf(mixed()))
      execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', layer, '-C', root])
      const at = (name: string) => path.join(root, name)
      const xattrs = readXattrs(at('caps'))
      expect(xattrs.get('security.capability')).toEqual(CAPABILITY)
      expect(xattrs.get('user.x')).toEqual(HIGH_BYTES)
      const modeOf = async (name: string) => (await lstat(at(name))).mode % 0o1_0000
      expect(await modeOf('mode0')).toBe(0)
      expect(await modeOf('setuid')).toBe(0o4755)
      expect(await modeOf('d/fifo')).toBe(0o600)
      expect((await lstat(at('d/fifo'))).isFIFO()).toBe(true)
      const device = await lstat(at('d/null'))
      expect(device.isCharacterDevice()).toBe(true)
      expect(execFileSync('stat', ['-c', '%t:%T', at('d/null')], {encoding: 'utf8'}).trim()).toBe('1:3')
      const owners = await lstat(at('owners'))
      expect([owners.uid, owners.gid]).toEqual([70_000_000, 70_000_001])
      expect((await lstat(at('d/hard'))).ino).toBe((await lstat(at('d/f512'))).ino)
      expect(await readFile(at('d/hard'))).toEqual(bytes(512, 3))
      expect(await readFile(at('d/big'))).toEqual(bytes(100 * 1024, 5))
      expect(await readFile(at('d/empty'))).toEqual(Buffer.alloc(0))
      expect(await readFile(at(LONG_PATH), 'utf8')).toBe('long path\n')
      expect(await readFile(at(LONG_NAME), 'utf8')).toBe('long name\n')
      expect(await readFile(at(UNICODE), 'utf8')).toBe('unicode\n')
      expect(await readlink(at('deep/longlink'))).toBe(LONG_TARGET)
      expect(await readlink(at('d/sym'))).toBe('f512')
      expect((await readdir(root)).sort()).toEqual(['caps', 'd', 'deep', 'mode0', 'owners', 'setuid', 'ünï'])
      expect((await lstat(at('d/one'))).mtimeMs).toBe(MTIME * 1000)
    },
  )

  it('fails with ROOTFS_CHANGED when a file yields fewer or more bytes than its size', async () => {
    const short = file('short', Buffer.from('abc'), {size: 4})
    const long = file('long', Buffer.from('abcde'), {size: 4})
    const chunked = base('chunked', 'file', {
      mode: 0o644,
      open: () => Readable.from([Buffer.from('ab'), Buffer.from('cd'), Buffer.from('ef')]),
      size: 5,
    })
    for (const entry of [short, long, chunked]) {
      const error = await failure(layerOf([file('before', Buffer.from('x')), entry]))
      expect(error).toMatchObject({code: 'ROOTFS_CHANGED'})
      expect(error.message).toContain(entry.path)
    }
  })

  it('fails with ROOTFS_CHANGED when readAll() gives another size', async () => {
    for (const content of [Buffer.from('abc'), Buffer.from('abcde')]) {
      const entry = file('whole', content, {size: 4}, true)
      expect(await failure(layerOf([entry]))).toMatchObject({code: 'ROOTFS_CHANGED'})
    }
  })
})
