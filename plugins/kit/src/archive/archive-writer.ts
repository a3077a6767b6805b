import {createHash} from 'node:crypto'
import {PassThrough, type Readable, Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import tar from 'tar-stream'

import {ExitCode} from '../error-codes.js'
import {sha256} from '../oci/digest.js'
import {blobName, INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION, layoutIndex, nameAnnotations} from '../oci/layout.js'
import {MEDIA_TYPES, ociLayerMediaType} from '../oci/media-types.js'
import {ArchiveError} from './errors.js'

export type ArchiveFormat = 'docker' | 'docker+oci' | 'oci'

export interface OutputLayer {
  /** sha256:… of the uncompressed layer */
  diffID: string
  /** sha256:… of the blob as it will be written (== diffID when uncompressed) */
  digest: string
  mediaType: string
  /** bytes of the blob */
  size: number
}

export interface OutputImage {
  config: Buffer
  configDigest: string
  layers: OutputLayer[]
  /** familiar names, e.g. app:1 */
  tags: string[]
}

/**
 * The OCI manifest bytes the writer emits for an image (so callers can compute its digest: on a
 * containerd-store engine the loaded image's ID is this manifest's digest).
 */
export function ociManifest(image: OutputImage): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,

      mediaType: MEDIA_TYPES.ociManifest,
      config: {digest: image.configDigest, mediaType: MEDIA_TYPES.ociConfig, size: image.config.length},
      layers: image.layers.map((layer) => ({
        digest: layer.digest,
        mediaType: ociLayerMediaType(layer.mediaType),
        size: layer.size,
      })),
    }),
  )
}

function hex(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1)
}

/**
 * Writes an image archive with tar-stream. Layer entries: docker → `<diffIDhex>/layer.tar`; oci and docker+oci
 * → `blobs/sha256/<digesthex>`. Metadata (configs, OCI manifests, index.json with `org.opencontainers.image.ref.name`
 * (the tag) and `io.containerd.image.name` (the full name, e.g. docker.io/library/app:1) annotations, manifest.json
 * with Config/RepoTags/Layers, oci-layout) is written by finish().
 *
 * A layer whose body is never written is left out of the archive but still listed in the manifests: a *partial*
 * archive (engines that already hold that layer load it). Sizes are exact and every body is checked against its
 * digest before its entry completes; bodies go through pipeline() with backpressure end to end (the caller
 * pipes `stream` to its destination).
 */
export class ImageArchiveWriter {
  /** the archive; it ends after finish(), and fails with the first error */
  readonly stream: Readable
  private failed: Error | undefined
  private finished = false
  private readonly layers = new Map<string, OutputLayer>()
  private readonly mtime: Date
  private readonly pack = tar.pack()
  private queue: Promise<void> = Promise.resolve()
  private readonly written = new Set<string>()

  constructor(
    readonly format: ArchiveFormat,
    private readonly images: OutputImage[],
    options: {mtime?: Date} = {},
  ) {
    this.mtime = options.mtime ?? new Date(0)
    for (const image of images) {
      if (sha256(image.config) !== image.configDigest) {
        throw new Error(`the config given for ${image.configDigest} does not hash to that digest`)
      }

      for (const layer of image.layers) {
        const known = this.layers.get(layer.digest)
        if (known && known.size !== layer.size) {
          throw new Error(`layer ${layer.digest} is given with two sizes (${known.size} and ${layer.size})`)
        }

        this.layers.set(layer.digest, layer)
      }
    }

    const output = new PassThrough()
    this.stream = output
    pipeline(this.pack as unknown as NodeJS.ReadableStream, output).catch((error: unknown) => {
      this.fail(error as Error)
    })
    if (format !== 'docker') {
      this.enqueue(async () => {
        await this.entry({name: 'blobs/', type: 'directory'})
        await this.entry({name: 'blobs/sha256/', type: 'directory'})
      })
    }
  }

  /** Destroys the output stream with `error`. */
  abort(error: Error): void {
    this.fail(error)
  }

  /** Writes the metadata and ends the archive; resolves once everything is in the output stream's queue. */
  async finish(): Promise<void> {
    if (this.finished) throw new Error('the archive was already finished')
    this.finished = true
    await this.enqueue(async () => {
      for (const [name, content] of this.metadata()) {
        await this.entry({name, size: content.length}, content)
      }

      this.pack.finalize()
    })
  }

