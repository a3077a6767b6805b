/**
 * An image on disk, as a registry push needs it: the root manifest (or index) with its exact bytes, and
 * every blob readable on its own from any offset. Read from an OCI layout directory (`oci:DIR[:REF]`,
 * what `rootfs build` and skopeo write), an OCI archive (`oci-archive:FILE[:REF]`) or a docker-archive
 * (`docker-archive:FILE[:REF]`, what `docker save` and `image save` write). A manifest that is in the input
 * is pushed byte for byte; a docker-archive has none, so an OCI manifest is written for it, naming the blobs
 * as they are (layers stay uncompressed unless asked).
 */
import {UsageError} from '@transship/kit'
import {
  ArchiveError,
  type ArchiveImage,
  decompressed,
  detectCompression,
  fullName,
  indexArchive,
  indexTarFile,
  ociManifest,
  type TarIndexEntry,
} from '@transship/kit/archive'
import {
  blobName,
  type Descriptor,
  type FileLocation,
  formatImageLocation,
  IMAGE_NAME_ANNOTATION,
  INDEX_FILE,
  isNamed,
  MEDIA_TYPES,
  OciLayout,
  type ParsedManifest,
  sha256,
} from '@transship/kit/oci'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdtemp, open, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

export interface ImageLayout extends AsyncDisposable {
  /** what the user named, for messages */
  readonly description: string
  /** the manifest or index to push */
  readonly root: Descriptor
  /** names the input gives the image (e.g. app:1), if any */
  readonly tags: string[]
  /** a blob's content from `offset` */
  open(digest: string, offset?: number): Readable
  /** a (small) blob's bytes: a manifest, an index or a config */
  read(digest: string): Promise<Buffer>
}

function notFound(what: string, file: string): UsageError {
  return new UsageError(`${what} ${file} does not exist`, {code: 'FILE_NOT_FOUND'})
}

function choose<T>(items: T[], ref: string | undefined, matches: (item: T) => boolean, describe: string): T {
  const chosen = ref === undefined ? items : items.filter((item) => matches(item))
  if (chosen.length === 1) return chosen[0]!
  throw new UsageError(
    chosen.length === 0
      ? `${describe} holds no image${ref === undefined ? '' : ` named ${ref}`}`
      : `${describe} holds ${chosen.length} images: name one (e.g. ${describe}:NAME)`,
    {code: 'IMAGE_NOT_FOUND'},
  )
}

/** The image an OCI index.json names (by ref name or full name), and its name. */
function chooseInIndex(
  index: ParsedManifest,
  ref: string | undefined,
  description: string,
): {root: Descriptor; tags: string[]} {
  const root = choose(index.manifests ?? [], ref, (descriptor) => isNamed(descriptor, ref!), description) as Descriptor
  return {root, tags: [root.annotations?.[IMAGE_NAME_ANNOTATION] ?? ''].filter(Boolean)}
}

async function openOciDirectory(dir: string, ref: string | undefined): Promise<ImageLayout> {
  const description = formatImageLocation({kind: 'oci', path: dir})
  const layout = new OciLayout(dir, {source: description})
  const index = await layout.index()
  if (!index) throw notFound('the OCI layout', path.join(dir, INDEX_FILE))
  const {root, tags} = chooseInIndex(index, ref, description)
  return {
    async [Symbol.asyncDispose]() {},
    description,
    open: (digest, offset = 0) => layout.openBlob(digest, offset),
    read: (digest) => layout.readBlob(digest),
    root,
    tags,
  }
}

/** A compressed archive is decompressed into a temporary file: blobs are then read by offset. */
async function plainTar(file: string): Promise<{file: string; remove: () => Promise<void>}> {
  const head = Buffer.alloc(16)
  const handle = await open(file, 'r')
  try {
    await handle.read(head, 0, head.length, 0)
  } finally {
    await handle.close()
  }

  if (detectCompression(head) === 'none') return {file, async remove() {}}
  const dir = await mkdtemp(path.join(os.tmpdir(), 'transship-push-'))
  const plain = path.join(dir, 'archive.tar')
  await pipeline((await decompressed(createReadStream(file))).stream, createWriteStream(plain))
  return {file: plain, remove: () => rm(dir, {force: true, recursive: true})}
}

