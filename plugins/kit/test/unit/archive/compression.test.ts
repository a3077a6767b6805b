import {randomBytes} from 'node:crypto'
import {PassThrough, Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {afterEach, describe, expect, it} from 'vitest'

import {fixture, readAll} from '../../../../../test/helpers/archive-fixtures.js'
import {
  ArchiveError,
  type Compression,
  compressor,
  decompressed,
  decompressor,
  detectCompression,
  hasCommand,
  peek,
  requireCompressor,
  tap,
} from '../../../src/archive/index.js'
import {UsageError} from '../../../src/errors.js'

const COMMANDS = {bzip2: 'bzip2', xz: 'xz', zstd: 'zstd'} as const
const kinds = ['gzip', 'zstd', 'bzip2', 'xz'] as const
// compressible, but not trivially: a tar of text plus some noise
const sample = Buffer.concat([Buffer.from('transship '.repeat(50_000)), randomBytes(100_000)])

async function compress(kind: Exclude<Compression, 'none'>, data: Buffer, level?: number): Promise<Buffer> {
  const out = new PassThrough()
  const collected = readAll(out)
  await pipeline(Readable.from([data]), compressor(kind, {level}), out)
  return collected
}

async function available(kind: (typeof kinds)[number]): Promise<boolean> {
  return kind === 'gzip' || hasCommand(COMMANDS[kind])
}

describe('detectCompression', () => {
  it('knows no compression in a tar or a text', async () => {
    expect(detectCompression((await readAll(fixture('test_image_1.tar'))).subarray(0, 10))).toBe('none')
    expect(detectCompression(Buffer.from('BZh9 is not enough'))).toBe('none')
    expect(detectCompression(Buffer.alloc(0))).toBe('none')
  })

  for (const kind of kinds) {
    it(`recognises ${kind} by its magic bytes`, async (context) => {
      if (!(await available(kind))) context.skip()
      expect(detectCompression((await compress(kind, sample)).subarray(0, 10))).toBe(kind)
    })
  }
})

describe('compressor and decompressed', () => {
  for (const kind of kinds) {
    it(`round-trips ${kind}`, async (context) => {
      if (!(await available(kind))) context.skip()
      const packed = await compress(kind, sample)
      expect(packed.length).toBeLessThan(sample.length)
      const {compression, stream} = await decompressed(Readable.from([packed]))
      expect(compression).toBe(kind)
      expect((await readAll(stream)).equals(sample)).toBe(true)
    })

    it(`reports ${kind} data cut short as ARCHIVE_TRUNCATED`, async (context) => {
      if (!(await available(kind))) context.skip()
      const packed = await compress(kind, sample)
      const {stream} = await decompressed(Readable.from([packed.subarray(0, Math.floor(packed.length / 2))]))
      const error = await readAll(stream).catch((error_: unknown) => error_)
      expect(error).toBeInstanceOf(ArchiveError)
      expect((error as ArchiveError).code).toBe('ARCHIVE_TRUNCATED')
    })
  }

  it('passes an uncompressed stream through as it is', async () => {
    const input = fixture('test_image_1.tar')
    const {compression, stream} = await decompressed(input)
    expect(compression).toBe('none')
    expect(stream).toBe(input)
    expect((await readAll(stream)).length).toBe(20_480)
  })

  it('honours the level (gzip)', async () => {
    expect((await compress('gzip', sample, 1)).length).toBeGreaterThan((await compress('gzip', sample, 9)).length)
  })

  it('reports a failing command with what it printed', async (context) => {
    if (!(await hasCommand('zstd'))) context.skip()
    const garbage = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64, 0x41)])
    const error = await readAll(Readable.from([garbage]).pipe(decompressor('zstd'))).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(ArchiveError)
    expect((error as ArchiveError).code).toBe('ARCHIVE_CORRUPT')
    expect((error as ArchiveError).message).toMatch(/^`zstd` exited with \d+ while it decompressed zstd data: /)
  })

  it('kills the command when the signal fires', async (context) => {
    if (!(await hasCommand('xz'))) context.skip()
    const controller = new AbortController()
    const stream = compressor('xz', {level: 9, signal: controller.signal})
    const reason = new Error('interrupted')
    const done = readAll(stream).catch((error_: unknown) => error_)
    stream.write(sample)
    controller.abort(reason)
    expect(await done).toBe(reason)
  })
})

describe('missing commands', () => {
  const path = process.env.PATH
  afterEach(() => {
    process.env.PATH = path
  })

  it('say which Debian package to install', async () => {
    process.env.PATH = '/nonexistent'
    const error = await readAll(Readable.from([sample]).pipe(compressor('zstd'))).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).code).toBe('COMPRESSOR_MISSING')
    expect((error as UsageError).suggestions).toEqual(['install it: apt-get install zstd'])
  })

  it('hasCommand looks on PATH (and remembers); requireCompressor refuses early', async () => {
    expect(await hasCommand('sh')).toBe(true)
    expect(await hasCommand('transship-no-such-command')).toBe(false)
    await expect(requireCompressor('gzip')).resolves.toBeUndefined()
    await expect(requireCompressor('none')).resolves.toBeUndefined()
  })
})

describe('stream helpers', () => {
  it('peek returns the first bytes and leaves them in the stream', async () => {
    const input = Readable.from([Buffer.from('ab'), Buffer.from('cdef'), Buffer.from('gh')])
    const peeked = await peek(input, 5)
    expect(peeked.head.toString()).toBe('abcde')
    expect(peeked.stream).toBe(input)
    expect((await readAll(peeked.stream)).toString()).toBe('abcdefgh')
    // shorter than asked: it ended meanwhile, and a new stream gives it again
    const short = await peek(Readable.from([Buffer.from('xy')]), 5)
    expect(short.head.toString()).toBe('xy')
    expect((await readAll(short.stream)).toString()).toBe('xy')
    const empty = await peek(Readable.from([]), 5)
    expect(empty.head.length).toBe(0)
    expect((await readAll(empty.stream)).length).toBe(0)
  })

  it('tap copies the stream to a side reader, and holds the end for it', async () => {
    const side = new PassThrough()
    const seen = readAll(side)
    const gate = new AbortController()
    const held = new Promise<void>((resolve) => {
      gate.signal.addEventListener('abort', () => resolve())
    })
    const tapped = tap(side, {holdEnd: () => held})
    const out = readAll(Readable.from([Buffer.from('one'), Buffer.from('two')]).pipe(tapped))
    expect((await seen).toString()).toBe('onetwo')
    let ended = false
    const tracked = out.then(() => {
      ended = true
    })
    await new Promise((resolve) => {
      setTimeout(resolve, 20)
    })
    expect(ended).toBe(false)
    gate.abort()
    await tracked
    expect((await out).toString()).toBe('onetwo')
  })

  it('tap fails the main stream when what it holds the end for fails', async () => {
    const side = new PassThrough()
    const drained = readAll(side)
    const reason = new Error('the index failed')
    const tapped = tap(side, {holdEnd: () => Promise.reject(reason)})
    await expect(pipeline(Readable.from([Buffer.from('data')]), tapped, new PassThrough())).rejects.toBe(reason)
    expect((await drained).toString()).toBe('data')
  })
})
