import {type EngineClient, ExitCode, type Progress, type ProgressTask, TransshipError, UsageError} from '@transship/kit'
import {
  archiveEntries,
  type ArchiveFormat,
  type ArchiveIndex,
  archiveLayers,
  byteCounter,
  type Compression,
  compressor,
  counted,
  ImageArchiveWriter,
  indexArchive,
  type OutputImage,
  requireCompressor,
  tap,
} from '@transship/kit/archive'
import {createWriteStream} from 'node:fs'
import {rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'
import {PassThrough, type Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {
  archiveKindFromName,
  archiveSupport,
  engineSave,
  forPlatform,
  inRequestOrder,
  layerPaths,
} from './engine-archive.js'
import {requireImage} from './image-store.js'

export interface SavedImage {
  id: string
  layers: number
  tags: string[]
}

export interface SaveResult {
  /** bytes written (after compression) */
  bytes: number
  compression: Compression
  /** the file written, or - for stdout */
  file: string
  format: ArchiveFormat
  host: string
  images: SavedImage[]
  /** whether the engine's own archive was passed through (else it was re-encoded) */
  passThrough: boolean
}

export interface SaveOptions {
  /** default: from the file name, else none */
  compression?: Compression
  engine: EngineClient
  /** the file to write (through FILE.partial, renamed once complete), or - for `stdout` */
  file: string
  /** default: from the file name, else the engine's own layout */
  format?: ArchiveFormat
  /** compression level (see LEVELS) */
  level?: number
  progress: Progress
  /** the images: references or IDs */
  refs: string[]
  signal: AbortSignal
  /** where - writes (default: process.stdout) */
  stdout?: Writable
}

/** What an output will be, before the engine is asked: layout (when the name says), compression and level. */
export interface OutputChoice {
  compression: Compression
  /** undefined: the engine's own layout */
  format?: ArchiveFormat
  level?: number
}

/** Compression levels each compressor accepts. */
export const LEVELS: Record<Exclude<Compression, 'none'>, [number, number]> = {
  bzip2: [1, 9],
  gzip: [1, 9],
  xz: [0, 9],
  zstd: [1, 22],
}

/**
 * The layout and compression of an output, from the options and the file name (`-`: none), with the level
 * checked against the compression. UsageError for what cannot work.
 */
export function outputChoice(
  file: string,
  options: {compression?: Compression; format?: ArchiveFormat; level?: number} = {},
): OutputChoice {
  const named = file === '-' ? {} : archiveKindFromName(file)
  const compression = options.compression ?? named.compression ?? 'none'
  const {level} = options
  if (level !== undefined) {
    if (compression === 'none') {
      throw new UsageError('--level needs a compression (--compress, or a .gz/.zst/.bz2/.xz name)')
    }

    const [min, max] = LEVELS[compression]
    if (level < min || level > max) {
      throw new UsageError(`${compression} levels go from ${min} to ${max}, not ${level}`)
    }
  }

  return {compression, format: options.format ?? named.format, level}
}

/** Refuses a file that cannot be written: its directory is missing, or it is a directory. */
export async function checkOutputFile(file: string): Promise<void> {
  const directory = path.dirname(path.resolve(file))
  const info = await stat(directory).catch(() => {})
  if (!info?.isDirectory()) {
    throw new UsageError(`cannot write ${file}: the directory ${directory} does not exist`, {
      code: 'OUTPUT_DIRECTORY_MISSING',
    })
  }

  const target = await stat(file).catch(() => {})
  if (target?.isDirectory()) throw new UsageError(`cannot write ${file}: it is a directory`)
}

/**
 * Saves images of one engine into one archive (shared layers once): the engine's own archive passed through
 * (indexed on the way, to report and check it) when it is the layout asked for, else re-encoded. A file is
 * written to FILE.partial and renamed to FILE once complete and checked: an interrupted or failed save
 * leaves no FILE behind (and no FILE.partial).
 */
export async function saveImages(options: SaveOptions): Promise<SaveResult> {
  const {engine, file, progress, refs, signal} = options
  const toStdout = file === '-'
  const choice = outputChoice(file, options)
  const {compression, level} = choice
  await requireCompressor(compression)
  if (!toStdout) await checkOutputFile(file)
  const {native} = archiveSupport(await engine.facts(signal))
  const format = choice.format ?? native
  for (const ref of refs) await requireImage(engine, ref, signal)

  const partial = `${file}.partial`
  let bytes = 0
  const destination = (): Writable[] => {
    const count = byteCounter((n) => {
      bytes += n
    })
    const target = toStdout ? (options.stdout ?? process.stdout) : createWriteStream(partial, {flush: true})
    return [...(compression === 'none' ? [] : [compressor(compression, {level, signal})]), count, target]
  }

  let index: ArchiveIndex
  try {
    index =
      format === native
        ? await passThrough(engine, refs, destination, progress, signal)
        : await reencode(engine, refs, format, destination, progress, signal)
    if (!toStdout) await rename(partial, file)
  } catch (error) {
    if (!toStdout) await rm(partial, {force: true})
    throw error
  }

  const images = inRequestOrder(index.images, refs).map((image) => ({
    id: image.configDigest,
    layers: image.layers.length,
    tags: image.repoTags,
  }))
  return {bytes, compression, file, format, host: engine.host, images, passThrough: format === native}
}

/** The engine's own archive, indexed on the way (to report and check it) and compressed as asked. */
async function passThrough(
  engine: EngineClient,
  refs: string[],
  destination: () => Writable[],
  progress: Progress,
  signal: AbortSignal,
): Promise<ArchiveIndex> {
  const task = progress.task('save', `save ${refs.join(' ')}`)
  try {
    const reply = await engineSave(engine, refs, signal)
    // the streams are made only now, when the pipeline that handles their errors starts: made before the
    // engine answers (it spools the whole image first), Ctrl-C failed them alone, an unhandled error (exit 1)
    const side = new PassThrough()
    const indexing = indexArchive(side, {signal, source: `the archive host "${engine.host}" sent`})
    const tapped = tap(side, {holdEnd: () => indexing})
    indexing.catch((error: unknown) => tapped.destroy(error as Error))
    await pipeline([reply, tapped, byteCounter((n) => task.tick(n)), ...destination()], {signal})
    const index = await indexing
    task.done()
    return index
  } catch (error) {
    task.done(error as Error)
    throw error
  }
}

/**
 * Another layout than the engine writes: a first pass over the engine's archive indexes it (configs, layers
 * with their diffIDs and digests), a second one streams the layers into an ImageArchiveWriter.
 */
async function reencode(
  engine: EngineClient,
  refs: string[],
  format: ArchiveFormat,
  destination: () => Writable[],
  progress: Progress,
  signal: AbortSignal,
): Promise<ArchiveIndex> {
  const source = `the archive host "${engine.host}" sent`
  const reading = progress.task('index', `read ${refs.join(' ')}`)
  let index: ArchiveIndex
  try {
    const first = await engineSave(engine, refs, signal)
    const count = byteCounter((n) => reading.tick(n))
    pipeline(first, count).catch(() => {
      // pipeline destroys `count` with the error: indexArchive reports it
    })
    index = await indexArchive(count, {signal, source})
    index.images = inRequestOrder(index.images, refs)
    // manifest.json can give a name to one image only: of a multi-platform image, the engine's own platform
    if (format === 'docker') index.images = forPlatform(index.images, await engine.facts(signal))
    reading.done()
  } catch (error) {
    reading.done(error as Error)
    throw error
  }

  const images: OutputImage[] = index.images.map((image) => ({
    config: image.config,
    configDigest: image.configDigest,
    layers: image.layers,
    tags: image.repoTags,
  }))
  const layers = archiveLayers(index)
  const task: ProgressTask = progress.task(
    'save',
    `write ${format} archive`,
    layers.reduce((sum, layer) => sum + layer.size, 0),
  )
  const writer = new ImageArchiveWriter(format, images)
  const writing = pipeline([writer.stream, ...destination()], {signal})
  writing.catch(() => {
    // awaited below; a failure also fails the writer, which stops the loop
  })
  try {
    const second = await engineSave(engine, refs, signal)
    const byPath = layerPaths(layers)
    const pending = new Set(layers.map((layer) => layer.digest))
    for await (const {header, stream} of archiveEntries(second, {signal, source})) {
      const layer = header.type === 'file' ? byPath.get(header.name) : undefined
      if (!layer || !pending.has(layer.digest)) continue
      pending.delete(layer.digest)
      await writer.writeLayer(
        layer,
        counted(stream, (n) => task.tick(n)),
        signal,
      )
    }

    if (pending.size > 0) {
      throw new TransshipError(
        'SAVE_INCOMPLETE',
        ExitCode.Failed,
        `host "${engine.host}" sent a second archive without the layers ${[...pending].join(', ')}: did the images change meanwhile?`,
      )
    }

    await writer.finish()
    await writing
    task.done()
    return index
  } catch (error) {
    writer.abort(error as Error)
    await writing.catch(() => {})
    task.done(error as Error)
    throw error
  }
}
