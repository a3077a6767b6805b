/**
 * A daemonless pull: an image from a registry into an OCI layout (a directory, or the same in a tar for
 * an air-gapped host), blobs stored as the registry serves them (digests checked), the manifest byte for
 * byte. A multi-platform image gives the manifest of one platform (this machine's unless asked), or the
 * whole index with every platform.
 */
import type {ImageReference} from '@transship/kit/reference'

import {UsageError} from '@transship/kit'
import {decompressed, ImageArchiveWriter} from '@transship/kit/archive'
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  MEDIA_TYPES,
  nameAnnotations,
  OciLayout,
  platformOf,
} from '@transship/kit/oci'
import {formatReference, parseReference} from '@transship/kit/reference'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import tar from 'tar-stream'

import type {RegistryClient} from './types.js'

export interface PullOptions {
  /** every platform of a multi-platform image (default: one) */
  allPlatforms?: boolean
  concurrency?: number
  /** os/arch[/variant], default linux/<this machine> */
  platform?: string
  /**
   * the name in the output, as skopeo's `oci:DIR:REF` and `docker-archive:FILE:REF` give it: the ref name of an
   * OCI layout's entry (default: the tag), the repository:tag of a docker-archive (default: the reference)
   */
  ref?: string
  signal?: AbortSignal
}

export interface PullReport {
  blobs: number
  bytes: number
  /** the manifest (or index) digest written */
  digest: string
  source: string
}

/** a manifest or an index, as the registry served it */
type Manifest = Partial<ImageIndex> & Partial<ImageManifest>

function defaultPlatform(): string {
  const arch = ({arm: 'arm', arm64: 'arm64', ia32: '386', x64: 'amd64'} as Record<string, string>)[process.arch]
  return `linux/${arch ?? process.arch}`
}

/** Pulls `reference` into the OCI layout directory `dir` (created or added to). */
export async function pullToLayout(
  client: RegistryClient,
  reference: ImageReference,
  dir: string,
  options: PullOptions = {},
): Promise<PullReport> {
  const {signal} = options
  const repository = reference.path
  const source = formatReference(reference)
  const top = await client.getManifest(repository, reference.digest ?? reference.tag ?? 'latest', signal)
  if (!top) throw new UsageError(`${source} is not in ${client.endpoint.name}`, {code: 'IMAGE_NOT_FOUND'})
  const layout = new OciLayout(dir, {signal})
  const report: PullReport = {blobs: 0, bytes: 0, digest: top.digest, source}
  const written = new Set<string>()

  const writeBlob = async (digest: string, bytes?: Buffer) => {
    if (written.has(digest)) return
    written.add(digest)
    if (await layout.hasBlob(digest)) return
    await layout.writeBlob(digest, bytes ?? (await client.getBlob(repository, digest, signal)))
    const {size} = await stat(layout.blobFile(digest))
    report.blobs++
    report.bytes += size
  }

  let root: Descriptor = {digest: top.digest, mediaType: top.mediaType, size: top.body.length}
  const manifests: Array<{body: Buffer; descriptor: Descriptor}> = []
  const parsed = JSON.parse(top.body.toString('utf8')) as Manifest
  if (isIndexMediaType(top.mediaType)) {
    const wanted = options.platform ?? defaultPlatform()
    const children = options.allPlatforms
      ? (parsed.manifests ?? [])
      : (parsed.manifests ?? []).filter(
          (child) => platformOf(child) === wanted || platformOf(child).startsWith(`${wanted}/`),
        )
    if (children.length === 0) {
      throw new UsageError(`${source} has no image for ${wanted}`, {
        code: 'PLATFORM_NOT_FOUND',
        suggestions: [`its platforms: ${(parsed.manifests ?? []).map((child) => platformOf(child)).join(', ')}`],
      })
    }

    for (const child of options.allPlatforms ? children : children.slice(0, 1)) {
      const manifest = await client.getManifest(repository, child.digest, signal)
      if (!manifest)
        throw new UsageError(`${source} names ${child.digest}, which the registry does not have`, {
          code: 'IMAGE_NOT_FOUND',
        })
      manifests.push({body: manifest.body, descriptor: {...child, size: manifest.body.length}})
    }

    if (options.allPlatforms) manifests.push({body: top.body, descriptor: root})
    else root = manifests[0]!.descriptor
  } else {
    manifests.push({body: top.body, descriptor: root})
  }

  const blobs = new Set<string>()
  for (const {body, descriptor} of manifests) {
    if (isIndexMediaType(descriptor.mediaType)) continue
    const manifest = JSON.parse(body.toString('utf8')) as Manifest
    for (const blob of [manifest.config, ...(manifest.layers ?? [])]) if (blob) blobs.add(blob.digest)
  }

  const queue = [...blobs]
  await Promise.all(
    Array.from({length: Math.min(options.concurrency ?? 4, queue.length)}, async () => {
      for (let digest = queue.shift(); digest; digest = queue.shift()) await writeBlob(digest)
    }),
  )
  for (const {body, descriptor} of manifests) await writeBlob(descriptor.digest, body)

  const annotations = nameAnnotations(source, options.ref ?? reference.tag)
  await layout.addToIndex([{digest: root.digest, mediaType: root.mediaType, size: root.size, annotations}])
  report.digest = root.digest
  return report
}

