import {createHash} from 'node:crypto'
import path from 'node:path'
import {type Readable} from 'node:stream'

import {isDigest} from '../oci/digest.js'
import {blobName as blobPath, METADATA_LIMIT} from '../oci/layout.js'
import {isIndexMediaType, MEDIA_TYPES as MEDIA} from '../oci/media-types.js'
import {
  type ParsedDescriptor as Descriptor,
  type ImageConfig,
  IMAGE_NAME_ANNOTATION as NAME_ANNOTATION,
  type ParsedManifest as OciManifest,
  REF_NAME_ANNOTATION as REF_ANNOTATION,
} from '../oci/types.js'
import {readTar, type TarEntry, TarError} from '../tar/index.js'
import {type Compression, COMPRESSION_MAGIC_LENGTH, detectCompression} from './compression.js'
import {EntryPaths} from './entry-paths.js'
import {ArchiveError} from './errors.js'
import {familiarName} from './names.js'

/** One layer of an image, as an archive holds it. */
export interface ArchiveLayer {
  /**
   * other entry paths that lead to the same body (symbolic or hard links to `path`). Docker 20.10 writes a layer
   * shared by two images once and links to it from the other image's directory, and which of the two holds
   * the body can change from one `docker save` to the next: match a second read by `path` or any alias.
   */
  aliases?: string[]
  /** sha256:… of the uncompressed layer tar (from the config's rootfs.diff_ids) */
  diffID: string
  /** sha256:… of the blob as stored (== diffID when it is not compressed) */
  digest: string
  /** e.g. application/vnd.oci.image.layer.v1.tar(+gzip|+zstd) or application/vnd.docker.image.rootfs.diff.tar(.gzip) */
  mediaType: string
  /** true when the archive lists the layer but leaves its body out (a partial archive; see indexArchive) */
  missing?: boolean
  /** entry path of the layer in the archive it was read from (symbolic and hard links resolved) */
  path: string
  /** entry size in that archive */
  size: number
}

export interface ArchiveImage {
  /** raw config bytes (the image ID on a classic engine is their sha256) */
  config: Buffer
  /** sha256:… */
  configDigest: string
  /** in order (bottom first) */
  layers: ArchiveLayer[]
  /**
   * sha256:… of the image index that index.json lists and that leads to this manifest, when it is not listed
   * directly (a multi-platform image): on a containerd-store engine the image's ID is then this digest
   */
  indexDigest?: string
  /** sha256:… of the image's OCI/Docker manifest when the archive has one (its ID on a containerd-store engine) */
  manifestDigest?: string
  /** os/architecture[/variant] from the config, e.g. linux/amd64 (always set by indexArchive) */
  platform?: string
  /** familiar names, e.g. app:1 (from manifest.json RepoTags or the OCI index annotations) */
  repoTags: string[]
}

export interface ArchiveIndex {
  /** docker: manifest.json only; oci: an OCI image layout only; docker+oci: both (Docker 25+ `docker save`) */
  format: 'docker' | 'docker+oci' | 'oci'
  images: ArchiveImage[]
}

interface ArchiveEntryHeader {
  /** for links: the path (hard link) or relative target (symbolic link) */
  linkname?: string
  /** normalised: no leading `./` or `/` */
  name: string
  size: number
  /** the name as the tar header stores it, not normalised */
  stored: string
  type: string
}

interface ArchiveEntry {
  header: ArchiveEntryHeader
  stream: Readable
}

interface ArchiveReadOptions {
  signal?: AbortSignal
  /** what the archive is, for messages: a file name, `stdin`, `the engine's save stream` */
  source?: string
}

interface IndexArchiveOptions extends ArchiveReadOptions {
  /**
   * Accept layers that the manifests list but the archive leaves out (a partial archive, see
   * ImageArchiveWriter): they are reported with `missing: true`. Without it they are ARCHIVE_CORRUPT.
   */
  partial?: boolean
}

