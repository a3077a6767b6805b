import {Args, Flags} from '@oclif/core'
import {
  archiveEntries,
  type ArchiveFormat,
  type ArchiveIndex,
  archiveLayers,
  BaseCommand,
  byteCounter,
  type Compression,
  compressor,
  counted,
  type EngineClient,
  formatBytes,
  ImageArchiveWriter,
  indexArchive,
  type OutputImage,
  ProgressReporter,
  type ProgressTask,
  requireCompressor,
  tap,
  TransshipError,
  UsageError,
} from '@transship/kit'
import {createWriteStream} from 'node:fs'
import {rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'
import {PassThrough, type Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {
  archiveKindFromName,
  type ArchiveNameKind,
  archiveSupport,
  engineSave,
  forPlatform,
  inRequestOrder,
  layerPaths,
} from '../../engine-archive.js'
import {hostFlag, openHosts, recipeHostFlags} from '../../host-flags.js'
import {requireImage} from '../../image-store.js'

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

const LEVELS: Record<Exclude<Compression, 'none'>, [number, number]> = {
  bzip2: [1, 9],
  gzip: [1, 9],
  xz: [0, 9],
  zstd: [1, 22],
}

export default class ImageSave extends BaseCommand<typeof ImageSave> {
  static override args = {
    image: Args.string({description: 'Images to save (references or IDs).', ignoreStdin: true, required: true}),
  }
  static override description = `Save images of a host (the local engine, a recipe host, or ssh://user@host[:port]) into one archive, shared layers once, for \`transship image load\` or \`docker load\` elsewhere.

The file name chooses the layout and the compression, unless --format and --compress say otherwise:
  NAME.tar      a docker-archive, as the engine's own \`docker save\` writes it (Docker 25+ adds an OCI layout)
  NAME.oci.tar  an OCI image layout (index.json and blobs)
  .gz or .tgz, .zst, .bz2, .xz after it: gzip, zstd, bzip2 or xz (the last three need their commands)
--format docker+oci writes both layouts in one file, as Docker 25+ does: every engine loads it.

The archive is written to FILE.partial and renamed to FILE once it is complete and checked, so an interrupted save never leaves a file that looks finished. With -o - it goes to stdout (which must not be a terminal).`
  static override examples = [
    '<%= config.bin %> <%= command.id %> app:1 -o app-1.tar',
    '<%= config.bin %> <%= command.id %> app:1 app:2 -o apps.tar.zst',
    '<%= config.bin %> <%= command.id %> app:1 -o app-1.oci.tar.gz --host ssh://deploy@build.example.com',
    '<%= config.bin %> <%= command.id %> app:1 --format docker+oci --compress zstd --level 19 -o app-1.tar.zst',
    '<%= config.bin %> <%= command.id %> app:1 -o - | ssh edge transship image load -',
  ]
  static override flags = {
    ...recipeHostFlags,
    compress: Flags.string({
      description: 'Compression (default: from the file name; none for stdout).',
      options: ['bzip2', 'gzip', 'none', 'xz', 'zstd'],
    }),
    format: Flags.string({
      description: "Archive layout (default: from the file name; else the engine's own).",
      options: ['docker', 'docker+oci', 'oci'],
    }),
    host: hostFlag('save from'),
    level: Flags.integer({description: 'Compression level (gzip, bzip2 1–9; xz 0–9; zstd 1–22).'}),
    output: Flags.string({char: 'o', description: 'File to write, or - for stdout.', required: true}),
  }
  static override strict = false
  static override summary = 'Save images into an archive file.'

  async run(): Promise<SaveResult> {
    const {argv} = await this.parse(ImageSave)
    const refs = argv as string[]
    const file = this.flags.output
    const toStdout = file === '-'
    const {compression, level, named} = this.outputChoice(file)
    await requireCompressor(compression)
    if (!toStdout) await checkDirectory(file)

    await using hosts = await openHosts(this.config, this.flags, [this.flags.host])
    const engine = await hosts.engine(this.flags.host, this.signal)
    const facts = await engine.facts(this.signal)
    const {native} = archiveSupport(facts)
    const format = (this.flags.format ?? named.format ?? native) as ArchiveFormat
    for (const ref of refs) await requireImage(engine, ref, this.signal)

    const progress = new ProgressReporter({json: this.jsonEnabled()})
    const partial = `${file}.partial`
    let bytes = 0
    const destination = (): Writable[] => {
      const counted = byteCounter((n) => {
        bytes += n
      })
      const target = toStdout ? process.stdout : createWriteStream(partial, {flush: true})
      return [
        ...(compression === 'none' ? [] : [compressor(compression, {level, signal: this.signal})]),
        counted,
        target,
      ]
    }

    let index: ArchiveIndex
    try {
      index =
        format === native
          ? await this.passThrough(engine, refs, destination(), progress)
          : await this.reencode(engine, refs, format, destination, progress)
      if (!toStdout) await rename(partial, file)
    } catch (error) {
      if (!toStdout) await rm(partial, {force: true})
      throw error
    } finally {
      progress.stop()
    }

    const images = inRequestOrder(index.images, refs).map((image) => ({
      id: image.configDigest,
      layers: image.layers.length,
      tags: image.repoTags,
    }))
    const names = images.map((image) => image.tags.join(', ') || image.id.slice(0, 19)).join('; ')
    const what = `${format}${compression === 'none' ? '' : `, ${compression}`}`
    const line = `Saved ${images.length} image${images.length === 1 ? '' : 's'} (${names}) from ${this.flags.host} to ${
      toStdout ? 'stdout' : file
    }: ${what}, ${formatBytes(bytes)}`
    if (toStdout) this.logToStderr(line)
    else this.log(line)
    return {bytes, compression, file, format, host: this.flags.host, images, passThrough: format === native}
  }

  /** Compression and layout from the flags and the file name; refuses what cannot work. */
  private outputChoice(file: string): {compression: Compression; level: number | undefined; named: ArchiveNameKind} {
    const toStdout = file === '-'
    if (toStdout && process.stdout.isTTY) {
      throw new UsageError('refusing to write an image archive to a terminal', {
        suggestions: ['redirect it (-o - > app.tar, or into a pipe), or give a file: -o app.tar'],
      })
    }

    if (toStdout && this.jsonEnabled()) {
      throw new UsageError('--json and -o - both want stdout', {suggestions: ['give a file with -o, or drop --json']})
    }

    const named = toStdout ? {} : archiveKindFromName(file)
    const compression = (this.flags.compress ?? named.compression ?? 'none') as Compression
    const {level} = this.flags
    if (level !== undefined) {
      if (compression === 'none') {
        throw new UsageError('--level needs a compression (--compress, or a .gz/.zst/.bz2/.xz name)')
      }

      const [min, max] = LEVELS[compression]
      if (level < min || level > max) {
        throw new UsageError(`${compression} levels go from ${min} to ${max}, not ${level}`)
      }
    }

    return {compression, level, named}
  }

  /** The engine's own archive, indexed on the way (to report and check it) and compressed as asked. */
  private async passThrough(
    engine: EngineClient,
    refs: string[],
    destination: Writable[],
    progress: ProgressReporter,
  ): Promise<ArchiveIndex> {
    const task = progress.task('save', `save ${refs.join(' ')}`)
    const side = new PassThrough()
    const indexing = indexArchive(side, {signal: this.signal, source: `the archive host "${engine.host}" sent`})
    const tapped = tap(side, {holdEnd: () => indexing})
    indexing.catch((error: unknown) => tapped.destroy(error as Error))
    try {
      const reply = await engineSave(engine, refs, this.signal)
      await pipeline([reply, tapped, byteCounter((n) => task.tick(n)), ...destination], {signal: this.signal})
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
  private async reencode(
    engine: EngineClient,
    refs: string[],
    format: ArchiveFormat,
    destination: () => Writable[],
    progress: ProgressReporter,
  ): Promise<ArchiveIndex> {
    const source = `the archive host "${engine.host}" sent`
    const reading = progress.task('index', `read ${refs.join(' ')}`)
    let index: ArchiveIndex
    try {
      const first = await engineSave(engine, refs, this.signal)
      const counted = byteCounter((n) => reading.tick(n))
      pipeline(first, counted).catch(() => {
        // pipeline destroys `counted` with the error: indexArchive reports it
      })
      index = await indexArchive(counted, {signal: this.signal, source})
      index.images = inRequestOrder(index.images, refs)
      // manifest.json can give a name to one image only: of a multi-platform image, the engine's own platform
      if (format === 'docker') index.images = forPlatform(index.images, await engine.facts(this.signal))
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
    const writing = pipeline([writer.stream, ...destination()], {signal: this.signal})
    writing.catch(() => {
      // awaited below; a failure also fails the writer, which stops the loop
    })
    try {
      const second = await engineSave(engine, refs, this.signal)
      const byPath = layerPaths(layers)
      const pending = new Set(layers.map((layer) => layer.digest))
      for await (const {header, stream} of archiveEntries(second, {signal: this.signal, source})) {
        const layer = header.type === 'file' ? byPath.get(header.name) : undefined
        if (!layer || !pending.has(layer.digest)) continue
        pending.delete(layer.digest)
        await writer.writeLayer(
          layer,
          counted(stream, (n) => task.tick(n)),
          this.signal,
        )
      }

      if (pending.size > 0) {
        throw new TransshipError(
          'SAVE_INCOMPLETE',
          1,
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
}

async function checkDirectory(file: string): Promise<void> {
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
