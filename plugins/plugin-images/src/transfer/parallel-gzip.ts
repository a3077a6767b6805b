import {Transform, type TransformCallback} from 'node:stream'
import {promisify} from 'node:util'
import zlib from 'node:zlib'

const gzip = promisify(zlib.gzip)

export interface ParallelGzipOptions {
  /** bytes per gzip member */
  blockSize?: number
  /** members compressed at once (on libuv's thread pool) */
  concurrency?: number
  level?: number
}

/** A block whose sample shrinks less than this is stored, not compressed: it is compressed already. */
const INCOMPRESSIBLE = 0.97

/**
 * gzip on several cores: the input is cut into blocks, each compressed as its own gzip member on the
 * thread pool, and the members are emitted in order. Concatenated members are one valid gzip stream
 * (RFC 1952), which Docker's load reads. Blocks of already-compressed data are stored as they are, so
 * compression is never applied twice.
 */
export function parallelGzip(options: ParallelGzipOptions = {}): Transform {
  const blockSize = options.blockSize ?? 1024 * 1024
  const concurrency = options.concurrency ?? 4
  const level = options.level ?? 6
  let pending: Buffer[] = []
  let pendingLength = 0
  const inFlight: Array<Promise<Buffer>> = []
  let members = 0

  const compress = async (block: Buffer): Promise<Buffer> => {
    const compressed = await gzip(block, {level})
    // a block that does not shrink is compressed already: store it rather than send it inflated
    return compressed.length > block.length * INCOMPRESSIBLE ? gzip(block, {level: 0}) : compressed
  }

  const emitReady = async (stream: Transform, keep: number): Promise<void> => {
    while (inFlight.length > keep) {
      stream.push(await inFlight.shift()!)
      members++
    }
  }

  const cut = (): Buffer => {
    const all = Buffer.concat(pending, pendingLength)
    const block = all.subarray(0, blockSize)
    const rest = all.subarray(blockSize)
    pending = rest.length > 0 ? [rest] : []
    pendingLength = rest.length
    return block
  }

  return new Transform({
    flush(this: Transform, callback: TransformCallback) {
      // an empty input still makes a (one-member) gzip stream
      if (pendingLength > 0 || members + inFlight.length === 0)
        inFlight.push(compress(Buffer.concat(pending, pendingLength)))
      pending = []
      pendingLength = 0
      emitReady(this, 0).then(() => callback(), callback)
    },
    transform(this: Transform, chunk: Buffer, _encoding, callback: TransformCallback) {
      pending.push(chunk)
      pendingLength += chunk.length
      const work = async () => {
        // cut() shortens `pending`
        // eslint-disable-next-line no-unmodified-loop-condition
        while (pendingLength >= blockSize) {
          inFlight.push(compress(cut()))
          // keep at most `concurrency` members in flight: that is the backpressure
          await emitReady(this, concurrency - 1)
        }
      }

      work().then(() => callback(), callback)
    },
  })
}
