import {Args} from '@oclif/core'
import {
  BaseCommand,
  type EngineClient,
  type EngineFacts,
  hostFlag,
  openHosts,
  recipeHostFlags,
  UsageError,
} from '@transship/kit'
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
  sha256,
  tap,
} from '@transship/kit/archive'
import {engineLoad, type EngineLoadResult} from '@transship/kit/engine'
import {formatTable, ProgressReporter} from '@transship/kit/ui'
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
} from '../../engine-archive.js'

export interface LoadResult {
  /** what was in the file: its layout and compression */
  archive: {compression: Compression; format: ArchiveFormat}
  file: string
  host: string
  images: VerifiedImage[]
  /** how it was sent: as-is, or re-encoded into another layout or compression the engine reads */
  sent: {compression: Compression; format: ArchiveFormat; reencoded: boolean}
}

interface CheckedFile {
  compression: Compression
  index: ArchiveIndex
  size: number
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

export default class ImageLoad extends BaseCommand<typeof ImageLoad> {
  static override args = {
    file: Args.string({description: 'Archive to load, or - for stdin.', ignoreStdin: true, required: true}),
  }
  static override description = `Load an image archive into a host: the local engine, a recipe host, or ssh://user@host[:port].

Reads docker-archives (\`docker save\` of any Docker version, skopeo, go-containerregistry) and OCI image layout archives, uncompressed or compressed with gzip, zstd, bzip2 or xz. A file is checked completely before anything is sent: a truncated, damaged or foreign file is refused (exit 2) and the engine is not touched. It is then sent as it is when the engine reads its layout and compression, and re-encoded on the way otherwise (Docker 20.10 reads no OCI-only archive and no zstd; Docker 25+ needs an index.json that lists every image). Afterwards each image of the archive is looked up on the engine and its layers are compared with the archive's: a difference fails the load (exit 5).

From stdin (-) the archive streams straight to the engine (zstd is decompressed locally for engines older than Docker 23) and is checked on the way: a broken archive aborts the upload before its end, so the engine loads nothing.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> app-1.tar',
    '<%= config.bin %> <%= command.id %> apps.tar.zst --host ssh://deploy@edge.example.com',
    '<%= config.bin %> <%= command.id %> app-1.oci.tar.gz --recipe recipes/fleet.yaml --host edge --json',
    'ssh build transship image save app:1 -o - | <%= config.bin %> <%= command.id %> -',
  ]
  static override flags = {
    ...recipeHostFlags,
    host: hostFlag('load into'),
  }
  static override summary = 'Load an image archive into a host.'

  async run(): Promise<LoadResult> {
    const {file} = this.args
    const fromStdin = file === '-'
    if (fromStdin && process.stdin.isTTY) {
      throw new UsageError('an image archive on stdin was asked for (-), but stdin is a terminal', {
        suggestions: ['pipe the archive in (… | transship image load -), or give a file'],
      })
    }

    const progress = new ProgressReporter({json: this.jsonEnabled()})
    // a file is read and checked completely before any host is contacted
    const checked = fromStdin
      ? undefined
      : await this.check(file, progress).catch((error: unknown) => {
          progress.stop()
          throw error
        })
    await using hosts = await openHosts(this.config, this.flags, [this.flags.host])
    const engine = await hosts.engine(this.flags.host, this.signal)
    const facts = await engine.facts(this.signal)
    const overSsh = hosts.describe(this.flags.host).kind === 'ssh'
    let result: LoadResult
    try {
      result = checked
        ? await this.loadFile(file, checked, engine, facts, overSsh, progress)
        : await this.loadStream(engine, facts, progress)
    } finally {
      progress.stop()
    }

    const rows = result.images.map((image) => [
      image.tags.join(', ') || '<none>',
      image.id.replace('sha256:', '').slice(0, 12),
      String(image.layers.length),
    ])
    this.log(formatTable(['IMAGE', 'ID', 'LAYERS'], rows))
    const how = result.sent.reencoded
      ? `re-encoded as ${describe(result.sent.format, result.sent.compression)}`
      : describe(result.sent.format, result.sent.compression)
    this.logger().info(
      `Loaded ${result.images.length} image${result.images.length === 1 ? '' : 's'} into ${this.flags.host} (${how}); layers checked`,
    )
    return result
  }

  /** Reads the whole file: its compression, and its index (an ArchiveError when it is broken). */
  private async check(file: string, progress: ProgressReporter): Promise<CheckedFile> {
    const info = await stat(file).catch(() => {})
    if (!info) throw new UsageError(`${file} does not exist`, {code: 'FILE_NOT_FOUND'})
    if (!info.isFile()) throw new UsageError(`${file} is not a file`, {code: 'FILE_NOT_FOUND'})
    const compression = detectCompression(await readHead(file))
    await requireCompressor(compression)
    const checking = progress.task('check', `check ${file}`, info.size)
    try {
      const index = await indexArchive(
        counted(createReadStream(file), (n) => checking.tick(n)),
        {
          signal: this.signal,
          source: file,
        },
      )
      checking.done()
      return {compression, index, size: info.size}
    } catch (error) {
      checking.done(error as Error)
      throw error
    }
  }

  private async loadFile(
    file: string,
    checked: CheckedFile,
    engine: EngineClient,
    facts: EngineFacts,
    overSsh: boolean,
    progress: ProgressReporter,
  ): Promise<LoadResult> {
    const {compression, index, size} = checked
    checkLoadable(index, file, facts)
    const plan = sendPlan(index, compression, facts, overSsh)

    // 2. sent as-is, or re-encoded on the way
    const task = progress.task('load', `load ${file} into ${this.flags.host}`, size)
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
        loaded = await this.sendReencoded(engine, file, read(), index, outputs, plan)
      } else {
        loaded = await engineLoad(engine, this.wire(read(), compression, plan), this.signal)
      }

      task.done()
    } catch (error) {
      task.done(error as Error)
      throw error
    }

    const verified = await verifyLoaded({engine, facts, images: expected, loaded, signal: this.signal})
    return {
      archive: {compression, format: index.format},
      file,
      host: this.flags.host,
      images: verified,
      sent: {compression: plan.compression, format: plan.format, reencoded: plan.reencode},
    }
  }

  /**
   * stdin, straight to the engine while it is indexed on the way; the end of the upload waits for the index,
   * so a broken archive (or one the engine cannot read) aborts the upload and nothing is loaded.
   */
  private async loadStream(engine: EngineClient, facts: EngineFacts, progress: ProgressReporter): Promise<LoadResult> {
    const {head, stream: input} = await peek(process.stdin, 10, this.signal)
    const compression = detectCompression(head)
    const support = archiveSupport(facts)
    const decompress = !support.compressions.includes(compression)
    if (decompress) await requireCompressor(compression)
    const task = progress.task('load', `load stdin into ${this.flags.host}`)
    const side = new PassThrough()
    const indexing = indexArchive(side, {signal: this.signal, source: 'the archive on stdin'}).then((index) => {
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
        ? [decompressor(compression as Exclude<Compression, 'none'>, {signal: this.signal})]
        : []
      const wire = new PassThrough()
      pipeline([body, ...stages, tapped, wire], {signal: this.signal}).catch(() => {
        // the load below fails with it
      })
      loaded = await engineLoad(engine, wire, this.signal).catch((error: unknown) => {
        throw broken ?? error
      })
      index = await indexing
      task.done()
    } catch (error) {
      task.done(error as Error)
      throw broken ?? error
    }

    const verified = await verifyLoaded({engine, facts, images: index.images, loaded, signal: this.signal})
    const sent = decompress ? 'none' : compression
    return {
      archive: {compression, format: index.format},
      file: '-',
      host: this.flags.host,
      images: verified,
      sent: {compression: sent, format: index.format, reencoded: false},
    }
  }

  /** Reads the file's layers into an ImageArchiveWriter of the planned layout, which streams to the engine. */
  private async sendReencoded(
    engine: EngineClient,
    file: string,
    input: Readable,
    index: ArchiveIndex,
    images: OutputImage[],
    plan: SendPlan,
  ): Promise<EngineLoadResult> {
    const writer = new ImageArchiveWriter(plan.format, images)
    const loading = engineLoad(engine, this.wire(writer.stream, 'none', plan), this.signal)
    loading.catch(() => {
      // awaited below
    })
    const feed = async () => {
      const wanted = new Set(images.flatMap((image) => image.layers.map((layer) => layer.digest)))
      const layers = archiveLayers(index).filter((layer) => wanted.has(layer.digest))
      const byPath = layerPaths(layers)
      const pending = new Set(layers.map((layer) => layer.digest))
      for await (const {header, stream} of archiveEntries(input, {signal: this.signal, source: file})) {
        const layer = header.type === 'file' ? byPath.get(header.name) : undefined
        if (!layer || !pending.has(layer.digest)) continue
        pending.delete(layer.digest)
        await writer.writeLayer(layer, stream, this.signal)
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
  private wire(input: Readable, compression: Compression, plan: SendPlan): Readable {
    const stages: NodeJS.ReadWriteStream[] = []
    if (plan.decompress && compression !== 'none') stages.push(decompressor(compression, {signal: this.signal}))
    if (plan.compression === 'gzip' && (plan.decompress || plan.reencode))
      stages.push(compressor('gzip', {level: 1, signal: this.signal}))
    if (stages.length === 0) return input
    const output = new PassThrough()
    pipeline([input, ...stages, output], {signal: this.signal}).catch(() => {
      // pipeline destroyed `output` with the error: the upload fails with it
    })
    return output
  }
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

function describe(format: ArchiveFormat, compression: Compression): string {
  return compression === 'none' ? format : `${format}, ${compression}`
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
