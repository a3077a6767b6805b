import {execFileSync} from 'node:child_process'
import {link, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import zlib from 'node:zlib'
import tar from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {RootfsEntry} from '../../src/source/entry.js'

import {failure} from '../../../../test/helpers/failure.js'
import {openTarballSource, type TarballSource} from '../../src/source/tarball.js'

const CAPABILITY = Buffer.from('0100000200200000000000000000000000000000', 'hex')
const MTIME = 1_700_000_000

let work: string
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tarball-source-test-'))
})
afterAll(async () => {
  await rm(work, {force: true, recursive: true})
})

interface PackEntry extends Partial<tar.Header> {
  name: string
  content?: Buffer | string
}

/** A tarball written by tar-stream. */
async function pack(entries: PackEntry[]): Promise<Buffer> {
  const packer = tar.pack()
  const out = buffer(packer as unknown as Readable)
  for (const {content, ...header} of entries) {
    const body = content === undefined ? undefined : Buffer.from(content)
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error | null) => (error ? reject(error) : resolve())
      if (body) packer.entry({mtime: new Date(MTIME * 1000), ...header, size: body.length}, body, done)
      else packer.entry({mtime: new Date(MTIME * 1000), ...header}, done)
    })
  }

  packer.finalize()
  return out
}

/** A hand-made ustar header, for what tar-stream's pack cannot write (raw pax records, odd types). */
function octal(value: number, width: number): string {
  return value.toString(8).padStart(width, '0') + '\0'
}

function header(name: string, typeflag: string, size = 0, linkname = ''): Buffer {
  const block = Buffer.alloc(512)
  block.write(name, 0, 100, 'utf8')
  block.write(octal(0o644, 7), 100, 'latin1')
  block.write(octal(0, 7), 108, 'latin1')
  block.write(octal(0, 7), 116, 'latin1')
  block.write(octal(size, 11), 124, 'latin1')
  block.write(octal(MTIME, 11), 136, 'latin1')
  block.write(typeflag, 156, 'latin1')
  block.write(linkname, 157, 100, 'utf8')
  block.write('ustar\u000000', 257, 'latin1')
  block.fill(0x20, 148, 156)
  const sum = block.reduce((total, byte) => total + byte, 0)
  block.write(octal(sum, 6) + ' ', 148, 'latin1')
  return block
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)])
}

/** A pax extended header ('x') with raw values, then the header of the entry it describes. */
function paxHeader(records: Array<[string, Buffer | string]>): Buffer {
  const body = Buffer.concat(
    records.map(([key, raw]) => {
      const value = Buffer.from(raw)
      const rest = Buffer.byteLength(` ${key}=`) + value.length + 1
      let length = rest + 1
      while (String(length).length + rest !== length) length = String(length).length + rest
      return Buffer.concat([Buffer.from(`${length} ${key}=`), value, Buffer.from('\n')])
    }),
  )
  return Buffer.concat([header('PaxHeaders/entry', 'x', body.length), padded(body)])
}

function archive(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, Buffer.alloc(1024)])
}

async function fileOf(name: string, data: Buffer): Promise<string> {
  const file = path.join(work, name)
  await writeFile(file, data)
  return file
}

type Plain = Omit<RootfsEntry, 'open' | 'xattrs'> & {content?: string; xattrs: Record<string, string>}

/** Every entry of one pass, with the content of files (hex) read through open(). */
async function collect(source: TarballSource, signal?: AbortSignal): Promise<Plain[]> {
  const result: Plain[] = []
  for await (const entry of source.entries(signal)) {
    const {open, xattrs, ...rest} = entry
    const plain: Plain = {...rest, xattrs: Object.fromEntries([...xattrs].map(([k, v]) => [k, v.toString('hex')]))}
    if (open) plain.content = (await buffer(open())).toString()
    result.push(plain)
  }

  return result
}

async function entriesOf(data: Buffer, name = 'rootfs.tar'): Promise<Plain[]> {
  const source = await openTarballSource(await fileOf(name, data))
  try {
    return await collect(source)
  } finally {
    await source.close()
  }
}

