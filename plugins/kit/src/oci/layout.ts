/**
 * An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`): reading its index and blobs
 * (digests checked), finding the image a ref name or full name selects, and writing blobs and the index so
 * that a reader never sees an index that names a missing blob.
 */
import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, open, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {type Readable, Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {ArchiveError} from '../archive/errors.js'
import {fullName, tagOf} from '../archive/names.js'
import {isDigest, sha256} from './digest.js'
import {isIndexMediaType, MEDIA_TYPES} from './media-types.js'
import {
  type Descriptor,
  IMAGE_NAME_ANNOTATION,
  type ImageIndex,
  type ParsedDescriptor,
  type ParsedManifest,
  REF_NAME_ANNOTATION,
} from './types.js'

export const INDEX_FILE = 'index.json'
export const LAYOUT_FILE = 'oci-layout'
/** The content of the `oci-layout` file. */
export const LAYOUT_VERSION = {imageLayoutVersion: '1.0.0'} as const
/** Largest metadata blob (manifest, index, config) read into memory. */
export const METADATA_LIMIT = 8 * 1024 * 1024
/** Nested indexes deeper than this are refused (a loop, or a hostile layout). */
export const MAX_INDEX_DEPTH = 8

/** `blobs/sha256/<hex>`: where a layout (directory or tar) keeps the blob `digest`. */
export function blobName(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`
}

/** The index.json of a layout listing `manifests`. */
export function layoutIndex(manifests: unknown[]): ImageIndex {
  return {schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: manifests as Descriptor[]}
}

/**
 * The annotations that name an image in a layout, as Docker and containerd write them: its full name and,
 * when it has a tag, the tag as ref name (what `skopeo … oci:DIR:TAG` selects). `refName` overrides the tag.
 */
export function nameAnnotations(name: string, refName = tagOf(name)): Record<string, string> {
  const annotations: Record<string, string> = {[IMAGE_NAME_ANNOTATION]: fullName(name)}
  if (refName) annotations[REF_NAME_ANNOTATION] = refName
  return annotations
}

/** Whether an index entry is named `ref`: by its ref name, or by its full name (`app:1` is docker.io/library/app:1). */
export function isNamed(descriptor: ParsedDescriptor, ref: string): boolean {
  const annotations = descriptor.annotations ?? {}
  return annotations[REF_NAME_ANNOTATION] === ref || annotations[IMAGE_NAME_ANNOTATION] === fullName(ref)
}

/** An image manifest an index leads to: the descriptors from the top-level entry down to it. */
export interface LayoutImage {
  /** the top-level index entry first, this manifest's descriptor last */
  chain: ParsedDescriptor[]
  descriptor: ParsedDescriptor & {digest: string}
  manifest: ParsedManifest
}

export interface LayoutOptions {
  /** the error for a damaged layout, from what is wrong (default: ARCHIVE_CORRUPT naming `source`) */
  corrupt?: (problem: string) => Error
  signal?: AbortSignal
  /** what the user named, for messages (default: the directory) */
  source?: string
}

export class OciLayout {
  private readonly corrupt: (problem: string) => Error
  private readonly source: string

  constructor(
    readonly dir: string,
    private readonly options: LayoutOptions = {},
  ) {
    const source = options.source ?? dir
    this.source = source
    this.corrupt =
      options.corrupt ??
      ((problem) =>
        new ArchiveError('ARCHIVE_CORRUPT', `${source} is not a valid OCI image layout: ${problem}`, {
          details: {source},
          suggestions: ['write the layout again, or give the image another way (an archive or the engine)'],
        }))
  }

  /** The directory of the sha256 blobs. */
  get blobsDir(): string {
    return path.join(this.dir, 'blobs', 'sha256')
  }

  /** The file of blob `digest` (a valid sha256 digest, or the layout is damaged). */
  blobFile(digest: unknown, what = 'a descriptor'): string {
    if (!isDigest(digest)) throw this.corrupt(`${what} has no valid sha256 digest`)
    return path.join(this.dir, blobName(digest))
  }

  /** Whether the blob is there (with `size` bytes, when given). */
  async hasBlob(digest: unknown, size?: number): Promise<boolean> {
    if (!isDigest(digest)) return false
    const info = await stat(path.join(this.dir, blobName(digest))).catch(() => {})
    return info !== undefined && info.isFile() && (size === undefined || info.size === size)
  }

  /** The index, or undefined when the directory has none (it is not a layout, or not yet). */
  async index(): Promise<ParsedManifest | undefined> {
    let bytes: Buffer
    try {
      bytes = await readFile(path.join(this.dir, INDEX_FILE), {signal: this.options.signal})
    } catch (error) {
      const {code} = error as NodeJS.ErrnoException
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
      throw error
    }

    return this.parse(bytes, INDEX_FILE)
  }

  /** A blob's content from `offset`, streamed (not checked: a registry or the reader checks what it reads). */
  openBlob(digest: string, offset = 0): Readable {
    return createReadStream(this.blobFile(digest), {start: offset})
  }

  /**
   * A metadata blob's bytes (at most `limit`, default METADATA_LIMIT), checked against its digest; `what` names
   * it in errors (e.g. `the config`).
   */
  async readBlob(digest: unknown, what = 'a blob', options: {limit?: number} = {}): Promise<Buffer> {
    const limit = options.limit ?? METADATA_LIMIT
    const file = this.blobFile(digest, what)
    const name = blobName(digest as string)
    let handle
    try {
      handle = await open(file, 'r')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw this.corrupt(`${what} is ${digest as string}, but there is no ${name}`)
      throw error
    }

    try {
      if ((await handle.stat()).size > limit) {
        throw new ArchiveError('ARCHIVE_UNSUPPORTED', `${this.source}: ${name} is larger than ${limit} bytes`, {
          details: {source: this.source},
        })
      }

      const bytes = await handle.readFile({signal: this.options.signal})
      if (sha256(bytes) !== digest) throw this.corrupt(`${name} does not hash to its name`)
      return bytes
    } finally {
      await handle.close()
    }
  }

  /** A manifest or index blob, parsed. */
  async readManifest(digest: unknown, what = 'a manifest', options: {limit?: number} = {}): Promise<ParsedManifest> {
    return this.parse(await this.readBlob(digest, what, options), what)
  }

  /**
   * The image manifests `descriptors` lead to, nested indexes followed. An index's child whose blob is left out
   * (another platform of a multi-platform image) is skipped; a missing top-level one is an error.
   */
  async images(descriptors: ParsedDescriptor[]): Promise<LayoutImage[]> {
    const found: LayoutImage[] = []
    const walk = async (items: null | ParsedDescriptor[] | undefined, chain: ParsedDescriptor[], depth: number) => {
      if (depth > MAX_INDEX_DEPTH) throw this.corrupt('indexes nested too deeply')
      for (const descriptor of items ?? []) {
        if (depth > 0 && !(await this.hasBlob(descriptor.digest))) continue
        const manifest = await this.readManifest(descriptor.digest, 'a manifest')
        const own = [...chain, descriptor]
        if (isIndexMediaType(descriptor.mediaType ?? manifest.mediaType) || Array.isArray(manifest.manifests)) {
          await walk(manifest.manifests, own, depth + 1)
        } else {
          found.push({chain: own, descriptor: descriptor as LayoutImage['descriptor'], manifest})
        }
      }
    }

    await walk(descriptors, [], 0)
    return found
  }

  /**
   * Writes a blob (bytes, or a stream checked against `digest` on the way) through a temporary name; a blob
   * already there is kept. Returns whether it was written.
   */
  async writeBlob(digest: string, content: Buffer | Readable): Promise<boolean> {
    const file = this.blobFile(digest)
    if (await this.hasBlob(digest)) return false
    await mkdir(path.dirname(file), {recursive: true})
    const temporary = `${file}.${process.pid}.tmp`
    try {
      if (Buffer.isBuffer(content)) {
        if (sha256(content) !== digest) throw new Error(`the bytes given for ${digest} have another digest`)
        await writeFile(temporary, content, {signal: this.options.signal})
      } else {
        await pipeline(content, new DigestCheck(digest), createWriteStream(temporary), {signal: this.options.signal})
      }

      await rename(temporary, file)
      return true
    } catch (error) {
      await rm(temporary, {force: true})
      throw error
    }
  }

  /**
   * Adds `descriptors` to the index (created when missing), replacing the entries of the same full name, and
   * writes `oci-layout`. The index is written last, through a temporary name: write the blobs first.
   */
  async addToIndex(descriptors: Descriptor[]): Promise<void> {
    const names = new Set(descriptors.map((item) => item.annotations?.[IMAGE_NAME_ANNOTATION]).filter(Boolean))
    const kept = ((await this.index())?.manifests ?? []).filter(
      (item) => !names.has(item.annotations?.[IMAGE_NAME_ANNOTATION]),
    )
    await mkdir(this.dir, {recursive: true})
    await writeFile(path.join(this.dir, LAYOUT_FILE), JSON.stringify(LAYOUT_VERSION))
    const file = path.join(this.dir, INDEX_FILE)
    await writeFile(`${file}.tmp`, JSON.stringify(layoutIndex([...kept, ...descriptors])))
    await rename(`${file}.tmp`, file)
  }

  private parse(bytes: Buffer, what: string): ParsedManifest {
    let parsed: unknown
    try {
      parsed = JSON.parse(bytes.toString('utf8'))
    } catch {
      throw this.corrupt(`${what} is not valid JSON`)
    }

    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
      throw this.corrupt(`${what} is not a JSON object`)
    return parsed as ParsedManifest
  }
}

/** Fails the pipeline at its end when the bytes do not hash to `digest`: the blob is then never renamed into place. */
class DigestCheck extends Transform {
  private readonly hash = createHash('sha256')

  constructor(private readonly digest: string) {
    super()
  }

  override _flush(callback: TransformCallback): void {
    const actual = `sha256:${this.hash.digest('hex')}`
    callback(
      actual === this.digest
        ? undefined
        : new ArchiveError('ARCHIVE_CORRUPT', `a blob written as ${this.digest} is ${actual}`),
    )
  }

  override _transform(chunk: Buffer, _encoding: NodeJS.BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk)
    callback(null, chunk)
  }
}
