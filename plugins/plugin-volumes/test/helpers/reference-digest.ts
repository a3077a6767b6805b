// The content digest computed the slow, obvious way, from the whole content in memory, to check ContentDigest
// against: 512-byte blocks classified one byte at a time, runs collected, then encoded and hashed in one go.
import {createHash} from 'node:crypto'

function u64(value: number): Buffer {
  const bytes = Buffer.alloc(8)
  bytes.writeBigUInt64BE(BigInt(value))
  return bytes
}

export function referenceDigest(content: Buffer): string {
  const runs: Array<{end: number; start: number; zero: boolean}> = []
  for (let start = 0; start < content.length; start += 512) {
    const end = Math.min(start + 512, content.length)
    let zero = true
    for (let i = start; i < end; i++) if (content[i] !== 0) zero = false
    const last = runs.at(-1)
    if (last && last.zero === zero) last.end = end
    else runs.push({end, start, zero})
  }

  const encoded: Buffer[] = []
  for (const run of runs) {
    if (run.zero) {
      encoded.push(Buffer.from([0]), u64(run.end - run.start))
      continue
    }

    for (let {start} = run; start < run.end; start += 65_536) {
      const piece = content.subarray(start, Math.min(start + 65_536, run.end))
      encoded.push(Buffer.from([1]), u64(piece.length), piece)
    }
  }

  return createHash('sha256').update(Buffer.concat(encoded)).digest('hex')
}
