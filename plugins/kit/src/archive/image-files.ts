/**
 * Reads the files of an image: from a docker-archive or OCI archive file, an OCI image layout directory or an
 * engine (`GET /images/{name}/get`). Each gives its config and layers; the layers are read as tars, streamed,
 * and flattened bottom first with OCI whiteouts into a map of file metadata (content hashed; kept only for the
 * paths asked for, up to CONTENT_LIMIT each). Used by `rootfs diff` and by `verify` on image archives.
 */
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import path from 'node:path'
import {type Readable} from 'node:stream'

import type {EngineClient} from '../engine.js'

import {EngineError, type UsageCode, UsageError} from '../errors.js'
import {blobName as blobPath, isNamed, OciLayout} from '../oci/layout.js'
import {parseImageLocation} from '../oci/location.js'
import {IMAGE_NAME_ANNOTATION as NAME_ANNOTATION, REF_NAME_ANNOTATION as REF_ANNOTATION} from '../oci/types.js'
import {readTar, type TarEntry} from '../tar/index.js'
import {ArchiveError} from './errors.js'
import {archiveEntries, type ArchiveImage, indexArchive} from './image-archive.js'
import {familiarName} from './names.js'

/** The metadata of one path of a flattened image filesystem (no content is kept, only its hash). */
export interface FileInfo {
  /** tar-stream's type name: file, directory, symlink, link (hard link), character-device, block-device, fifo */
  type: string
  /** permission bits with setuid, setgid and sticky (mode & 0o7777) */
  mode: number
  uid: number
  gid: number
  /** seconds since the epoch; fractional when a pax header carries sub-second precision */
  mtime: number
  /** bytes of content: regular files only, 0 for everything else */
  size: number
  /** hex sha256 of the content of a regular file */
  sha256?: string
  /** symlink target as stored, or the (normalised) path a hard link repeats */
  linkname?: string
  devmajor?: number
  devminor?: number
  /** pax `SCHILY.xattr.*` values by attribute name, decoded as UTF-8 */
  xattrs?: Record<string, string>
  /** the content of a regular file, when it was asked for (see FilesOptions.contents) */
  content?: Buffer
}

/** path (relative, no leading `./` or `/`, no trailing `/`) → metadata */
export type FileTree = ReadonlyMap<string, FileInfo>

/** Who an image is: what was given, and what identifies its content. */
export interface ImageSummary {
  configDigest: string
  /** layers, bottom first */
  diffIDs: string[]
  /** paths in the flattened filesystem, when its layers were read */
  files?: number
  /** the argument as given, e.g. `oci:out/layout:bookworm` */
  input: string
  names: string[]
  platform?: string
}

/** The largest file content kept in memory when asked for (FilesOptions.contents). */
export const CONTENT_LIMIT = 64 * 1024 * 1024

interface FilesOptions {
  cache?: LayerCache
  /** the paths (normalised: no leading `/`) whose content to keep, if regular files of at most CONTENT_LIMIT */
  contents?: ReadonlySet<string>
  signal?: AbortSignal
}

/** Where an image is read from (skopeo's transport names). */
export type ImageSource =
  | {dir: string; input: string; kind: 'oci'; ref?: string}
  | {file: string; input: string; kind: 'docker-archive' | 'oci-archive'; ref?: string}
  | {input: string; kind: 'engine'; ref: string}

/** One entry of a layer tar, as it changes the filesystem below it. */
export type LayerEntry =
  {dir: string; kind: 'opaque'} | {info: FileInfo; kind: 'file'; path: string} | {kind: 'whiteout'; path: string}

/** Layers read for one image, kept (by diffID) for the other image when it has them too. */
export interface LayerCache {
  /** the diffIDs worth keeping */
  keep: ReadonlySet<string>
  layers: Map<string, LayerEntry[]>
}

/** An image whose config and layer list are known; its layers are read only when files() is called. */
export interface OpenedImage {
  config: unknown
  files(options?: FilesOptions): Promise<Map<string, FileInfo>>
  summary: ImageSummary
}