const basic: PackEntry[] = [
  {name: './', type: 'directory', mode: 0o755},
  {name: './etc', type: 'directory', mode: 0o755},
  {name: './etc/hosts', content: '127.0.0.1 localhost\n', mode: 0o644, uid: 1000, gid: 1001},
  {name: '/abs/b', content: 'absolute'},
  {name: 'usr//bin/./ping', content: 'ping', mode: 0o10_4755},
  {name: 'a/../c', content: 'resolved'},
  {name: './lib', type: 'symlink', linkname: '/usr/lib'},
  {name: './up', type: 'symlink', linkname: '../../etc/x'},
  {name: './etc/hosts.link', type: 'link', linkname: './etc/hosts'},
  {name: './dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666},
  {name: './dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660},
  {name: './run/fifo', type: 'fifo', mode: 0o600},
  {name: './tmp/', type: 'directory', mode: 0o1777},
]

const expected = [
  {path: 'etc', type: 'directory', mode: 0o755, size: 0},
  {path: 'etc/hosts', type: 'file', mode: 0o644, uid: 1000, gid: 1001, size: 20, content: '127.0.0.1 localhost\n'},
  {path: 'abs/b', type: 'file', size: 8, content: 'absolute'},
  {path: 'usr/bin/ping', type: 'file', mode: 0o4755, size: 4, content: 'ping'},
  {path: 'c', type: 'file', size: 8, content: 'resolved'},
  {path: 'lib', type: 'symlink', linkname: '/usr/lib', size: 0},
  {path: 'up', type: 'symlink', linkname: '../../etc/x', size: 0},
  {path: 'etc/hosts.link', type: 'link', linkname: 'etc/hosts', size: 0},
  {path: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666},
  {path: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660},
  {path: 'run/fifo', type: 'fifo', mode: 0o600},
  {path: 'tmp', type: 'directory', mode: 0o1777},
]

describe('openTarballSource', () => {
  it('yields the entries in order with normalised paths and their metadata', async () => {
    const entries = await entriesOf(await pack(basic))
    expect(entries).toMatchObject(expected)
    expect(
      entries.every((entry) => entry.mtime === MTIME && entry.xattrs && Object.keys(entry.xattrs).length === 0),
    ).toBe(true)
    expect(entries.find((entry) => entry.type === 'symlink')).not.toHaveProperty('content')
  })

  it('reads a gzip tarball the same, with the description of the file', async () => {
    const data = zlib.gzipSync(await pack(basic))
    const source = await openTarballSource(await fileOf('rootfs.tar.gz', data))
    expect(source.description).toBe('tarball rootfs.tar.gz')
    expect(await source.epochHint?.()).toBeUndefined()
    expect(await collect(source)).toMatchObject(expected)
    await source.close()
  })

  it('yields the same entries on every pass', async () => {
    const source = await openTarballSource(await fileOf('twice.tar.gz', zlib.gzipSync(await pack(basic))))
    const first = await collect(source)
    expect(await collect(source)).toEqual(first)
    await source.close()
  })

  it('skips content that is not read, or read in part', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 7)
    const data = await pack([
      {name: 'big', content: big},
      {name: 'half', content: big},
      {name: 'small', content: 'after'},
    ])
    const source = await openTarballSource(await fileOf('skip.tar', data))
    const seen: string[] = []
    for await (const entry of source.entries()) {
      seen.push(entry.path)
      if (entry.path === 'half') {
        const stream = entry.open!()
        const chunk = await new Promise<Buffer>((resolve) => {
          stream.once('data', resolve)
        })
        expect(chunk.length).toBeGreaterThan(0)
        stream.destroy()
      }

      if (entry.path === 'small') {
        expect((await buffer(entry.open!())).toString()).toBe('after')
        expect(() => entry.open!()).toThrow(/only once/)
      }
    }

    expect(seen).toEqual(['big', 'half', 'small'])
  })

  it('refuses a path that climbs out of the root', async () => {
    for (const name of ['../etc/passwd', './a/../../b', '/../x']) {
      const error = await failure(entriesOf(await pack([{name, content: 'x'}])))
      expect(error).toMatchObject({code: 'ROOTFS_TARBALL_UNSAFE', exit: 2})
      expect(error.message).toContain(JSON.stringify(name))
    }
  })

  it('refuses a hard link that climbs out of the root, or to an entry not seen before', async () => {
    const out = await failure(entriesOf(await pack([{name: 'a', type: 'link', linkname: '../../etc/shadow'}])))
    expect(out).toMatchObject({code: 'ROOTFS_TARBALL_UNSAFE', exit: 2})
    const missing = await failure(
      entriesOf(
        await pack([
          {name: 'a', type: 'link', linkname: 'b'},
          {name: 'b', content: 'later'},
        ]),
      ),
    )
    expect(missing).toMatchObject({code: 'ROOTFS_TARBALL_INVALID', exit: 2})
    expect(missing.message).toContain('"a"')
    const directory = await failure(
      entriesOf(
        await pack([
          {name: 'd', type: 'directory'},
          {name: 'a', type: 'link', linkname: 'd'},
        ]),
      ),
    )
    expect(directory).toMatchObject({code: 'ROOTFS_TARBALL_INVALID'})
  })

  it('refuses duplicate paths, whiteouts and unsupported entry types', async () => {
    const duplicate = await failure(
      entriesOf(
        await pack([
          {name: './etc/x', content: '1'},
          {name: 'etc/x', content: '2'},
        ]),
      ),
    )
    expect(duplicate).toMatchObject({code: 'ROOTFS_TARBALL_INVALID', exit: 2})
    expect(duplicate.message).toContain('etc/x')
    const whiteout = await failure(entriesOf(await pack([{name: 'etc/.wh.passwd', content: ''}])))
    expect(whiteout).toMatchObject({code: 'ROOTFS_TARBALL_INVALID'})
    const dumpdir = await failure(entriesOf(archive(header('./var/', 'D'))))
    expect(dumpdir).toMatchObject({code: 'ROOTFS_TARBALL_INVALID'})
    expect(dumpdir.message).toContain('./var/')
    const sparse = await failure(entriesOf(archive(header('sparse', 'S', 512), Buffer.alloc(512))))
    expect(sparse).toMatchObject({code: 'ROOTFS_TARBALL_INVALID'})
  })

  it('refuses a truncated tarball, also one cut at a header boundary', async () => {
    const data = await pack([
      {name: 'a', content: Buffer.alloc(5000, 1)},
      {name: 'b', content: 'b'},
    ])
    const half = await failure(entriesOf(data.subarray(0, 2000)))
    expect(half).toMatchObject({code: 'ARCHIVE_TRUNCATED', exit: 2})
    expect(half.message).toContain('"a"')
    // a, its data (10 blocks) and b with its data: a whole number of entries, without the end-of-archive marker
    const cut = await failure(entriesOf(data.subarray(0, 512 * 13)))
    expect(cut).toMatchObject({code: 'ARCHIVE_TRUNCATED'})
    expect(cut.message).toContain('end-of-archive marker')
    expect(await failure(entriesOf(Buffer.alloc(0)))).toMatchObject({code: 'ARCHIVE_TRUNCATED'})
    const gzipHalf = zlib.gzipSync(data)
    expect(await failure(entriesOf(gzipHalf.subarray(0, gzipHalf.length / 2)))).toMatchObject({
      code: 'ARCHIVE_TRUNCATED',
    })
  })

  it('refuses a damaged tarball', async () => {
    const data = await pack(basic)
    const gz = zlib.gzipSync(data)
    gz.writeUInt32LE((gz.readUInt32LE(gz.length - 8) + 1) % 2 ** 32, gz.length - 8) // the CRC
    const crc = await failure(entriesOf(gz, 'crc.tar.gz'))
    expect(crc).toMatchObject({code: 'ARCHIVE_CORRUPT', exit: 2})
    expect(crc.message).toContain('crc.tar.gz')
    const header = Buffer.from(data)
    header[512 * 2] = header[512 * 2] === 0x61 ? 0x62 : 0x61 // the name in the third header
    expect(await failure(entriesOf(header))).toMatchObject({code: 'ARCHIVE_CORRUPT'})
    const text = await failure(entriesOf(Buffer.from('not a tarball at all\n'.repeat(100))))
    expect(text).toMatchObject({code: 'ARCHIVE_CORRUPT'})
    expect(text.message).toContain('not a tar archive')
  })

  it('keeps binary xattr values byte-exact and applies pax uid, gid and mtime', async () => {
    const odd = Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x3d, 0x20, 0x80])
    const data = archive(
      paxHeader([
        ['SCHILY.xattr.user.odd', odd],
        ['SCHILY.xattr.security.capability', CAPABILITY],
        ['uid', '3000000'],
        ['gid', '3000001'],
        ['mtime', '1700000123.999999'],
      ]),
      header('usr/bin/ping', '0', 4),
      padded(Buffer.from('ping')),
    )
    const [entry] = await entriesOf(data)
    expect(entry).toMatchObject({
      content: 'ping',
      gid: 3_000_001,
      mtime: 1_700_000_123,
      path: 'usr/bin/ping',
      uid: 3_000_000,
    })
    expect(Object.keys(entry!.xattrs)).toEqual(['security.capability', 'user.odd'])
    expect(entry!.xattrs['security.capability']).toBe(CAPABILITY.toString('hex'))
    expect(entry!.xattrs['user.odd']).toBe(odd.toString('hex'))
  })

  it('reads a file whose name GNU tar cut to end in / (the pax path is the whole name)', async () => {
    const data = archive(
      paxHeader([['path', 'usr/lib/deep/lit.cfg']]),
      header('usr/lib/deep/', '0', 4),
      padded(Buffer.from('data')),
      header('next', '0', 1),
      padded(Buffer.from('x')),
    )
    expect(await entriesOf(data)).toMatchObject([
      {content: 'data', path: 'usr/lib/deep/lit.cfg', type: 'file'},
      {content: 'x', path: 'next', type: 'file'},
    ])
  })

  it('reads a v7 tarball (no ustar magic), as GNU tar does', async () => {
    const v7 = (block: Buffer) => {
      block.fill(0, 257, 265)
      block.fill(0x20, 148, 156)
      block.write(
        octal(
          block.reduce((total, byte) => total + byte, 0),
          6,
        ) + ' ',
        148,
        'latin1',
      )
      return block
    }

    const data = archive(v7(header('etc/', '5')), v7(header('etc/motd', '0', 5)), padded(Buffer.from('hello')))
    expect(await entriesOf(data)).toMatchObject([
      {path: 'etc', type: 'directory'},
      {content: 'hello', path: 'etc/motd', type: 'file'},
    ])
  })

  it('reads stdin (-) through a spooled copy that it removes on dispose', async () => {
    const tmpDir = await mkdtemp(path.join(work, 'spool-'))
    const data = zlib.gzipSync(await pack(basic))
    const source = await openTarballSource('-', {
      stdin: Readable.from([data.subarray(0, 100), data.subarray(100)]),
      tmpDir,
    })
    expect(source.description).toBe('tarball (stdin)')
    expect(await readdir(tmpDir)).toHaveLength(1)
    expect(await collect(source)).toMatchObject(expected)
    expect(await collect(source)).toMatchObject(expected)
    await source[Symbol.asyncDispose]()
    expect(await readdir(tmpDir)).toEqual([])
    await source.close()
  })

  it('refuses a missing file', async () => {
    expect(await failure(openTarballSource(path.join(work, 'missing.tar')))).toMatchObject({
      code: 'FILE_NOT_FOUND',
      exit: 2,
    })
    expect(await failure(openTarballSource(work))).toMatchObject({code: 'FILE_NOT_FOUND'})
  })

  it('stops when the signal aborts', async () => {
    const source = await openTarballSource(await fileOf('abort.tar', await pack(basic)))
    const controller = new AbortController()
    const reason = new Error('stop')
    const pass = (async () => {
      for await (const entry of source.entries(controller.signal)) {
        if (entry.path === 'etc/hosts') controller.abort(reason)
      }
    })()
    await expect(pass).rejects.toBe(reason)
  })

  it.skipIf(process.getuid?.() !== 0)('reads what GNU tar writes with --xattrs, gzip and zstd', async () => {
    const root = path.join(work, 'gnu-root')
    await mkdir(path.join(root, 'usr/bin'), {recursive: true})
    await writeFile(path.join(root, 'usr/bin/ping'), 'ping')
    await link(path.join(root, 'usr/bin/ping'), path.join(root, 'usr/bin/ping6'))
    await symlink('ping', path.join(root, 'usr/bin/p'))
    execFileSync('setfattr', [
      '-n',
      'security.capability',
      '-v',
      `0x${CAPABILITY.toString('hex')}`,
      `${root}/usr/bin/ping`,
    ])
    for (const dir of ['usr/bin', 'usr', '.']) await utimes(path.join(root, dir), MTIME, MTIME)
    const args = ['--xattrs', '--xattrs-include=*', '--sort=name', '-C', root]
    execFileSync('tar', [...args, '-czf', path.join(work, 'gnu.tar.gz'), '.'])
    const expectedGnu = [
      {path: 'usr', type: 'directory', mtime: MTIME},
      {path: 'usr/bin', type: 'directory', mtime: MTIME},
      {path: 'usr/bin/p', type: 'symlink', linkname: 'ping'},
      {
        content: 'ping',
        path: 'usr/bin/ping',
        type: 'file',
        xattrs: {'security.capability': CAPABILITY.toString('hex')},
      },
      {linkname: 'usr/bin/ping', path: 'usr/bin/ping6', type: 'link'},
    ]
    const gnu = await openTarballSource(path.join(work, 'gnu.tar.gz'))
    expect(await collect(gnu)).toMatchObject(expectedGnu)
    let zstd = true
    try {
      execFileSync('tar', [...args, '--zstd', '-cf', path.join(work, 'gnu.tar.zst'), '.'])
    } catch {
      zstd = false
    }

    if (zstd) expect(await collect(await openTarballSource(path.join(work, 'gnu.tar.zst')))).toMatchObject(expectedGnu)
  })
})