/** Largest metadata entry (JSON) kept in memory (as in a layout directory); larger ones are drained like layers. */
export {METADATA_LIMIT} from '../oci/layout.js'
/** All metadata of one archive together may not exceed this. */
const METADATA_BUDGET = 256 * 1024 * 1024
const MAX_INDEX_DEPTH = 8

/**
 * The entries of a tar stream, one at a time; the caller must consume or drain each `stream` before asking for
 * the next (an entry left unread is drained when the next one is asked for). A compressed stream (gzip, zstd,
 * bzip2, xz) is decompressed first. Errors are ArchiveErrors that name the entry: ARCHIVE_TRUNCATED when the
 * stream ends early, ARCHIVE_CORRUPT for a damaged header, ARCHIVE_NOT_IMAGE when it is not a tar at all.
 *
 * @yields each entry: its header, and its body as a Readable
 */
export async function* archiveEntries(input: Readable, options: ArchiveReadOptions = {}): AsyncIterable<ArchiveEntry> {
  const source = options.source ?? 'the archive'
  let seen = 0
  try {
    for await (const {entry, open} of readTar(input, {
      decompress: true,
      decompressed: true,
      details: {source},
      // as Docker reads it: a tar may end at an entry boundary without its end-of-archive marker
      endMarker: 'optional',
      label: source,
      signal: options.signal,
      suggestions: {
        ARCHIVE_CORRUPT: ['get or write the archive again'],
        ARCHIVE_TRUNCATED: ['the file was cut short (an interrupted download or copy?): get or write it again'],
      },
    })) {
      options.signal?.throwIfAborted()
      const header = entryHeader(entry)
      seen++
      const body = open()
      yield {header, stream: body}
      if (body.destroyed && !body.readableEnded) {
        throw new Error(`the reader of ${header.name} stopped before its end`)
      }
    }
  } catch (error) {
    throw tarError(error, source, seen)
  }
}

function entryHeader(entry: TarEntry): ArchiveEntryHeader {
  const stored = entry.name.toString('utf8')
  const result: ArchiveEntryHeader = {
    name: normalizeName(stored),
    size: entry.declaredSize,
    stored,
    type: entry.type ?? 'file',
  }
  if (entry.linkname.length > 0) result.linkname = entry.linkname.toString('utf8')
  return result
}

function normalizeName(name: string): string {
  let result = name
  while (result.startsWith('./')) result = result.slice(2)
  while (result.startsWith('/')) result = result.slice(1)
  if (result.endsWith('/')) result = result.slice(0, -1)
  return result
}

/** A stream that is not a tar, or ends before its first entry, is not an image archive. */
function tarError(error: unknown, source: string, seen: number): unknown {
  if (!(error instanceof TarError) || seen > 0) return error
  if (error.reason === 'truncated') {
    return new ArchiveError(
      'ARCHIVE_NOT_IMAGE',
      `${source} is not an image archive: it is shorter than the header of a tar archive`,
      {
        cause: error,
        details: {source},
        suggestions: ['give a file written by `docker save` or `transship image save`'],
      },
    )
  }

  if (error.reason === 'not-tar') {
    return new ArchiveError(
      'ARCHIVE_NOT_IMAGE',
      `${source} is not an image archive: it is neither a tar archive nor a gzip, zstd, bzip2 or xz compressed one`,
      {
        cause: error,
        details: {source},
        suggestions: ['give a file written by `docker save` or `transship image save`'],
      },
    )
  }

  return error
}

interface FileEntry {
  compression: Compression
  /** the content, for metadata (JSON) entries */
  content?: Buffer
  /** hex sha256 of the content */
  digest: string
  path: string
  size: number
}

