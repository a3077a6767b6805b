import {createHash} from 'node:crypto'
import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import {setTimeout as sleep} from 'node:timers/promises'
import zlib from 'node:zlib'
import {describe, expect, it} from 'vitest'

import {archive, entry, file, header} from '../../../../../test/helpers/raw-tar.js'
import {ArchiveError} from '../../../src/archive/errors.js'
import {decodeTarName, readTar, TarError} from '../../../src/tar/index.js'

const MiB = 1024 * 1024

/**
 * A tar with one entry of `size` bytes made as it is read, then `after`; counts the bytes read from it. As a file
 * or a socket does, it yields to the event loop between chunks.
 */
function endless(size: number): {pulled: () => number; stream: Readable} {
  let pulled = 0
  let left = size
  let ended = false
  const chunk = Buffer.alloc(64 * 1024, 'x')
  const next = (): Buffer | null => {
    if (pulled === 0) {
      pulled += 512
      return header({name: 'big', size})
    }

    if (left > 0) {
      const part = chunk.subarray(0, Math.min(chunk.length, left))
      left -= part.length
      pulled += part.length
      return part
    }

    if (ended) return null
    ended = true
    return archive(file('after', 'tail'))
  }

  const stream = new Readable({
    read() {
      setImmediate(() => this.push(next()))
    },
  })
  return {pulled: () => pulled, stream}
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }

  throw new Error('expected a failure')
}

describe('readTar', () => {
  it('reads an entry only as fast as its data is consumed, and skips what is left unread', async () => {
    const input = endless(200 * MiB)
    const names: string[] = []
    for await (const {entry: framed, open} of readTar(input.stream)) {
      names.push(decodeTarName(framed.name))
      if (names.length === 1) {
        const body = open()
        const first = await new Promise<Buffer>((resolve) => {
          body.once('data', resolve)
        })
        body.pause()
        expect(first.length).toBeGreaterThan(0)
        await sleep(100)
        // the reader waits for the consumer: a few chunks ahead, not the 200 MiB
        expect(input.pulled()).toBeLessThan(4 * MiB)
        expect(() => open()).toThrow(/only once/)
      } else {
        expect((await buffer(open())).toString()).toBe('tail')
      }
    }

    expect(names).toEqual(['big', 'after'])
    expect(input.pulled()).toBeGreaterThan(200 * MiB)
  })

  it('gives each body in full, in any chunks, and an empty body for entries without data', async () => {
    const bytes = archive(file('a', 'x'.repeat(5000)), entry({name: 'd/', type: '5'}), file('b', 'bee'))
    const chunks = Array.from({length: Math.ceil(bytes.length / 333)}, (_, i) => bytes.subarray(i * 333, i * 333 + 333))
    const bodies: string[] = []
    for await (const {open} of readTar(Readable.from(chunks))) bodies.push((await buffer(open())).toString())
    expect(bodies).toEqual(['x'.repeat(5000), '', 'bee'])
  })

  it('fails the body being read and the iteration with a TarError when the stream is cut', async () => {
    const bytes = archive(file('a', 'x'.repeat(5000)))
    let bodyError: unknown
    const error = await failure(
      (async () => {
        for await (const {open} of readTar(Readable.from([bytes.subarray(0, 3000)]), {label: 'cut.tar'})) {
          bodyError = await buffer(open()).catch((error_: unknown) => error_)
        }
      })(),
    )
    expect(bodyError).toBeInstanceOf(TarError)
    expect(error).toBe(bodyError)
    expect(error.message).toBe('cut.tar is truncated: it ends in the middle of entry "a" (2488 of its 5000 bytes)')
  })

  it('decompresses, names the decompressor errors after the stream, and taps the tar bytes', async () => {
    const bytes = Buffer.concat([archive(file('a', 'hello')), Buffer.alloc(4096)])
    const hash = createHash('sha256')
    const names: string[] = []
    for await (const {entry: framed} of readTar(Readable.from([zlib.gzipSync(bytes)]), {
      decompress: true,
      tap: (chunk) => hash.update(chunk),
    })) {
      names.push(decodeTarName(framed.name))
    }

    expect(names).toEqual(['a'])
    expect(hash.digest('hex')).toBe(createHash('sha256').update(bytes).digest('hex'))
    const gz = zlib.gzipSync(bytes)
    const cut = await failure(
      (async () => {
        // eslint-disable-next-line @typescript-eslint/no-unused-vars
        for await (const _ of readTar(Readable.from([gz.subarray(0, 40)]), {decompress: true, label: 'x.tar.gz'})) {
          // nothing
        }
      })(),
    )
    expect(cut).toBeInstanceOf(ArchiveError)
    expect(cut).not.toBeInstanceOf(TarError)
    expect(cut).toMatchObject({code: 'ARCHIVE_TRUNCATED', details: {stream: 'x.tar.gz'}})
    expect(cut.message).toMatch(/^x\.tar\.gz: /)
  })

  it("stops with the signal's reason, also in the middle of a body", async () => {
    const controller = new AbortController()
    const reason = new Error('stop')
    const input = endless(1024 * MiB)
    const error = await failure(
      (async () => {
        for await (const {open} of readTar(input.stream, {signal: controller.signal})) {
          setTimeout(() => controller.abort(reason), 50)
          await buffer(open())
        }
      })(),
    )
    expect(error).toBe(reason)
    expect(input.pulled()).toBeLessThan(1024 * MiB)
  })
})
