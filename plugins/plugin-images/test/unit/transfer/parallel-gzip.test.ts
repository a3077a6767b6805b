import {randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import zlib from 'node:zlib'
import {describe, expect, it} from 'vitest'

import {parallelGzip} from '../../../src/transfer/parallel-gzip.js'

async function run(input: Buffer[], options = {}): Promise<Buffer> {
  const out: Buffer[] = []
  await pipeline(Readable.from(input), parallelGzip(options), async (source) => {
    for await (const chunk of source) out.push(chunk as Buffer)
  })
  return Buffer.concat(out)
}

describe('parallel gzip', () => {
  it('writes one gzip stream of several members that gunzip restores exactly', async () => {
    const text = Buffer.from('a line of text that compresses well\n'.repeat(100_000))
    const random = randomBytes(3 * 1024 * 1024 + 17)
    const input = Buffer.concat([text, random, text])
    const chunks = Array.from({length: Math.ceil(input.length / 65_536)}, (_, index) =>
      input.subarray(index * 65_536, (index + 1) * 65_536),
    )
    const compressed = await run(chunks, {blockSize: 256 * 1024})
    expect(zlib.gunzipSync(compressed).equals(input)).toBe(true)
    // text shrinks; random bytes are stored, not inflated by more than the member framing
    expect(compressed.length).toBeLessThan(random.length + 128 * 1024)
  })

  it('stores incompressible blocks instead of compressing them', async () => {
    const random = randomBytes(2 * 1024 * 1024)
    const compressed = await run([random], {blockSize: 1024 * 1024, level: 9})
    expect(compressed.length).toBeGreaterThan(random.length)
    expect(compressed.length).toBeLessThan(random.length * 1.001)
    expect(zlib.gunzipSync(compressed).equals(random)).toBe(true)
  })

  it('handles an empty input', async () => {
    expect(zlib.gunzipSync(await run([])).length).toBe(0)
  })
})