/**
 * Reads a whole image archive stream (compressed or not): small JSON entries are kept in memory (at most
 * METADATA_LIMIT each), layer bodies are hashed and drained, never buffered. Understands the legacy
 * docker-archive (manifest.json + `<id>/layer.tar` + `<config>.json`, Docker ≤ 24), Docker 25+ (an OCI layout
 * plus manifest.json), OCI image layout archives (oci-layout + index.json + blobs, nested indexes) and what
 * skopeo writes. Layer diffIDs come from the config's rootfs.diff_ids, by position.
 *
 * It checks that every manifest, config and layer named is there (see `partial`), that the counts of layers
 * and diff_ids agree, that every blob and uncompressed layer hashes to its name or diffID, and that the tar
 * is complete: ArchiveError otherwise, naming the entry. A legacy v1 archive (only `repositories`) is
 * ARCHIVE_UNSUPPORTED. All images of a multi-image archive are returned.
 */
export async function indexArchive(input: Readable, options: IndexArchiveOptions = {}): Promise<ArchiveIndex> {
  const source = options.source ?? 'the archive'
  const files = new Map<string, FileEntry>()
  const links = new Map<string, string>()
  const paths = new EntryPaths(source)
  let kept = 0
  for await (const {header, stream} of archiveEntries(input, options)) {
    paths.add({linkname: header.linkname, stored: header.stored, type: header.type})
    if (header.type === 'symlink' && header.linkname) {
      links.set(header.name, normalizeName(path.posix.join(path.posix.dirname(header.name), header.linkname)))
    } else if (header.type === 'link' && header.linkname) {
      links.set(header.name, normalizeName(header.linkname))
    } else if (header.type === 'file' || header.type === 'contiguous-file') {
      const file = await readEntry(header, stream, METADATA_BUDGET - kept)
      kept += file.content?.length ?? 0
      files.set(header.name, file)
    }
  }

  paths.check()
  return new ArchiveReader(source, files, links, Boolean(options.partial), paths).read()
}

async function readEntry(header: ArchiveEntryHeader, stream: Readable, budget: number): Promise<FileEntry> {
  const hash = createHash('sha256')
  let head = Buffer.alloc(0)
  const chunks: Buffer[] = []
  let keep = header.size <= Math.min(METADATA_LIMIT, budget)
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk)
    if (head.length < COMPRESSION_MAGIC_LENGTH) {
      head = Buffer.concat([head, chunk.subarray(0, COMPRESSION_MAGIC_LENGTH - head.length)])
      if (keep && !looksLikeJson(head) && !isMetadataName(header.name)) keep = false
    }

    if (keep) chunks.push(chunk)
  }

  const file: FileEntry = {
    compression: detectCompression(head),
    digest: hash.digest('hex'),
    path: header.name,
    size: header.size,
  }
  if (keep) file.content = Buffer.concat(chunks)
  return file
}

function looksLikeJson(head: Buffer): boolean {
  const text = head.toString('latin1').trimStart()
  return text === '' || text.startsWith('{') || text.startsWith('[') || text.startsWith('null')
}

function isMetadataName(name: string): boolean {
  return ['index.json', 'manifest.json', 'oci-layout', 'repositories'].includes(name) || name.endsWith('.json')
}

interface DockerManifestEntry {
  Config?: unknown
  Layers?: unknown
  LayerSources?: Record<string, {digest?: string; mediaType?: string; size?: number}>
  RepoTags?: unknown
}

/** What was found in index.json about one manifest: its digest and the names its descriptors give it. */
interface IndexedManifest {
  configDigest: string
  indexDigest?: string
  manifest: OciManifest
  manifestDigest: string
  names: string[]
}

class ArchiveReader {
  constructor(
    private readonly source: string,
    private readonly files: Map<string, FileEntry>,
    private readonly links: Map<string, string>,
    private readonly partial: boolean,
    private readonly paths: EntryPaths,
  ) {}

