import {describe, expect, it} from 'vitest'

import {ContentDigest} from '../../src/manifest/content-digest.js'
import {referenceDigest} from '../helpers/reference-digest.js'

/** deterministic pseudo-random bytes (xorshift32), so that every run tests the same contents */
/* eslint-disable no-bitwise -- xorshift */
function bytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length)
  let x = seed || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }

  return out
}
/* eslint-enable no-bitwise */

/** A content of data and zero runs at awkward places, and the same as data pieces and holes. */
function sample(seed: number): {content: Buffer; pieces: Array<{data?: Buffer; hole?: number}>} {
  const sizes = bytes(40, seed)
  const pieces: Array<{data?: Buffer; hole?: number}> = []
  for (const [i, size] of [...sizes].entries()) {
    const length = size * 37 + (i % 3) * 512
    if (i % 2 === 0) pieces.push({data: i % 4 === 0 ? bytes(length, seed + i) : Buffer.alloc(length)})
    else pieces.push({hole: length})
  }

  const content = Buffer.concat(pieces.map((piece) => piece.data ?? Buffer.alloc(piece.hole!)))
  return {content, pieces}
}

describe('ContentDigest', () => {
  it('equals the obvious computation, however the content is cut into chunks and holes', () => {
    for (const seed of [1, 7, 42, 1234]) {
      const {content, pieces} = sample(seed)
      const expected = referenceDigest(content)

      const whole = new ContentDigest()
      whole.data(content)
      expect(whole.end()).toBe(expected)

      const withHoles = new ContentDigest()
      for (const piece of pieces) {
        if (piece.data) withHoles.data(piece.data)
        else withHoles.zeros(piece.hole!)
      }

      expect(withHoles.end()).toBe(expected)

      const dribbled = new ContentDigest()
      for (let offset = 0; offset < content.length; offset += 333) dribbled.data(content.subarray(offset, offset + 333))
      expect(dribbled.end()).toBe(expected)
    }
  })

  it('tells apart contents that differ by one byte, or only by where the zeros are', () => {
    const content = Buffer.concat([bytes(5000, 3), Buffer.alloc(3000), bytes(700, 4)])
    const changed = Buffer.from(content)
    changed[6000] = 1
    const longer = Buffer.concat([content, Buffer.alloc(1)])
    const digests = [content, changed, longer, Buffer.alloc(0), Buffer.alloc(512), Buffer.alloc(513)].map((item) =>
      referenceDigest(item),
    )
    expect(new Set(digests).size).toBe(digests.length)
    for (const item of [content, changed, longer]) {
      const digest = new ContentDigest()
      digest.data(item)
      expect(digest.end()).toBe(referenceDigest(item))
    }
  })

  it('digests a hole of 1 TiB, or 1 EiB, without time proportional to it', () => {
    const started = performance.now()
    for (const size of [2 ** 40, 2 ** 60]) {
      const digest = new ContentDigest()
      digest.data(Buffer.from('head'))
      digest.zeros(size)
      digest.data(Buffer.from('tail'))
      expect(digest.end()).toMatch(/^[\da-f]{64}$/)
    }

    expect(performance.now() - started).toBeLessThan(100)
    // a hole and written zeros are the same content
    const hole = new ContentDigest()
    hole.data(Buffer.from('x'))
    hole.zeros(1_000_000)
    const written = new ContentDigest()
    written.data(Buffer.concat([Buffer.from('x'), Buffer.alloc(1_000_000)]))
    expect(hole.end()).toBe(written.end())
  })
})