/** The error code of a bad image input (`rootfs diff` has its own). */
interface ImageInputOptions {
  code?: UsageCode
}

const WHITEOUT = '.wh.'
const OPAQUE = '.wh..wh..opq'
const XATTR = 'SCHILY.xattr.'

/**
 * What an argument names: `docker-archive:FILE[:NAME]`, `oci-archive:FILE[:NAME]`, `oci:DIR[:REF]`,
 * `docker-daemon:REF`, a bare path (a file: an archive; a directory: an OCI layout) or else an image on the
 * engine. A prefixed path that does not exist, or a bare one that looks like a path, is a UsageError.
 */
export async function resolveImageSource(input: string, options: ImageInputOptions = {}): Promise<ImageSource> {
  const code = options.code ?? 'IMAGE_INPUT'
  const location = parseImageLocation(input, {code})
  if (location.kind === 'engine') {
    if (location.ref !== input) return {input, kind: 'engine', ref: location.ref} // docker-daemon:REF
  } else if (location.kind === 'oci') {
    await requireKind(location.path, 'directory', input, code)
    return {dir: location.path, input, kind: 'oci', ...(location.ref ? {ref: location.ref} : {})}
  } else {
    await requireKind(location.path, 'file', input, code)
    return {file: location.path, input, kind: location.kind, ...(location.ref ? {ref: location.ref} : {})}
  }

  const found = await stat(input).catch(() => {})
  if (found?.isDirectory()) return {dir: input, input, kind: 'oci'}
  if (found?.isFile()) return {file: input, input, kind: 'docker-archive'}
  if (/^(\.{0,2}\/|~)/.test(input) || /\.(tar|tgz|tzst|gz|zst|bz2|xz)$/i.test(input)) {
    throw notFound(input, input, 'file or directory', code)
  }

  return {input, kind: 'engine', ref: input}
}

async function requireKind(
  location: string,
  kind: 'directory' | 'file',
  input: string,
  code: UsageCode,
): Promise<void> {
  const found = await stat(location).catch(() => {})
  if (kind === 'directory' ? found?.isDirectory() : found?.isFile()) return
  throw found
    ? new UsageError(`${input}: ${location} is not a ${kind}`, {
        code,
        details: {input},
        suggestions: [
          kind === 'directory' ? 'an archive file is docker-archive:FILE or oci-archive:FILE' : 'a layout is oci:DIR',
        ],
      })
    : notFound(input, location, kind, code)
}

function notFound(input: string, location: string, what: string, code: UsageCode): UsageError {
  return new UsageError(`${input}: there is no ${what} ${location}`, {
    code,
    details: {input},
    suggestions: ['give an archive file, an OCI layout directory (oci:DIR) or an image on the engine (--host)'],
  })
}

/** Reads an image's config and layer list (no layers yet). `engine` is needed for engine sources. */
export async function openImage(
  source: ImageSource,
  options: ImageInputOptions & {engine?: EngineClient; signal?: AbortSignal} = {},
): Promise<OpenedImage> {
  const code = options.code ?? 'IMAGE_INPUT'
  switch (source.kind) {
    case 'docker-archive':
    case 'oci-archive': {
      const {file} = source
      return openArchive(source, async () => createReadStream(file), code, options.signal)
    }

    case 'engine': {
      const {engine} = options
      if (!engine) throw new Error(`an engine is needed to read ${source.input}`)
      return openEngineImage(source, engine, code, options.signal)
    }

    case 'oci': {
      return openLayout(source, code, options.signal)
    }
  }
}