  read(): ArchiveIndex {
    this.checkBlobs()
    const hasManifest = this.files.has('manifest.json')
    const hasIndex = this.files.has('index.json')
    if (!hasManifest && !hasIndex) throw this.notAnImageArchive()
    const dockerEntries = hasManifest ? this.dockerManifest() : undefined
    const indexed = hasIndex ? this.ociIndex(dockerEntries !== undefined && dockerEntries.length > 0) : []
    if (dockerEntries && dockerEntries.length > 0) {
      const images = dockerEntries.map((entry, position) => this.dockerImage(entry, position, indexed))
      return {format: hasIndex ? 'docker+oci' : 'docker', images}
    }

    if (indexed.length === 0) {
      const what = hasManifest ? 'manifest.json is empty (`null` or `[]`)' : 'index.json lists no images'
      throw this.corrupt(`${what}: the archive holds no image`, hasManifest ? 'manifest.json' : 'index.json')
    }

    return {format: 'oci', images: this.mergeByManifest(indexed.map((item) => this.ociImage(item)))}
  }

  /** Every `blobs/<algorithm>/<hex>` entry must hash to its name. */
  private checkBlobs(): void {
    for (const file of this.files.values()) {
      const match = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(file.path)
      if (match && match[1] !== file.digest) {
        throw this.corrupt(`${file.path} does not hash to its name (its content is sha256:${file.digest})`, file.path)
      }
    }
  }

  private config(
    configPath: string,
    what: string,
  ): {bytes: Buffer; config: ImageConfig; digest: string; file: FileEntry} {
    const file = this.lookup(configPath)
    if (!file)
      throw this.corrupt(`${what} names the config ${configPath}, but the archive has no such entry`, configPath)
    if (!file.content) {
      throw new ArchiveError(
        'ARCHIVE_UNSUPPORTED',
        `${this.source}: the config ${configPath} is larger than ${METADATA_LIMIT} bytes`,
        {
          details: {entry: configPath, source: this.source},
        },
      )
    }

    const config = this.parseJson<ImageConfig>(file, configPath)
    if (!config || typeof config !== 'object')
      throw this.corrupt(`the config ${configPath} is not a JSON object`, configPath)
    return {bytes: file.content, config, digest: `sha256:${file.digest}`, file}
  }

  private corrupt(message: string, entry?: string): ArchiveError {
    return new ArchiveError('ARCHIVE_CORRUPT', `${this.source} is not a valid image archive: ${message}`, {
      details: {entry, source: this.source},
      suggestions: ['write the archive again (docker save, transship image save), or get an undamaged copy'],
    })
  }

