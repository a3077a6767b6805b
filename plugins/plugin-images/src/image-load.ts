import {type EngineClient, type EngineFacts, type Progress, UsageError} from '@transship/kit'
import {
  archiveEntries,
  ArchiveError,
  type ArchiveFormat,
  type ArchiveIndex,
  archiveLayers,
  type Compression,
  compressor,
  counted,
  decompressor,
  detectCompression,
  ImageArchiveWriter,
  indexArchive,
  isLoadableTag,
  ociManifest,
  type OutputImage,
  peek,
  requireCompressor,
  tap,
} from '@transship/kit/archive'
import {engineLoad, type EngineLoadResult} from '@transship/kit/engine'
import {sha256} from '@transship/kit/oci'
import {createReadStream} from 'node:fs'
import {open, stat} from 'node:fs/promises'
import {PassThrough, type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {
  archiveSupport,
  type ExpectedImage,
  forPlatform,
  layerPaths,
  type VerifiedImage,
  verifyLoaded,
} from './engine-archive.js'

export interface LoadResult {
  /** what was in the file: its layout and compression */
  archive: {compression: Compression; format: ArchiveFormat}
  file: string
  host: string
  images: VerifiedImage[]
  /** how it was sent: as-is, or re-encoded into another layout or compression the engine reads */
  sent: {compression: Compression; format: ArchiveFormat; reencoded: boolean}
}

/** An archive file read completely and found sound, before any host is contacted. */
export interface CheckedArchive {
  compression: Compression
  file: string
  index: ArchiveIndex
  size: number
}

export interface LoadOptions {
  engine: EngineClient
  facts: EngineFacts
  /** the host as the user named it, for messages and the result */
  host: string
  /** the engine is reached over SSH: what is decompressed or re-encoded on the way is gzip'd for the link */
  overSsh: boolean
  progress: Progress
  signal: AbortSignal
}

/** How an archive goes to an engine. */
interface SendPlan {
  compression: Compression
  /** decompress the input locally (the engine cannot) */
  decompress: boolean
  format: ArchiveFormat
  /** write another layout with ImageArchiveWriter */
  reencode: boolean
}

/** Reads the whole file: its compression, and its index (an ArchiveError when it is broken). */
export async function checkArchiveFile(file: string, progress: Progress, signal: AbortSignal): Promise<CheckedArchive> {
  const info = await stat(file).catch(() => {})
  if (!info) throw new UsageError(`${file} does not exist`, {code: 'FILE_NOT_FOUND'})
  if (!info.isFile()) throw new UsageError(`${file} is not a file`, {code: 'FILE_WRONG_TYPE'})
  const compression = detectCompression(await readHead(file))
  await requireCompressor(compression)
  const checking = progress.task('check', `check ${file}`, info.size)
  try {
    const index = await indexArchive(
      counted(createReadStream(file), (n) => checking.tick(n)),
      {
        signal,
        source: file,
      },
    )
    checking.done()
    return {compression, file, index, size: info.size}
  } catch (error) {
    checking.done(error as Error)
    throw error
  }
}

/** Loads a checked file: sent as it is when the engine reads it, else re-encoded on the way; then verified. */
export async function loadArchiveFile(checked: CheckedArchive, options: LoadOptions): Promise<LoadResult> {
  const {compression, file, index, size} = checked
  const {engine, facts, host, progress, signal} = options
  checkLoadable(index, file, facts)
  const plan = sendPlan(index, compression, facts, options.overSsh)

  // 2. sent as-is, or re-encoded on the way
  const task = progress.task('load', `load ${file} into ${host}`, size)
  const read = () => counted(createReadStream(file), (n) => task.tick(n))
  let expected: ExpectedImage[] = index.images
  let loaded: EngineLoadResult
  try {
    if (plan.reencode) {
      const chosen = plan.format === 'docker' ? forPlatform(index.images, facts) : index.images
      const outputs: OutputImage[] = chosen.map((image) => ({
        config: image.config,
        configDigest: image.configDigest,
        layers: image.layers,
        tags: image.repoTags,
      }))
      expected = outputs.map((image) => ({
        ...image,
        manifestDigest: plan.format === 'docker' ? undefined : sha256(ociManifest(image)),
        repoTags: image.tags,
      }))
      loaded = await sendReencoded(checked, read(), outputs, plan, engine, signal)
    } else {
      loaded = await engineLoad(engine, wire(read(), compression, plan, signal), signal)
    }

    task.done()
  } catch (error) {
    task.done(error as Error)
    throw error
  }

  const verified = await verifyLoaded({engine, facts, images: expected, loaded, signal})
  return {
    archive: {compression, format: index.format},
    file,
    host,
    images: verified,
    sent: {compression: plan.compression, format: plan.format, reencoded: plan.reencode},
  }
}

/**
 * A stream (stdin), straight to the engine while it is indexed on the way; the end of the upload waits for the
 * index, so a broken archive (or one the engine cannot read) aborts the upload and nothing is loaded.
 */
export async function loadArchiveStream(stdin: Readable, options: LoadOptions): Promise<LoadResult> {
  const {engine, facts, host, progress, signal} = options
  const {head, stream: input} = await peek(stdin, 10, signal)
  const compression = detectCompression(head)
  const support = archiveSupport(facts)
  const decompress = !support.compressions.includes(compression)
  if (decompress) await requireCompressor(compression)
  const task = progress.task('load', `load stdin into ${host}`)
  const side = new PassThrough()
  const indexing = indexArchive(side, {signal, source: 'the archive on stdin'}).then((index) => {
    checkLoadable(index, 'the archive on stdin', facts)
    if (
      support.formats.includes('oci') &&
      index.format !== 'docker' &&
      index.images.some((image) => !image.manifestDigest)
    ) {
      throw new ArchiveError(
        'ARCHIVE_UNSUPPORTED',
        `the archive on stdin has an index.json that does not list all its images; the engine of host "${engine.host}" (API ${facts.apiVersion}) would load nothing from it`,
        {suggestions: ['save it to a file and load that: transship re-encodes it for this engine']},
      )
    }

    if (!support.formats.includes(index.format)) {
      throw new ArchiveError(
        'ARCHIVE_UNSUPPORTED',
        `the archive on stdin is an OCI image layout without manifest.json, which the engine of host "${engine.host}" (API ${facts.apiVersion}) cannot load`,
        {suggestions: ['save it to a file and load that: transship re-encodes it for this engine']},
      )
    }

    return index
  })
  const tapped = tap(side, {holdEnd: () => indexing})
  let broken: Error | undefined
  indexing.catch((error: unknown) => {
    broken = error as Error
    tapped.destroy(broken)
  })
  let loaded: EngineLoadResult
  let index: ArchiveIndex
  try {
    const body = counted(input, (n) => task.tick(n))
    const stages: NodeJS.ReadWriteStream[] = decompress
      ? [decompressor(compression as Exclude<Compression, 'none'>, {signal})]
      : []
    const wired = new PassThrough()
    pipeline([body, ...stages, tapped, wired], {signal}).catch(() => {
      // the load below fails with it
    })
    loaded = await engineLoad(engine, wired, signal).catch((error: unknown) => {
      throw broken ?? error
    })
    index = await indexing
    task.done()
  } catch (error) {
    task.done(error as Error)
    throw broken ?? error
  }

  const verified = await verifyLoaded({engine, facts, images: index.images, loaded, signal})
  const sent = decompress ? 'none' : compression
  return {
    archive: {compression, format: index.format},
    file: '-',
    host,
    images: verified,
    sent: {compression: sent, format: index.format, reencoded: false},
  }
}

/** Reads the file's layers into an ImageArchiveWriter of the planned layout, which streams to the engine. */
async function sendReencoded(
  {file, index}: CheckedArchive,
  input: Readable,
  images: OutputImage[],
  plan: SendPlan,
  engine: EngineClient,
  signal: AbortSignal,
): Promise<EngineLoadResult> {
  const writer = new ImageArchiveWriter(plan.format, images)
  const loading = engineLoad(engine, wire(writer.stream, 'none', plan, signal), signal)
  loading.catch(() => {
    // awaited below
  })
  const feed = async () => {
    const wanted = new Set(images.flatMap((image) => image.layers.map((layer) => layer.digest)))
    const layers = archiveLayers(index).filter((layer) => wanted.has(layer.digest))
    const byPath = layerPaths(layers)
    const pending = new Set(layers.map((layer) => layer.digest))
    for await (const {header, stream} of archiveEntries(input, {signal, source: file})) {
      const layer = header.type === 'file' ? byPath.get(header.name) : undefined
      if (!layer || !pending.has(layer.digest)) continue
      pending.delete(layer.digest)
      await writer.writeLayer(layer, stream, signal)
    }

    if (pending.size > 0) {
      throw new ArchiveError(
        'ARCHIVE_CORRUPT',
        `${file} changed while it was loaded: layers ${[...pending].join(', ')} are gone`,
      )
    }

    await writer.finish()
  }

  try {
    await feed()
  } catch (error) {
    writer.abort(error as Error)
    await loading.catch(() => {})
    throw error
  }

  return loading
}

/** The stream as it goes to the engine: decompressed when the engine cannot, gzip'd again over SSH. */
function wire(input: Readable, compression: Compression, plan: SendPlan, signal: AbortSignal): Readable {
  const stages: NodeJS.ReadWriteStream[] = []
  if (plan.decompress && compression !== 'none') stages.push(decompressor(compression, {signal}))
  if (plan.compression === 'gzip' && (plan.decompress || plan.reencode))
    stages.push(compressor('gzip', {level: 1, signal}))
  if (stages.length === 0) return input
  const output = new PassThrough()
  pipeline([input, ...stages, output], {signal}).catch(() => {
    // pipeline destroyed `output` with the error: the upload fails with it
  })
  return output
}

/** Names the engines refuse, and layers an old engine cannot read, before anything is sent. */
function checkLoadable(index: ArchiveIndex, source: string, facts: EngineFacts): void {
  for (const [position, image] of index.images.entries()) {
    const bad = image.repoTags.find((tag) => !isLoadableTag(tag))
    if (bad) {
      throw new ArchiveError(
        'ARCHIVE_CORRUPT',
        `${source}: image ${position + 1} of ${index.images.length} (${image.configDigest.slice(0, 19)}) is tagged "${bad}", which is not a repository:tag name; engines refuse it (Docker 20.10 refuses the whole archive)`,
        {
          details: {image: image.configDigest, source, tag: bad},
          suggestions: [
            'write the archive again with valid names (docker tag, then docker save or transship image save)',
          ],
        },
      )
    }
  }

  const support = archiveSupport(facts)
  const zstdLayer = archiveLayers(index).find((layer) => layer.mediaType.includes('zstd'))
  if (zstdLayer && !support.compressions.includes('zstd')) {
    throw new ArchiveError(
      'ARCHIVE_UNSUPPORTED',
      `${source}: layer ${zstdLayer.digest} is zstd-compressed, which the engine (API ${facts.apiVersion}, Docker 20.10) cannot read`,
      {suggestions: ['load it into Docker 23 or newer, or write the archive with gzip or uncompressed layers']},
    )
  }
}

/** How to send an archive of this layout and compression to this engine. */
function sendPlan(index: ArchiveIndex, compression: Compression, facts: EngineFacts, overSsh: boolean): SendPlan {
  const support = archiveSupport(facts)
  let {format} = index
  let reencode = false
  if (!support.formats.includes(format)) {
    // an OCI-only archive for an engine that reads manifest.json only
    format = 'docker'
    reencode = true
  } else if (
    support.formats.includes('oci') &&
    format !== 'docker' &&
    index.images.some((image) => !image.manifestDigest)
  ) {
    // Docker 25+ loads through index.json when there is one: it must list every image (Docker 25's own
    // `docker save` of an untagged image leaves it empty, and loading that fails: "image might be filtered out")
    format = 'docker+oci'
    reencode = true
  }

  const decompress = !support.compressions.includes(compression)
  let sent: Compression = compression
  if (decompress || reencode) sent = compression !== 'none' && overSsh ? 'gzip' : 'none'
  return {compression: sent, decompress, format, reencode}
}

async function readHead(file: string): Promise<Buffer> {
  const handle = await open(file, 'r')
  try {
    const buffer = Buffer.alloc(10)
    const {bytesRead} = await handle.read(buffer, 0, 10, 0)
    return buffer.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}