/** An image of the engine, saved twice (`GET /images/{id}/get`): once to index it, once to read its layers. */
async function openEngineImage(
  source: Extract<ImageSource, {kind: 'engine'}>,
  engine: EngineClient,
  code: UsageCode,
  signal?: AbortSignal,
): Promise<OpenedImage> {
  let id: string
  try {
    ;({Id: id} = await engine.json<{Id: string}>({path: `/images/${encodeURIComponent(source.ref)}/json`, signal}))
  } catch (error) {
    if (error instanceof EngineError && error.status === 404) {
      throw new UsageError(`image ${source.ref} is not on host "${engine.host}"`, {
        code: 'IMAGE_NOT_FOUND',
        details: {host: engine.host, image: source.ref},
        suggestions: [
          `list what the host has with: transship image ls --host ${engine.host}`,
          'for a file or directory, give its path (docker-archive:FILE, oci:DIR)',
        ],
      })
    }

    throw error
  }

  // by ID, so both reads get the same image even if the name moves meanwhile
  const open = async () => engine.stream({path: `/images/${encodeURIComponent(id)}/get`, signal})
  return openArchive(source, open, code, signal, id)
}

/**
 * An image of an archive stream (`open` gives the stream anew for each pass): indexArchive finds the config
 * and layers, a second pass reads the layer entries it needs.
 */
async function openArchive(
  source: ImageSource,
  open: () => Promise<Readable>,
  code: UsageCode,
  signal?: AbortSignal,
  engineId?: string,
): Promise<OpenedImage> {
  const what = source.kind === 'engine' ? `the archive of ${source.ref}` : source.input
  const index = await indexArchive(await open(), {signal, source: what})
  const image = pickArchiveImage(index.images, source, code, engineId)
  const diffIDs = image.layers.map((layer) => layer.diffID)
  return {
    config: parseConfig(image.config, what),
    async files(options = {}) {
      const layers = new Map<string, LayerEntry[]>()
      const wanted = new Map<string, string>()
      for (const layer of image.layers) {
        const cached = options.cache?.layers.get(layer.diffID)
        if (cached) layers.set(layer.diffID, cached)
        else wanted.set(layer.path, layer.diffID)
      }

      if (wanted.size > 0) {
        for await (const {header, stream} of archiveEntries(await open(), {signal: options.signal, source: what})) {
          const diffID = wanted.get(header.name)
          if (diffID === undefined || layers.has(diffID) || header.type !== 'file') continue
          layers.set(
            diffID,
            await readLayer(stream, {
              contents: options.contents,
              diffID,
              signal: options.signal,
              source: `${what} ${header.name}`,
            }),
          )
          wanted.delete(header.name)
          // the rest of the archive is not needed: stop reading it
          if (wanted.size === 0) break
        }
      }

      return flatten(diffIDs, layers, options.cache, what)
    },
    summary: {
      configDigest: image.configDigest,
      diffIDs,
      input: source.input,
      names: image.repoTags,
      ...(image.platform ? {platform: image.platform} : {}),
    },
  }
}

function pickArchiveImage(
  images: ArchiveImage[],
  source: ImageSource,
  code: UsageCode,
  engineId?: string,
): ArchiveImage {
  const {input} = source
  if (engineId) {
    const match = images.find((image) =>
      [image.configDigest, image.indexDigest, image.manifestDigest].includes(engineId),
    )
    if (match) return match
  }

  const ref = source.kind === 'engine' ? undefined : source.ref
  const candidates = ref ? images.filter((image) => image.repoTags.includes(familiarName(ref))) : images
  if (candidates.length === 1) return candidates[0]!
  const listed = images.map((image) => image.repoTags.join(' ') || image.configDigest.slice(0, 19)).join(', ')
  throw new UsageError(
    candidates.length === 0
      ? `${input}: the archive has no image named ${ref} (it has ${listed})`
      : `${input}: the archive holds ${images.length} images (${listed}): say which`,
    {
      code,
      details: {input},
      suggestions: ['select one by name: docker-archive:FILE:NAME or oci-archive:FILE:NAME'],
    },
  )
}

/**
 * An image of an OCI image layout directory: index.json (nested indexes followed) leads to one manifest,
 * selected by `ref` (the `org.opencontainers.image.ref.name` or `io.containerd.image.name` annotation) when
 * there are several.
 */