async function openArchive(location: FileLocation): Promise<ImageLayout> {
  const {file, remove} = await plainTar(location.path)
  try {
    const entries = await indexTarFile(file)
    const description = formatImageLocation({kind: location.kind, path: location.path})
    // an OCI layout (or Docker 25+'s docker+oci) names its manifests: no need to read the layers first
    const indexEntry = entries.get(INDEX_FILE)
    if (indexEntry) {
      const index = JSON.parse((await readEntry(file, indexEntry)).toString('utf8')) as ParsedManifest
      const {root, tags} = chooseInIndex(index, location.ref, description)
      return tarLayout({description, entries, file, remove, root, small: new Map(), tags})
    }

    const fast = await dockerArchiveLayout(file, entries, location, description)
    if (fast) return tarLayout({...fast, description, entries, file, remove})
    const archive = await indexArchive(createReadStream(file), {source: location.path})
    const image: ArchiveImage = choose(
      archive.images,
      location.ref,
      (item) =>
        item.repoTags.includes(location.ref!) ||
        item.repoTags.map((tag) => fullName(tag)).includes(fullName(location.ref!)),
      description,
    )
    const small = new Map<string, Buffer>([[image.configDigest, image.config]])
    const located = new Map<string, TarIndexEntry>()
    const entryOf = (name: string): TarIndexEntry | undefined => {
      let entry = entries.get(name)
      // links (20.10 writes a shared layer once and links to it)
      for (let hops = 0; entry && (entry.type === '1' || entry.type === '2') && hops < 8; hops++) {
        const target = entry.type === '1' ? entry.linkname! : path.posix.join(path.posix.dirname(name), entry.linkname!)
        entry = entries.get(path.posix.normalize(target))
      }

      return entry
    }

    for (const layer of image.layers) {
      const entry = entryOf(layer.path)
      if (!entry) throw new ArchiveError('ARCHIVE_CORRUPT', `${location.path} lists ${layer.path} but does not hold it`)
      located.set(layer.digest, entry)
    }

    let root: Descriptor
    const manifestEntry = image.manifestDigest && entryOf(blobName(image.manifestDigest))
    if (image.manifestDigest && manifestEntry) {
      located.set(image.manifestDigest, manifestEntry)
      const bytes = await readEntry(file, manifestEntry)
      const {mediaType} = JSON.parse(bytes.toString('utf8')) as ParsedManifest
      root = {
        digest: image.manifestDigest,
        mediaType: mediaType ?? MEDIA_TYPES.ociManifest,
        size: bytes.length,
      }
    } else {
      const manifest = ociManifest({
        config: image.config,
        configDigest: image.configDigest,
        layers: image.layers.map((layer) => ({...layer})),
        tags: image.repoTags,
      })
      const digest = sha256(manifest)
      small.set(digest, manifest)
      root = {digest, mediaType: MEDIA_TYPES.ociManifest, size: manifest.length}
    }

    const openBlob = (digest: string, offset = 0): Readable => {
      const bytes = small.get(digest)
      if (bytes) return Readable.from([bytes.subarray(offset)])
      const entry = located.get(digest)
      if (!entry) throw new Error(`${location.path} holds no blob ${digest}`)
      if (entry.size === 0) return Readable.from([])
      return createReadStream(file, {end: entry.offset + entry.size - 1, start: entry.offset + offset})
    }

    return {
      async [Symbol.asyncDispose]() {
        await remove()
      },
      description,
      open: openBlob,
      async read(digest) {
        const bytes = small.get(digest)
        if (bytes) return bytes
        const entry = located.get(digest) ?? entryOf(blobName(digest))
        if (!entry) throw new Error(`${location.path} holds no blob ${digest}`)
        return readEntry(file, entry)
      },
      root,
      tags: image.repoTags,
    }
  } catch (error) {
    await remove()
    throw error
  }
}

interface TarLayoutParts {
  description: string
  entries: Map<string, TarIndexEntry>
  file: string
  /** blobs located by digest other than at blobs/sha256/<hex> (docker-archive layers) */
  located?: Map<string, TarIndexEntry>
  remove: () => Promise<void>
  root: Descriptor
  /** blobs kept in memory (a config, a manifest written for a docker-archive) */
  small: Map<string, Buffer>
  tags: string[]
}

function entryOfDigest(parts: TarLayoutParts, digest: string): TarIndexEntry | undefined {
  return parts.located?.get(digest) ?? resolveLink(parts.entries, blobName(digest))
}

/** A tar entry, following hard and symbolic links (20.10 writes a shared layer once and links to it). */
function resolveLink(entries: Map<string, TarIndexEntry>, name: string): TarIndexEntry | undefined {
  let entry = entries.get(name)
  let current = name
  for (let hops = 0; entry && (entry.type === '1' || entry.type === '2') && hops < 8; hops++) {
    current =
      entry.type === '1'
        ? entry.linkname!
        : path.posix.normalize(path.posix.join(path.posix.dirname(current), entry.linkname!))
    entry = entries.get(current)
  }

  return entry
}