  private diffIDs(config: ImageConfig, configPath: string): string[] {
    const ids = config.rootfs?.diff_ids
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(id))) {
      throw this.corrupt(`the config ${configPath} has no valid rootfs.diff_ids`, configPath)
    }

    return ids as string[]
  }

  private dockerImage(entry: DockerManifestEntry, position: number, indexed: IndexedManifest[]): ArchiveImage {
    const what = `manifest.json (image ${position + 1})`
    if (typeof entry.Config !== 'string') throw this.corrupt(`${what} has no Config`, 'manifest.json')
    if (!Array.isArray(entry.Layers) || entry.Layers.some((layer) => typeof layer !== 'string')) {
      throw this.corrupt(`${what} has no valid Layers list`, 'manifest.json')
    }

    const repoTags = entry.RepoTags ?? []
    if (!Array.isArray(repoTags) || repoTags.some((tag) => typeof tag !== 'string')) {
      throw this.corrupt(`${what} has a RepoTags that is not a list of names`, 'manifest.json')
    }

    this.paths.reference(entry.Config, `${what} Config`)
    for (const [index, layer] of (entry.Layers as string[]).entries()) {
      this.paths.reference(layer, `${what} layer ${index + 1}`)
    }

    const {bytes, config, digest} = this.config(entry.Config, what)
    const diffIDs = this.diffIDs(config, entry.Config)
    const layerPaths = entry.Layers as string[]
    if (layerPaths.length !== diffIDs.length) {
      throw this.corrupt(
        `${what} lists ${layerPaths.length} layers, but its config ${entry.Config} has ${diffIDs.length} diff_ids`,
        'manifest.json',
      )
    }

    const oci = indexed.find((item) => item.configDigest === digest)
    const layers = layerPaths.map((layerPath, index) => {
      const diffID = diffIDs[index]!
      // LayerSources describe where a (foreign) layer came from, not necessarily the blob stored here: they
      // only stand in for a layer the archive leaves out
      const hint = entry.LayerSources?.[diffID]
      return this.layer({
        descriptor: oci?.manifest.layers?.[index],
        diffID,
        hint: hint ? {digest: hint.digest, mediaType: hint.mediaType, size: hint.size} : undefined,
        layerPath,
        what: `${what} layer ${index + 1}`,
      })
    })
    const names = (repoTags as string[]).length > 0 ? (repoTags as string[]) : (oci?.names ?? [])
    const image: ArchiveImage = {
      config: bytes,
      configDigest: digest,
      layers,
      platform: platformOf(config),
      repoTags: unique(names.map((name) => familiarName(name))),
    }
    if (oci) image.manifestDigest = oci.manifestDigest
    if (oci?.indexDigest) image.indexDigest = oci.indexDigest
    return image
  }

  private dockerManifest(): DockerManifestEntry[] {
    const file = this.files.get('manifest.json')!
    const parsed = this.parseJson<unknown>(file, 'manifest.json')
    if (parsed === null) return []
    if (!Array.isArray(parsed) || parsed.some((item) => !item || typeof item !== 'object')) {
      throw this.corrupt('manifest.json is not a list of images', 'manifest.json')
    }

    return parsed as DockerManifestEntry[]
  }

  /**
   * One layer: `descriptor` describes the stored blob (an OCI or Docker manifest) and is checked against it;
   * `hint` (manifest.json LayerSources) only describes a layer the archive leaves out.
   */
  private layer(options: {
    descriptor?: Descriptor | undefined
    diffID: string
    hint?: Descriptor | undefined
    layerPath: string
    what: string
  }): ArchiveLayer {
    const {descriptor, diffID, layerPath, what} = options
    const file = this.lookup(layerPath)
    if (!file) return this.missingLayer(options)

    const digest = `sha256:${file.digest}`
    if (
      descriptor &&
      (descriptor.digest !== digest || (descriptor.size !== undefined && descriptor.size !== file.size))
    ) {
      throw this.corrupt(
        `${what} should be ${String(descriptor.digest)} (${descriptor.size} bytes), but ${file.path} is ${digest} (${file.size} bytes)`,
        file.path,
      )
    }

    if (file.compression === 'none' && digest !== diffID) {
      throw this.corrupt(
        `${what} (${file.path}) does not match its diff_id: the config says ${diffID}, its content is ${digest}`,
        file.path,
      )
    }

    const hint = options.hint?.digest === digest ? options.hint : undefined
    const aliases = this.aliasesOf(file.path)
    return {
      ...(aliases.length > 0 ? {aliases} : {}),
      diffID,
      digest,
      mediaType: descriptor?.mediaType ?? hint?.mediaType ?? layerMediaType(file.compression),
      path: file.path,
      size: file.size,
    }
  }

  /** A layer the archive lists but leaves out: an error, unless partial archives are accepted. */
  private missingLayer(options: {
    descriptor?: Descriptor | undefined
    diffID: string
    hint?: Descriptor | undefined
    layerPath: string
    what: string
  }): ArchiveLayer {
    const {diffID, layerPath, what} = options
    if (!this.partial) {
      throw this.corrupt(`${what} is ${layerPath}, but the archive has no such entry`, layerPath)
    }

    const known = options.descriptor ?? options.hint
    return {
      diffID,
      digest: isDigest(known?.digest) ? known.digest : diffID,
      mediaType: known?.mediaType ?? MEDIA.dockerLayer,
      missing: true,
      path: layerPath,
      size: known?.size ?? 0,
    }
  }

  /** The link entries that lead to `target`. */
  private aliasesOf(target: string): string[] {
    return [...this.links.keys()].filter((link) => link !== target && this.lookup(link)?.path === target).sort()
  }

  /** The entry at `entryPath`, following symbolic and hard links. */
  private lookup(entryPath: string): FileEntry | undefined {
    let current = normalizeName(entryPath)
    for (let hops = 0; hops < 16 && !this.files.has(current); hops++) {
      const target = this.links.get(current)
      if (target === undefined) break
      current = target
    }

    return this.files.get(current)
  }

  /** Images listed once per name in index.json are one image with several names. */
  private mergeByManifest(images: ArchiveImage[]): ArchiveImage[] {
    const merged = new Map<string, ArchiveImage>()
    for (const image of images) {
      const key = image.manifestDigest ?? image.configDigest
      const known = merged.get(key)
      if (known) known.repoTags = unique([...known.repoTags, ...image.repoTags])
      else merged.set(key, image)
    }

    return [...merged.values()]
  }

  private notAnImageArchive(): ArchiveError {
    if (this.files.has('repositories')) {
      return new ArchiveError(
        'ARCHIVE_UNSUPPORTED',
        `${this.source} is a legacy (v1) Docker image archive: it has only \`repositories\` and per-layer \`json\` files, no manifest.json. Docker stopped writing this layout in version 1.10, and engines load it without reporting what they loaded`,
        {
          details: {source: this.source},
          suggestions: ['save the image again with a current Docker (`docker save`) or `transship image save`'],
        },
      )
    }

    const what =
      this.files.size === 0 && this.links.size === 0
        ? 'it is an empty tar archive'
        : 'it is a tar archive without manifest.json or index.json'
    return new ArchiveError('ARCHIVE_NOT_IMAGE', `${this.source} is not an image archive: ${what}`, {
      details: {source: this.source},
      suggestions: ['give a file written by `docker save`, `skopeo copy … oci-archive:` or `transship image save`'],
    })
  }

  private ociImage(item: IndexedManifest): ArchiveImage {
    const what = `the manifest ${item.manifestDigest}`
    const {configDigest} = item
    const {bytes, config} = this.config(blobPath(configDigest), what)
    const diffIDs = this.diffIDs(config, blobPath(configDigest))
    const descriptors = item.manifest.layers ?? []
    if (descriptors.length !== diffIDs.length) {
      throw this.corrupt(
        `${what} lists ${descriptors.length} layers, but its config has ${diffIDs.length} diff_ids`,
        blobPath(item.manifestDigest),
      )
    }

    const layers = descriptors.map((descriptor, index) => {
      if (!isDigest(descriptor.digest))
        throw this.corrupt(`${what} has a layer without a valid digest`, blobPath(item.manifestDigest))
      return this.layer({
        descriptor,
        diffID: diffIDs[index]!,
        layerPath: blobPath(descriptor.digest),
        what: `${what} layer ${index + 1}`,
      })
    })
    const image: ArchiveImage = {
      config: bytes,
      configDigest,
      layers,
      manifestDigest: item.manifestDigest,
      platform: platformOf(config),
      repoTags: unique(item.names),
    }
    if (item.indexDigest) image.indexDigest = item.indexDigest
    return image
  }

  /**
   * The image manifests index.json leads to, with the names its descriptors give them. Nested indexes are
   * followed; a child manifest whose blob is left out (another platform of a multi-platform image, as
   * Docker saves them) is skipped, a top-level one is an error unless `lenient` (manifest.json decides).
   */
  private ociIndex(lenient: boolean): IndexedManifest[] {
    const file = this.files.get('index.json')!
    const index = this.parseJson<OciManifest>(file, 'index.json')
    if (!index || typeof index !== 'object') throw this.corrupt('index.json is not a JSON object', 'index.json')
    const found: IndexedManifest[] = []
    const walk = (
      descriptors: Descriptor[] | null | undefined,
      names: string[],
      depth: number,
      where: string,
      top?: string,
    ) => {
      if (depth > MAX_INDEX_DEPTH) throw this.corrupt(`${where}: indexes nested too deeply`, where)
      for (const descriptor of descriptors ?? []) {
        if (!isDigest(descriptor.digest)) throw this.corrupt(`${where} lists a manifest without a valid digest`, where)
        const own = [...names, ...namesOf(descriptor.annotations)]
        const blob = this.lookup(blobPath(descriptor.digest))
        if (!blob) {
          if (depth > 0 || lenient) continue
          throw this.corrupt(
            `${where} lists ${descriptor.digest}, but the archive has no ${blobPath(descriptor.digest)}`,
            where,
          )
        }

        const manifest = this.parseJson<OciManifest>(blob, blob.path)
        if (!manifest || typeof manifest !== 'object')
          throw this.corrupt(`${blob.path} is not a JSON object`, blob.path)
        const mediaType = descriptor.mediaType ?? manifest.mediaType
        if (isIndexMediaType(mediaType) || Array.isArray(manifest.manifests)) {
          walk(manifest.manifests, own, depth + 1, blob.path, top ?? descriptor.digest)
          continue
        }

        if (!manifest.config || !isDigest(manifest.config.digest)) {
          if (lenient) continue
          throw this.corrupt(`${blob.path} is not an image manifest (it has no config)`, blob.path)
        }

        const item: IndexedManifest = {
          configDigest: manifest.config.digest,
          manifest,
          manifestDigest: descriptor.digest,
          names: own,
        }
        if (top) item.indexDigest = top
        found.push(item)
      }
    }

    walk(index.manifests, [], 0, 'index.json')
    return found
  }

  private parseJson<T>(file: FileEntry, name: string): T {
    if (!file.content) {
      throw new ArchiveError('ARCHIVE_UNSUPPORTED', `${this.source}: ${name} is larger than ${METADATA_LIMIT} bytes`, {
        details: {entry: name, source: this.source},
      })
    }

    try {
      return JSON.parse(file.content.toString('utf8')) as T
    } catch {
      throw this.corrupt(`${name} is not valid JSON`, name)
    }
  }
}