async function openLayout(
  source: Extract<ImageSource, {kind: 'oci'}>,
  code: UsageCode,
  signal?: AbortSignal,
): Promise<OpenedImage> {
  const {dir, input, ref} = source
  const corrupt = (message: string) =>
    new ArchiveError('ARCHIVE_CORRUPT', `${input} is not a valid OCI image layout: ${message}`, {
      details: {source: input},
      suggestions: ['write the layout again, or give the image another way (an archive or the engine)'],
    })
  const layout = new OciLayout(dir, {corrupt, signal, source: input})
  const index = await layout.index()
  if (!index) {
    throw new ArchiveError('ARCHIVE_NOT_IMAGE', `${input}: ${dir} is not an OCI image layout (it has no index.json)`, {
      details: {source: input},
      suggestions: ['give the directory `skopeo copy … oci:DIR` or `transship rootfs build` wrote'],
    })
  }

  const top = (index.manifests ?? []).filter((descriptor) => !ref || isNamed(descriptor, ref))
  const found = (await layout.images(top)).map((image) => ({
    ...image,
    names: image.chain.flatMap((descriptor) => annotationNames(descriptor.annotations)),
  }))
  if (found.length !== 1) {
    const listed = (index.manifests ?? []).flatMap((descriptor) => annotationNames(descriptor.annotations))
    throw new UsageError(
      found.length === 0
        ? `${input}: the layout has no image${ref ? ` named ${ref}` : ''}${listed.length > 0 ? ` (it has ${listed.join(', ')})` : ''}`
        : `${input}: the layout holds ${found.length} images${listed.length > 0 ? ` (${listed.join(', ')})` : ''}: say which`,
      {
        code,
        details: {input},
        suggestions: ['select one by its ref name: oci:DIR:REF'],
      },
    )
  }

  const {manifest, names} = found[0]!
  const configDigest = String(manifest.config?.digest)
  const configBytes = await layout.readBlob(manifest.config?.digest, 'the config')
  const config = parseConfig(configBytes, input)
  const diffIDs = configDiffIDs(config)
  const descriptors = manifest.layers ?? []
  if (!diffIDs || diffIDs.length !== descriptors.length) {
    throw corrupt(`the manifest lists ${descriptors.length} layers, but its config does not have as many diff_ids`)
  }

  return {
    config,
    async files(options = {}) {
      const layers = new Map<string, LayerEntry[]>()
      for (const [position, descriptor] of descriptors.entries()) {
        const diffID = diffIDs[position]!
        if (layers.has(diffID)) continue
        const cached = options.cache?.layers.get(diffID)
        if (cached) {
          layers.set(diffID, cached)
          continue
        }

        if (!(await layout.hasBlob(descriptor.digest)))
          throw corrupt(`layer ${position + 1} has no blob ${blobPath(String(descriptor.digest))}`)
        layers.set(
          diffID,
          await readLayer(layout.openBlob(descriptor.digest as string), {
            contents: options.contents,
            diffID,
            signal: options.signal,
            source: `${input} layer ${position + 1}`,
          }),
        )
      }

      return flatten(diffIDs, layers, options.cache, input)
    },
    summary: {configDigest, diffIDs, input, names: [...new Set(names)], platform: platformOf(config)},
  }
}

function annotationNames(annotations: Record<string, string> | undefined): string[] {
  const name = annotations?.[NAME_ANNOTATION] ?? annotations?.[REF_ANNOTATION]
  return name ? [name] : []
}

function parseJson<T>(bytes: Buffer, corrupt: (message: string) => Error, what: string): T {
  let parsed: unknown
  try {
    parsed = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw corrupt(`${what} is not valid JSON`)
  }

  if (!parsed || typeof parsed !== 'object') throw corrupt(`${what} is not a JSON object`)
  return parsed as T
}

function parseConfig(bytes: Buffer, what: string): Record<string, unknown> {
  return parseJson<Record<string, unknown>>(
    bytes,
    (message) =>
      new ArchiveError('ARCHIVE_CORRUPT', `${what}: the image config ${message.replace(/^the config /, '')}`),
    'the config',
  )
}

