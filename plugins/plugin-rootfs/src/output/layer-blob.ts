/**
 * The layer as a blob file: the tar streamed once through a hash of its bytes (the diffID), optionally a
 * gzip compressor, and a hash of what is written (the blob digest).
 *
 * gzip is pako's (pinned in package.json), not node:zlib: pako reproduces stock zlib byte for byte on any
 * machine, while Node's bundled zlib changes with the Node version, and so would the layer digest.
 */
import {MEDIA_TYPES} from '@transship/kit/oci'
import {createHash, type Hash} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {rename, rm} from 'node:fs/promises'
import {type Readable, Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {Deflate} from 'pako'

export type LayerCompression = 'gzip' | 'none'

export const LAYER_MEDIA_TYPES: Record<LayerCompression, string> = {
  gzip: MEDIA_TYPES.ociLayerGzip,
  none: MEDIA_TYPES.ociLayer,
}

/** gzip level 6 with no name and mtime 0 in the header: the same bytes for the same input, everywhere. */
export class DeterministicGzip extends Transform {
  private readonly deflate = new Deflate({gzip: true, header: {os: 3, time: 0}, level: 6})

  constructor() {
    super()
    this.deflate.onData = (chunk: Uint8Array) => {
      this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    }
  }

  override _flush(callback: TransformCallback): void {
    this.deflate.push(new Uint8Array(0), true)
    callback(this.deflate.err ? new Error(`gzip: ${this.deflate.msg}`) : null)
  }

  override _transform(chunk: Buffer, _encoding: NodeJS.BufferEncoding, callback: TransformCallback): void {
    this.deflate.push(chunk, false)
    callback(this.deflate.err ? new Error(`gzip: ${this.deflate.msg}`) : null)
  }
}

/** Passes bytes through while hashing and counting them. */
export class Digester extends Transform {
  bytes = 0
  private readonly hash: Hash = createHash('sha256')

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`
  }

  override _transform(chunk: Buffer, _encoding: NodeJS.BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    this.hash.update(chunk)
    callback(null, chunk)
  }
}

export interface LayerBlob {
  /** sha256 of the uncompressed tar */
  diffID: string
  /** sha256 of the blob as written */
  digest: string
  mediaType: string
  /** bytes of the blob */
  size: number
  /** bytes of the uncompressed tar */
  tarSize: number
}

/**
 * Writes the layer tar into `dir/blobs/sha256/<digest>` (compressed as asked) through a temporary name, so a
 * failed or interrupted write leaves no blob that looks complete.
 */
export async function writeLayerBlob(
  layer: Readable,
  blobsDir: string,
  compression: LayerCompression,
  signal?: AbortSignal,
): Promise<LayerBlob> {
  const temporary = `${blobsDir}/.layer-${process.pid}-${Date.now()}.tmp`
  const tar = new Digester()
  const blob = new Digester()
  try {
    await (compression === 'gzip'
      ? pipeline(layer, tar, new DeterministicGzip(), blob, createWriteStream(temporary), {signal})
      : pipeline(layer, tar, blob, createWriteStream(temporary), {signal}))
    const digest = blob.digest()
    await rename(temporary, `${blobsDir}/${digest.slice('sha256:'.length)}`)
    return {
      diffID: compression === 'none' ? digest : tar.digest(),
      digest,
      mediaType: LAYER_MEDIA_TYPES[compression],
      size: blob.bytes,
      tarSize: tar.bytes,
    }
  } catch (error) {
    await rm(temporary, {force: true})
    throw error
  }
}