/** The files of a directory as a tar (sorted, fixed times and owners), written to `file` through a temporary name. */
export async function tarDirectory(dir: string, file: string, signal?: AbortSignal): Promise<void> {
  const pack = tar.pack()
  const temporary = `${file}.${process.pid}.tmp`
  const written = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(temporary), {signal})
  const add = async (relative: string) => {
    const full = path.join(dir, relative)
    const info = await stat(full)
    if (info.isDirectory()) {
      if (relative)
        await new Promise<void>((resolve, reject) => {
          pack.entry({mode: 0o755, mtime: new Date(0), name: `${relative}/`, type: 'directory'}, (error) =>
            error ? reject(error) : resolve(),
          )
        })
      for (const name of (await readdir(full)).sort()) await add(relative ? `${relative}/${name}` : name)
      return
    }

    const sink = pack.entry({mode: 0o644, mtime: new Date(0), name: relative, size: info.size, type: 'file'})
    await pipeline(createReadStream(full), sink as unknown as NodeJS.WritableStream, {signal})
  }

  try {
    await add('')
    pack.finalize()
    await written
    await rename(temporary, file)
  } catch (error) {
    pack.destroy(error as Error)
    await rm(temporary, {force: true})
    throw error
  }
}

/** The name a docker-archive gives the image: `ref` when given (a reference with a tag), else the reference pulled. */
function repoTags(reference: ImageReference, ref: string | undefined): string[] {
  if (ref === undefined) return reference.tag ? [formatReference(reference)] : []
  const named = parseReference(ref)
  if (!named.tag || named.digest) {
    throw new UsageError(`docker-archive:FILE:${ref}: the name of an image in a docker-archive is repository:tag`, {
      code: 'FLAG_INVALID',
    })
  }

  return [formatReference(named)]
}

/** Pulls into an OCI archive: a layout made beside `file`, then put in a tar. */
export async function pullToArchive(
  client: RegistryClient,
  reference: ImageReference,
  file: string,
  options: PullOptions = {},
): Promise<PullReport> {
  await mkdir(path.dirname(file), {recursive: true})
  const scratch = await mkdtemp(path.join(path.dirname(file), `.${path.basename(file)}.`))
  try {
    const report = await pullToLayout(client, reference, scratch, options)
    await tarDirectory(scratch, file, options.signal)
    return report
  } finally {
    await rm(scratch, {force: true, recursive: true})
  }
}

/**
 * Pulls into a docker-archive, what `docker load` of any version reads (Docker 20.10 reads no OCI archive):
 * the image is pulled into a layout beside `file`, each layer is decompressed there once (a docker-archive
 * holds plain layer tars, whose sizes its tar headers need), then the archive is written.
 */
export async function pullToDockerArchive(
  client: RegistryClient,
  reference: ImageReference,
  file: string,
  options: PullOptions = {},
): Promise<PullReport> {
  if (options.allPlatforms) {
    throw new UsageError(
      'a docker-archive holds one platform of an image: drop --all-platforms, or pull into oci-archive:',
      {
        code: 'FLAG_INVALID',
      },
    )
  }

  const tags = repoTags(reference, options.ref)
  await mkdir(path.dirname(file), {recursive: true})
  const scratch = await mkdtemp(path.join(path.dirname(file), `.${path.basename(file)}.`))
  const temporary = `${file}.${process.pid}.tmp`
  try {
    const report = await pullToLayout(client, reference, scratch, {...options, ref: undefined})
    const layout = new OciLayout(scratch)
    const blob = (digest: string) => layout.blobFile(digest)
    const manifest = JSON.parse(await readFile(blob(report.digest), 'utf8')) as Manifest
    const config = await readFile(blob(manifest.config!.digest))
    const diffIDs = (JSON.parse(config.toString('utf8')) as {rootfs?: {diff_ids?: string[]}}).rootfs?.diff_ids ?? []
    const layers: Array<{diffID: string; digest: string; file: string; mediaType: string; size: number}> = []
    for (const [index, layer] of (manifest.layers ?? []).entries()) {
      const plain = path.join(scratch, `layer-${index}.tar`)
      const {stream} = await decompressed(createReadStream(blob(layer.digest)))
      await pipeline(stream, createWriteStream(plain), {signal: options.signal})
      const {size} = await stat(plain)
      const diffID = diffIDs[index]!
      layers.push({
        diffID,
        digest: diffID,
        file: plain,
        mediaType: MEDIA_TYPES.dockerLayer,
        size,
      })
    }

    const writer = new ImageArchiveWriter('docker', [{config, configDigest: manifest.config!.digest, layers, tags}])
    const written = pipeline(writer.stream, createWriteStream(temporary), {signal: options.signal})
    for (const layer of layers) await writer.writeLayer(layer, createReadStream(layer.file), options.signal)
    await writer.finish()
    await written
    await rename(temporary, file)
    return report
  } finally {
    await rm(scratch, {force: true, recursive: true})
    await rm(temporary, {force: true})
  }
}