function configDiffIDs(config: Record<string, unknown>): string[] | undefined {
  const rootfs = config.rootfs as undefined | {diff_ids?: unknown}
  const ids = rootfs?.diff_ids
  return Array.isArray(ids) && ids.every((id) => typeof id === 'string') ? (ids as string[]) : undefined
}

function platformOf(config: Record<string, unknown>): string {
  const part = (key: string) => (typeof config[key] === 'string' ? (config[key] as string) : undefined)
  return [part('os') ?? 'unknown', part('architecture') ?? 'unknown', part('variant')].filter(Boolean).join('/')
}

/** Applies the layers bottom first (the same diffID twice is the same layer). */
function flatten(
  diffIDs: string[],
  layers: Map<string, LayerEntry[]>,
  cache: LayerCache | undefined,
  what: string,
): Map<string, FileInfo> {
  const tree = new Map<string, FileInfo>()
  for (const diffID of diffIDs) {
    const entries = layers.get(diffID)
    if (!entries) {
      throw new ArchiveError('ARCHIVE_CORRUPT', `${what} is not a valid image archive: it has no layer ${diffID}`, {
        details: {source: what},
      })
    }

    if (cache?.keep.has(diffID)) cache.layers.set(diffID, entries)
    applyLayer(tree, entries)
  }

  return tree
}

/**
 * Applies one layer to the filesystem below it, as overlay and `docker load` do: whiteouts first (`.wh.NAME`
 * removes NAME and what is under it, `.wh..wh..opq` what the directory held), then the entries. A non-directory
 * that replaces a directory removes what was under it.
 */
export function applyLayer(tree: Map<string, FileInfo>, entries: LayerEntry[]): void {
  const removed = new Set<string>()
  const cleared = new Set<string>()
  for (const entry of entries) {
    if (entry.kind === 'whiteout') removed.add(entry.path)
    else if (entry.kind === 'opaque') cleared.add(entry.dir)
    else if (entry.info.type !== 'directory' && tree.get(entry.path)?.type === 'directory') cleared.add(entry.path)
  }

  // one pass over the tree per layer with whiteouts, not one per whiteout
  if (removed.size > 0 || cleared.size > 0) {
    for (const key of tree.keys()) {
      if (removed.has(key) || hasAncestorIn(key, removed) || hasAncestorIn(key, cleared)) tree.delete(key)
    }
  }

  for (const entry of entries) if (entry.kind === 'file') tree.set(entry.path, entry.info)
}

/** Whether a strict ancestor of `key` (the root is '') is in `set`. */
function hasAncestorIn(key: string, set: ReadonlySet<string>): boolean {
  let current = key
  while (current !== '') {
    const slash = current.lastIndexOf('/')
    current = slash === -1 ? '' : current.slice(0, slash)
    if (set.has(current)) return true
  }

  return false
}

/** `./a/b/` → `a/b`; the root is ''. */
export function normalizePath(name: string): string {
  let result = name
  for (;;) {
    const next = result.replace(/^\.\/|^\/+/, '').replace(/\/+$/, '')
    if (next === result) break
    result = next
  }

  return result === '.' ? '' : result
}

/**
 * The entries of a layer tar (gzip, zstd, bzip2 or xz compressed or not), each regular file's content hashed.
 * With `diffID`, the uncompressed tar must hash to it (ARCHIVE_CORRUPT otherwise); a tar that ends early is
 * ARCHIVE_TRUNCATED, a damaged one ARCHIVE_CORRUPT.
 */