  /**
   * Writes the body of a layer of one of the images (written at most once: a second body for the same digest
   * is drained). Rejects, and fails the whole archive, when the body's size or digest differ from the layer's.
   */
  async writeLayer(layer: {digest: string; size: number}, body: Readable, signal?: AbortSignal): Promise<void> {
    const known = this.layers.get(layer.digest)
    if (!known) {
      body.destroy()
      throw new Error(`layer ${layer.digest} belongs to none of the archive's images`)
    }

    if (known.size !== layer.size) {
      body.destroy()
      throw new Error(`layer ${layer.digest} has ${known.size} bytes in the image, not ${layer.size}`)
    }

    if (this.finished) {
      body.destroy()
      throw new Error('the archive was already finished')
    }

    if (this.written.has(layer.digest)) {
      body.resume()
      return
    }

    this.written.add(layer.digest)
    const name = this.format === 'docker' ? `${hex(known.diffID)}/layer.tar` : blobName(known.digest)
    return this.enqueue(async () => {
      const check = new DigestCheck(known)
      try {
        const entry = this.pack.entry({mode: 0o644, mtime: this.mtime, name, size: known.size, type: 'file'})
        await pipeline(body, check, entry as unknown as NodeJS.WritableStream, {signal})
      } catch (error) {
        const reason = check.error ?? (signal?.aborted ? (signal.reason as Error) : (error as Error))
        this.fail(reason)
        throw reason
      }
    })
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(() => {
      if (this.failed) throw this.failed
      return task()
    })
    this.queue = run.catch(() => {})
    return run
  }

  private async entry(
    header: {name: string; size?: number; type?: 'directory' | 'file'},
    content?: Buffer,
  ): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const full = {
        mode: header.type === 'directory' ? 0o755 : 0o644,
        mtime: this.mtime,
        type: 'file' as const,
        ...header,
      }
      const callback = (error?: Error | null) => (error ? reject(error) : resolve())
      if (content) this.pack.entry(full, content, callback)
      else this.pack.entry(full, callback)
    })
  }

  private fail(error: Error): void {
    if (this.failed) return
    this.failed = error
    if (!this.pack.destroyed) this.pack.destroy(error)
    if (!this.stream.destroyed) this.stream.destroy(error)
  }

  /** The metadata entries for the format, in the order they are written. */
  private metadata(): Array<[string, Buffer]> {
    const entries: Array<[string, Buffer]> = []
    const json = (value: unknown) => Buffer.from(JSON.stringify(value))
    const configs = new Set<string>()
    if (this.format === 'docker') {
      for (const image of this.images) {
        if (configs.has(image.configDigest)) continue
        configs.add(image.configDigest)
        entries.push([`${hex(image.configDigest)}.json`, image.config])
      }

      entries.push([
        'manifest.json',
        json(
          this.images.map((image) => ({
            Config: `${hex(image.configDigest)}.json`,
            Layers: image.layers.map((layer) => `${hex(layer.diffID)}/layer.tar`),
            RepoTags: image.tags.length > 0 ? image.tags : null,
          })),
        ),
      ])
      return entries
    }

    const descriptors: unknown[] = []
    const manifests = new Set<string>()
    for (const image of this.images) {
      if (!configs.has(image.configDigest)) {
        configs.add(image.configDigest)
        entries.push([blobName(image.configDigest), image.config])
      }

      const manifest = ociManifest(image)
      const digest = sha256(manifest)
      if (!manifests.has(digest)) {
        manifests.add(digest)
        entries.push([blobName(digest), manifest])
      }

      const descriptor = {digest, mediaType: MEDIA_TYPES.ociManifest, size: manifest.length}
      if (image.tags.length === 0) descriptors.push(descriptor)
      for (const tag of image.tags) descriptors.push({...descriptor, annotations: nameAnnotations(tag)})
    }

    entries.push([INDEX_FILE, json(layoutIndex(descriptors))])
    if (this.format === 'docker+oci') {
      entries.push([
        'manifest.json',
        json(
          this.images.map((image) => ({
            Config: blobName(image.configDigest),
            Layers: image.layers.map((layer) => blobName(layer.digest)),
            RepoTags: image.tags.length > 0 ? image.tags : null,
          })),
        ),
      ])
    }

    entries.push([LAYOUT_FILE, json(LAYOUT_VERSION)])
    return entries
  }
}

/**
 * Passes a layer body through while hashing and counting it, holding back the last chunk until the body is
 * complete: a body of the wrong size or digest fails before its tar entry is complete.
 */
class DigestCheck extends Transform {
  error: Error | undefined
  private bytes = 0
  private readonly hash = createHash('sha256')
  private held: Buffer | undefined

  constructor(private readonly layer: OutputLayer) {
    super()
  }

  override _flush(callback: TransformCallback): void {
    const digest = `sha256:${this.hash.digest('hex')}`
    if (this.bytes !== this.layer.size) {
      callback(this.mismatch(`${this.bytes} bytes, not the ${this.layer.size} its manifest says`))
      return
    }

    if (digest !== this.layer.digest) {
      callback(this.mismatch(`content that hashes to ${digest}`))
      return
    }

    callback(null, this.held)
  }

  override _transform(chunk: Buffer, _encoding: NodeJS.BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    if (this.bytes > this.layer.size) {
      callback(this.mismatch(`more than the ${this.layer.size} bytes its manifest says`))
      return
    }

    this.hash.update(chunk)
    const previous = this.held
    this.held = chunk
    callback(null, previous)
  }

  private mismatch(what: string): Error {
    this.error = new ArchiveError('ARCHIVE_CORRUPT', `the body given for layer ${this.layer.digest} has ${what}`, {
      details: {digest: this.layer.digest},
      exit: ExitCode.Failed,
    })
    return this.error
  }
}
