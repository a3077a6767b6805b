/**
 * A daemonless pull: an image from a registry into an OCI layout (a directory, or the same in a tar for
 * an air-gapped host), blobs stored as the registry serves them (digests checked), the manifest byte for
 * byte. A multi-platform image gives the manifest of one platform (this machine's unless asked), or the
 * whole index with every platform.
 */
import type {ImageReference} from '@transship/kit/reference'

import {UsageError} from '@transship/kit'
import {decompressed, fullName, ImageArchiveWriter} from '@transship/kit/archive'
import {formatReference} from '@transship/kit/reference'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import tar from 'tar-stream'

import type {RegistryClient} from './types.js'

import {type Descriptor, INDEX_TYPES} from './layout-source.js'

export interface PullOptions {
  /** every platform of a multi-platform image (default: one) */
  allPlatforms?: boolean
  concurrency?: number
  /** os/arch[/variant], default linux/<this machine> */
  platform?: string
  signal?: AbortSignal
}

export interface PullReport {
  blobs: number
  bytes: number
  /** the manifest (or index) digest written */
  digest: string
  source: string
}

interface Manifest {
  config?: Descriptor
  layers?: Descriptor[]
  manifests?: Descriptor[]
}

function defaultPlatform(): string {
  const arch = ({arm: 'arm', arm64: 'arm64', ia32: '386', x64: 'amd64'} as Record<string, string>)[process.arch]
  return `linux/${arch ?? process.arch}`
}

function platformOf(descriptor: Descriptor): string {
  const {platform} = descriptor
  return platform ? [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/') : 'unknown'
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  )
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
  const blobsDir = path.join(dir, 'blobs', 'sha256')
  await mkdir(blobsDir, {recursive: true})
  const report: PullReport = {blobs: 0, bytes: 0, digest: top.digest, source}
  const written = new Set<string>()

  const writeBlob = async (digest: string, bytes?: Buffer) => {
    if (written.has(digest)) return
    written.add(digest)
    const file = path.join(blobsDir, digest.slice('sha256:'.length))
    if (await exists(file)) return
    const temporary = `${file}.${process.pid}.tmp`
    try {
      await (bytes
        ? writeFile(temporary, bytes)
        : pipeline(await client.getBlob(repository, digest, signal), createWriteStream(temporary), {signal}))
      await rename(temporary, file)
    } catch (error) {
      await rm(temporary, {force: true})
      throw error
    }

    const {size} = await stat(file)
    report.blobs++
    report.bytes += size
  }

  let root: Descriptor = {digest: top.digest, mediaType: top.mediaType, size: top.body.length}
  const manifests: Array<{body: Buffer; descriptor: Descriptor}> = []
  const parsed = JSON.parse(top.body.toString('utf8')) as Manifest
  if (INDEX_TYPES.has(top.mediaType)) {
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
    if (INDEX_TYPES.has(descriptor.mediaType)) continue
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

  const annotations: Record<string, string> = {'io.containerd.image.name': fullName(source)}
  if (reference.tag) annotations['org.opencontainers.image.ref.name'] = reference.tag
  const indexFile = path.join(dir, 'index.json')
  const previous = (await exists(indexFile))
    ? ((JSON.parse(await readFile(indexFile, 'utf8')) as {manifests?: Descriptor[]}).manifests ?? [])
    : []
  const kept = previous.filter(
    (item) => item.annotations?.['io.containerd.image.name'] !== annotations['io.containerd.image.name'],
  )
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [...kept, {digest: root.digest, mediaType: root.mediaType, size: root.size, annotations}],
  }
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  await writeFile(`${indexFile}.tmp`, JSON.stringify(index))
  await rename(`${indexFile}.tmp`, indexFile)
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

  await mkdir(path.dirname(file), {recursive: true})
  const scratch = await mkdtemp(path.join(path.dirname(file), `.${path.basename(file)}.`))
  const temporary = `${file}.${process.pid}.tmp`
  try {
    const report = await pullToLayout(client, reference, scratch, options)
    const blob = (digest: string) => path.join(scratch, 'blobs', 'sha256', digest.slice('sha256:'.length))
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
        mediaType: 'application/vnd.docker.image.rootfs.diff.tar',
        size,
      })
    }

    const writer = new ImageArchiveWriter('docker', [
      {config, configDigest: manifest.config!.digest, layers, tags: reference.tag ? [formatReference(reference)] : []},
    ])
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