export async function readLayer(
  input: Readable,
  options: {contents?: ReadonlySet<string>; diffID?: string; signal?: AbortSignal; source: string},
): Promise<LayerEntry[]> {
  const {signal, source} = options
  const hash = createHash('sha256')
  const entries: LayerEntry[] = []
  for await (const {entry, open} of readTar(input, {
    decompress: true,
    decompressed: true,
    details: {source},
    // as Docker reads a layer: it may end at an entry boundary without its end-of-archive marker
    endMarker: 'optional',
    label: source,
    signal,
    suggestions: {
      ARCHIVE_CORRUPT: ['get or write the image again'],
      ARCHIVE_TRUNCATED: ['the image was cut short: get or write it again'],
    },
    tap: (chunk) => hash.update(chunk),
  })) {
    const layerEntry = await readEntry(entry, open, options.contents)
    if (layerEntry) entries.push(layerEntry)
  }

  if (options.diffID) {
    const digest = `sha256:${hash.digest('hex')}`
    if (digest !== options.diffID) {
      throw new ArchiveError(
        'ARCHIVE_CORRUPT',
        `${source} does not match its diffID: the config says ${options.diffID}, the layer tar is ${digest}`,
        {details: {source}, suggestions: ['get or write the image again']},
      )
    }
  }

  return entries
}

async function readEntry(
  entry: TarEntry,
  open: () => Readable,
  contents?: ReadonlySet<string>,
): Promise<LayerEntry | undefined> {
  const entryPath = normalizePath(entry.name.toString('utf8'))
  const regular = entry.type === 'file' || entry.type === 'contiguous-file'
  const keep = contents?.has(entryPath) === true && entry.declaredSize <= CONTENT_LIMIT
  const {content, digest} = regular ? await hashBody(open(), keep) : {}
  const base = path.posix.basename(entryPath)
  const dir = path.posix.dirname(entryPath)
  const parent = dir === '.' ? '' : dir
  if (base === OPAQUE) return {dir: parent, kind: 'opaque'}
  if (base.startsWith(WHITEOUT + WHITEOUT)) return undefined // aufs metadata (.wh..wh..plnk), not a file
  if (base.startsWith(WHITEOUT)) {
    const name = base.slice(WHITEOUT.length)
    return {kind: 'whiteout', path: parent ? `${parent}/${name}` : name}
  }

  if (entryPath === '') return undefined // the root directory: overlay keeps the lower one's
  const info = fileInfo(entry, digest)
  if (content) info.content = content
  return {info, kind: 'file', path: entryPath}
}

/**
 * The hex sha256 of a regular file's content, and the content itself when `keep` (the caller checked the
 * header's size against CONTENT_LIMIT; a body longer than its header says is not kept).
 */
async function hashBody(body: Readable, keep: boolean): Promise<{content?: Buffer; digest?: string}> {
  const hash = createHash('sha256')
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    hash.update(chunk)
    length += chunk.length
    if (keep && length <= CONTENT_LIMIT) chunks.push(chunk)
  }

  const digest = hash.digest('hex')
  return keep && length <= CONTENT_LIMIT ? {content: Buffer.concat(chunks), digest} : {digest}
}

function fileInfo(entry: TarEntry, digest: string | undefined): FileInfo {
  const type = entry.type === 'contiguous-file' ? 'file' : (entry.type as string)
  const info: FileInfo = {
    type,
    mode: entry.mode % 0o1_0000,
    // pax carries ids too large for the ustar header, and the sub-second times it rounds away
    uid: entry.uid,
    gid: entry.gid,
    mtime: Number(entry.mtime),
    size: type === 'file' ? entry.declaredSize : 0,
  }
  if (digest !== undefined) info.sha256 = digest
  if (entry.type === 'symlink') info.linkname = entry.linkname.toString('utf8')
  if (entry.type === 'link') info.linkname = normalizePath(entry.linkname.toString('utf8'))
  if (entry.type === 'character-device' || entry.type === 'block-device') {
    info.devmajor = entry.devmajor
    info.devminor = entry.devminor
  }

  const xattrs = [...(entry.pax ?? [])]
    .filter(([key]) => key.startsWith(XATTR))
    .map(([key, value]) => [key.slice(XATTR.length), value.toString('utf8')] as const)
    .sort(([x], [y]) => (x < y ? -1 : 1))
  if (xattrs.length > 0) info.xattrs = Object.fromEntries(xattrs)
  return info
}
