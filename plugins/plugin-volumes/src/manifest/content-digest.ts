/**
 * The content digest of a file in a volume manifest: SHA-256 over a canonical form of the file's bytes in which
 * every run of all-zero 512-byte blocks counts by its length alone.
 *
 * Why not a plain SHA-256 of the bytes: a sparse file's holes would have to be hashed as zeros, so a tar header
 * that merely claims a 1 TiB file would cost the time of hashing 1 TiB. Why not a hash of the stored data
 * segments and their map: the same content is stored with different maps (a filesystem that turns zero blocks
 * into holes, a tar that finds holes by scanning for zeros), so equal files would differ. The canonical form is
 * the same however the file is stored (a hole and written zeros make the same run), costs time only for bytes
 * that are really there, and is injective (each run is tagged and sized), so equal digests mean equal content.
 *
 * Canonical form: the content is cut into 512-byte blocks at offsets that are multiples of 512 (the last one may
 * be shorter). Each maximal run of blocks holding only zeros is `0x00` + its length in bytes (u64, big endian);
 * each maximal run of the other blocks is written as pieces of 128 blocks from its start (the last piece may be
 * shorter), each `0x01` + its length (u64) + its bytes.
 */
import {createHash} from 'node:crypto'

const BLOCK = 512
const PIECE = 128 * BLOCK
const ZERO_BLOCK = Buffer.alloc(BLOCK)

export class ContentDigest {
  private readonly hash = createHash('sha256')
  /** the block being filled, while it holds fewer than BLOCK bytes */
  private readonly partial = Buffer.alloc(BLOCK)
  private partialLength = 0
  /** the data run's piece not hashed yet */
  private readonly piece = Buffer.alloc(PIECE)
  private pieceLength = 0
  /** bytes of the zero run being counted */
  private zeroRun = 0

  /** Adds bytes of the content, in order. */
  data(chunk: Buffer): void {
    let offset = 0
    if (this.partialLength > 0) {
      offset = Math.min(BLOCK - this.partialLength, chunk.length)
      chunk.copy(this.partial, this.partialLength, 0, offset)
      this.partialLength += offset
      if (this.partialLength === BLOCK) {
        this.partialLength = 0
        this.block(this.partial)
      }
    }

    // whole blocks: the blocks before the first run of 512 zero bytes (found natively) are data, taken at once
    const end = offset + (chunk.length - offset) - ((chunk.length - offset) % BLOCK)
    while (offset < end) {
      const hit = chunk.indexOf(ZERO_BLOCK, offset)
      const zeroCandidate = hit === -1 ? end : Math.min(end, offset + Math.ceil((hit - offset) / BLOCK) * BLOCK)
      if (zeroCandidate > offset) this.addData(chunk.subarray(offset, zeroCandidate))
      offset = zeroCandidate
      if (offset < end) {
        this.block(chunk.subarray(offset, offset + BLOCK))
        offset += BLOCK
      }
    }

    if (offset < chunk.length) {
      chunk.copy(this.partial, 0, offset)
      this.partialLength = chunk.length - offset
    }
  }

  /** The hex digest. */
  end(): string {
    if (this.partialLength > 0) {
      const tail = this.partial.subarray(0, this.partialLength)
      if (tail.equals(ZERO_BLOCK.subarray(0, tail.length))) this.addZeros(tail.length)
      else this.addData(tail)
      this.partialLength = 0
    }

    this.flushData()
    this.flushZeros()
    return this.hash.digest('hex')
  }

  /** Adds `length` zero bytes (a hole), in a time that does not depend on `length`. */
  zeros(length: number): void {
    let left = length
    if (left > 0 && this.partialLength > 0) {
      const take = Math.min(BLOCK - this.partialLength, left)
      this.partial.fill(0, this.partialLength, this.partialLength + take)
      this.partialLength += take
      left -= take
      if (this.partialLength === BLOCK) {
        this.partialLength = 0
        this.block(this.partial)
      }
    }

    const whole = left - (left % BLOCK)
    if (whole > 0) this.addZeros(whole)
    if (left > whole) {
      this.partial.fill(0, 0, left - whole)
      this.partialLength = left - whole
    }
  }

  /** Adds data blocks (and, at the very end, the short last one). */
  private addData(bytes: Buffer): void {
    this.flushZeros()
    let offset = 0
    while (offset < bytes.length) {
      if (this.pieceLength === 0 && bytes.length - offset >= PIECE) {
        // a whole piece straight from the input
        this.hash.update(runHeader(0x01, PIECE))
        this.hash.update(bytes.subarray(offset, offset + PIECE))
        offset += PIECE
        continue
      }

      const take = Math.min(PIECE - this.pieceLength, bytes.length - offset)
      bytes.copy(this.piece, this.pieceLength, offset, offset + take)
      this.pieceLength += take
      offset += take
      if (this.pieceLength === PIECE) this.flushData()
    }
  }

  private addZeros(length: number): void {
    this.flushData()
    this.zeroRun += length
  }

  private block(block: Buffer): void {
    if (block.equals(ZERO_BLOCK)) this.addZeros(BLOCK)
    else this.addData(block)
  }

  private flushData(): void {
    if (this.pieceLength === 0) return
    this.hash.update(runHeader(0x01, this.pieceLength))
    this.hash.update(this.piece.subarray(0, this.pieceLength))
    this.pieceLength = 0
  }

  private flushZeros(): void {
    if (this.zeroRun === 0) return
    this.hash.update(runHeader(0x00, this.zeroRun))
    this.zeroRun = 0
  }
}

function runHeader(tag: number, length: number): Buffer {
  const bytes = Buffer.alloc(9)
  bytes[0] = tag
  bytes.writeBigUInt64BE(BigInt(length), 1)
  return bytes
}