function tarLayout(parts: TarLayoutParts): ImageLayout {
  return {
    async [Symbol.asyncDispose]() {
      await parts.remove()
    },
    description: parts.description,
    open(digest, offset = 0) {
      const bytes = parts.small.get(digest)
      if (bytes) return Readable.from([bytes.subarray(offset)])
      const entry = entryOfDigest(parts, digest)
      if (!entry) throw new ArchiveError('ARCHIVE_CORRUPT', `${parts.description} holds no blob ${digest}`)
      if (entry.size <= offset) return Readable.from([])
      return createReadStream(parts.file, {end: entry.offset + entry.size - 1, start: entry.offset + offset})
    },
    async read(digest) {
      const bytes = parts.small.get(digest)
      if (bytes) return bytes
      const entry = entryOfDigest(parts, digest)
      if (!entry) throw new ArchiveError('ARCHIVE_CORRUPT', `${parts.description} holds no blob ${digest}`)
      return readEntry(parts.file, entry)
    },
    root: parts.root,
    tags: parts.tags,
  }
}

/**
 * A docker-archive read from its manifest.json and config alone: layers are named by their diffIDs (they are
 * plain tars), so nothing is hashed here (the registry checks every upload against its digest). Undefined
 * when a layer turns out compressed: the caller then reads the archive whole.
 */
async function dockerArchiveLayout(
  file: string,
  entries: Map<string, TarIndexEntry>,
  location: FileLocation,
  description: string,
): Promise<Omit<TarLayoutParts, 'description' | 'entries' | 'file' | 'remove'> | undefined> {
  const manifestEntry = entries.get('manifest.json')
  if (!manifestEntry) return undefined
  const manifests = JSON.parse((await readEntry(file, manifestEntry)).toString('utf8')) as Array<{
    Config: string
    Layers: string[]
    RepoTags?: null | string[]
  }>
  const chosen = choose(
    manifests,
    location.ref,
    (item) => (item.RepoTags ?? []).some((tag) => tag === location.ref || fullName(tag) === fullName(location.ref!)),
    description,
  )
  const configEntry = resolveLink(entries, chosen.Config)
  if (!configEntry) return undefined
  const config = await readEntry(file, configEntry)
  const diffIDs = (JSON.parse(config.toString('utf8')) as {rootfs?: {diff_ids?: string[]}}).rootfs?.diff_ids ?? []
  if (diffIDs.length !== chosen.Layers.length) return undefined
  const located = new Map<string, TarIndexEntry>()
  const layers = []
  for (const [index, layerPath] of chosen.Layers.entries()) {
    const entry = resolveLink(entries, layerPath)
    if (!entry) return undefined
    const head = await readEntry(file, {...entry, size: Math.min(entry.size, 16)})
    if (detectCompression(head) !== 'none') return undefined
    const diffID = diffIDs[index]!
    located.set(diffID, entry)
    layers.push({diffID, digest: diffID, mediaType: MEDIA_TYPES.dockerLayer, size: entry.size})
  }

  const configDigest = sha256(config)
  const manifest = ociManifest({config, configDigest, layers, tags: chosen.RepoTags ?? []})
  const digest = sha256(manifest)
  return {
    located,
    root: {digest, mediaType: MEDIA_TYPES.ociManifest, size: manifest.length},
    small: new Map([
      [configDigest, config],
      [digest, manifest],
    ]),
    tags: chosen.RepoTags ?? [],
  }
}

async function readEntry(file: string, entry: TarIndexEntry): Promise<Buffer> {
  const handle = await open(file, 'r')
  try {
    const bytes = Buffer.alloc(entry.size)
    await handle.read(bytes, 0, entry.size, entry.offset)
    return bytes
  } finally {
    await handle.close()
  }
}

/** Opens the image at `location`. Dispose it to remove the temporary copy of a compressed archive. */
export async function openImageLayout(location: FileLocation): Promise<ImageLayout> {
  const stats = await stat(location.path).catch(() => {})
  if (!stats) throw notFound(location.kind === 'oci' ? 'the OCI layout' : 'the archive', location.path)
  if (location.kind === 'oci') {
    if (!stats.isDirectory()) {
      throw new UsageError(
        `${location.path} is not a directory: an OCI layout is one (for an archive, say oci-archive:)`,
        {
          code: 'LAYOUT_INVALID',
        },
      )
    }

    return openOciDirectory(location.path, location.ref)
  }

  return openArchive(location)
}