/** The names an index descriptor's annotations give an image, in familiar form. */
function namesOf(annotations: Record<string, string> | undefined): string[] {
  if (!annotations) return []
  const full = annotations[NAME_ANNOTATION]
  if (full) return [familiarName(full)]
  const ref = annotations[REF_ANNOTATION]
  // a bare tag (`1`, `latest`) names no repository: not a name an engine could use
  if (ref && /[:/]/.test(ref) && !ref.startsWith(':')) return [familiarName(ref)]
  return []
}

function layerMediaType(compression: Compression): string {
  switch (compression) {
    case 'gzip': {
      return MEDIA.dockerLayerGzip
    }

    case 'zstd': {
      return MEDIA.ociLayerZstd
    }

    default: {
      return MEDIA.dockerLayer
    }
  }
}

function platformOf(config: ImageConfig): string {
  const parts = [config.os ?? 'unknown', config.architecture ?? 'unknown']
  if (config.variant) parts.push(config.variant)
  return parts.join('/')
}

function unique(values: string[]): string[] {
  return [...new Set(values)]
}

/** The distinct layers of an index (by digest), in the order they first appear. */
export function archiveLayers(index: ArchiveIndex): ArchiveLayer[] {
  const seen = new Map<string, ArchiveLayer>()
  for (const image of index.images)
    for (const layer of image.layers) if (!seen.has(layer.digest)) seen.set(layer.digest, layer)
  return [...seen.values()]
}
