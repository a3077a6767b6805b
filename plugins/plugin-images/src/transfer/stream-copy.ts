import type {EngineClient, EngineMessage, Progress, ProgressTask, RemoteShell} from '@transship/kit'

import {EngineError, ExitCode, shellQuote, TransshipError} from '@transship/kit'
import {compressor, decompressor, fullName} from '@transship/kit/archive'
import {readMessages} from '@transship/kit/engine'
import {
  blobName,
  type Descriptor,
  INDEX_FILE,
  LAYOUT_FILE,
  LAYOUT_VERSION,
  layoutIndex,
  MEDIA_TYPES,
  nameAnnotations,
  sha256,
} from '@transship/kit/oci'
import {parseReference} from '@transship/kit/reference'
import {once} from 'node:events'
import path from 'node:path'
import {PassThrough, type Readable, Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import tar from 'tar-stream'

import type {DestinationState} from './destination.js'
import type {SourceImage} from './images.js'

import {
  isLayerEntryName,
  isLegacyLayerName,
  type LayerPathCache,
  LayerResolver,
  type ResolvedLayer,
} from './layer-resolver.js'
import {parallelGzip} from './parallel-gzip.js'

/** Entries up to this size are read whole (metadata: manifests, configs, v1 json); larger ones stream. */
const SMALL_ENTRY = 1024 * 1024

/**
 * When the far side's own zstd decompresses, a 128 MiB window also finds repeats far apart (the same
 * files in two layers); an engine's own reader may refuse such a window, so it is used only there.
 */
const LONG_WINDOW_LOG = 27

export type WireCompression = 'gzip' | 'none' | 'zstd'

export interface TransferTarget {
  compression: WireCompression
  /** bytes of archive expected for this destination (before compression), for progress */
  estimatedBytes?: number
  /**
   * The engine cannot take this compression (Docker 20.10 and zstd): the host's own `zstd` and `curl`
   * decompress on the far side and feed the engine's socket. Nothing is installed there.
   */
  remoteLoad?: RemoteShell
  /**
   * Rewrite a legacy (Docker 20.10) save stream as an OCI layout on the way: the containerd image store
   * loads a partial OCI archive, never a partial legacy one. Needs every layer known by its header.
   */
  convertToOci?: boolean
  destination: DestinationState
  /** leave out the layers the destination holds; false sends the whole image */
  partial: boolean
}

export interface TargetReport {
  /** bytes sent to the destination engine (after compression): what crosses the link */
  bytesOnWire: number
  /** bytes of the archive before compression */
  bytesRaw: number
  error?: Error
  host: string
  layersSent: number
  layersSkipped: number
  /** what the engine said it loaded (`Loaded image: app:1`, `Loaded image ID: sha256:…`) */
  loaded: string[]
}

export interface StreamCopyResult {
  /** config digests learned from the stream's manifest.json, by image */
  configDigests: Map<string, string>
  reports: TargetReport[]
}

export interface StreamCopyOptions {
  cache: LayerPathCache
  progress: Progress
  signal: AbortSignal
  /**
   * The source host's shell, when its own curl and zstd can compress the save stream for the link from
   * it (pull and relay over slow links); otherwise the engine's socket is read as it is.
   */
  sourceShell?: RemoteShell
  sourceStore: 'classic' | 'containerd'
}

/** `GET /images/get` of the images: from the engine, or compressed on the source host by its own tools. */
async function openSave(source: EngineClient, images: SourceImage[], options: StreamCopyOptions): Promise<Readable> {
  const query = new URLSearchParams(images.map((image): [string, string] => ['names', image.ref]))
  if (!options.sourceShell) {
    return source.stream({
      path: '/images/get',
      query: {names: images.map((image) => image.ref)},
      signal: options.signal,
    })
  }

  const shell = options.sourceShell
  const url = `http://localhost/v${source.apiVersion}/images/get?${query}`
  const remote = shell.exec(
    `curl -sS --fail --unix-socket ${shellQuote(shell.engineSocket)} '${url}' | zstd -3 -T0 --long=${LONG_WINDOW_LOG} -c`,
    {signal: options.signal},
  )
  ;(remote.stdin as NodeJS.WritableStream).end()
  const plain = decompressor('zstd', {signal: options.signal})
  const reading = pipeline(remote.stdout as unknown as Readable, plain)
  // a failure of curl or zstd on the source host ends the stream early: make it an error, not a short archive
  Promise.all([reading, remote.exit])
    .then(([, {code, stderr}]) => {
      if (code !== 0) {
        plain.destroy(
          new EngineError(`${source.host}: curl | zstd on the host failed (exit ${code}): ${stderr.trim()}`, {
            host: source.host,
          }),
        )
      }
    })
    .catch((error: unknown) => plain.destroy(error as Error))
  return plain
}

/**
 * Reads the source's save stream once and writes, for each destination at the same time, an archive
 * that leaves out the layers that destination already holds, straight into its engine's
 * `POST /images/load` (which registers nothing until the whole archive has arrived: never half-done).
 */
export async function streamCopy(
  source: EngineClient,
  images: SourceImage[],
  targets: TransferTarget[],
  options: StreamCopyOptions,
): Promise<StreamCopyResult> {
  if (sendsWholeStream(images, targets, options.sourceStore)) return streamWhole(source, images, targets, options)
  const resolver = new LayerResolver(images, options.cache)
  const outputs = targets.map((target) => new TargetOutput(target, options.progress, options.signal))
  const configs = new Map<string, Buffer>()
  let manifest: LegacyManifest = []
  try {
    const save = await openSave(source, images, options)
    const extract = tar.extract()
    const parsing = pipeline(save, extract)
    parsing.catch(() => {}) // the loop below sees the same failure
    for await (const source of extract) {
      const entry = source as unknown as Readable
      const {header} = source
      const live = outputs.filter((output) => !output.failed)
      let layer = header.type === 'file' && isLayerEntryName(header.name) ? resolver.resolve(header.name) : undefined
      // (a layer linked to another directory's body is a symlink entry: passed on like metadata)
      if (header.type === 'file' && (layer || isLegacyLayerName(header.name))) {
        // a small layer that could not be told from its name is read whole and told by its digest
        const body = !layer && header.size! <= SMALL_ENTRY ? await readAll(entry) : undefined
        if (body) layer = resolver.resolveDiffId(sha256(body))
        for (const output of live) output.noteLayer(header, layer)
        const keep = live.filter((output) => !(layer && output.holds(header.name, layer)))
        for (const output of live) {
          if (keep.includes(output)) output.report.layersSent++
          else output.report.layersSkipped++
        }

        await (body
          ? Promise.all(keep.map((output) => output.writeEntry(header, [body])))
          : fanOut(entry, header, keep))
        continue
      }

      if (header.type !== 'file' || header.size! <= SMALL_ENTRY) {
        if (header.type === 'symlink' && isLegacyLayerName(header.name)) {
          for (const output of live) output.noteLink(header.name, header.linkname ?? '')
        }

        const body = await readAll(entry)
        if (header.name === 'manifest.json') manifest = parseManifest(body)
        else if (header.name.endsWith('/json')) resolver.noteLegacyJson(header.name, body)
        else if (header.name.endsWith('.json') || header.name.startsWith('blobs/')) configs.set(header.name, body)
        await Promise.all(live.map((output) => output.writeEntry(header, [body])))
        continue
      }

      // a large entry that is not a known layer (e.g. a compressed layer blob not seen before): send it
      await fanOut(entry, header, live)
    }

    await parsing
    resolver.learn(manifest, configs)
    await Promise.all(outputs.map((output) => output.finish(manifest, configs)))
  } catch (error) {
    for (const output of outputs) output.abort(error as Error)
    throw error
  } finally {
    await Promise.all(outputs.map((output) => output.settled()))
  }

  // manifest.json lists the images in the engine's order, not the order they were asked for: match by config
  // (a classic engine's image ID is its config digest), else by name
  const configDigests = new Map<string, string>()
  const entries = manifest.map((entry) => ({
    config: `sha256:${/([\da-f]{64})/.exec(entry.Config)?.[1] ?? ''}`,
    names: new Set((entry.RepoTags ?? []).map((tag) => fullName(tag))),
  }))
  for (const image of images) {
    const entry =
      entries.find((item) => item.config === image.id) ?? entries.find((item) => item.names.has(fullName(image.ref)))
    if (entry && entry.config !== 'sha256:') configDigests.set(image.id, entry.config)
  }

  return {configDigests, reports: outputs.map((output) => output.report)}
}

/**
 * Whether every destination takes the save stream as it is: none holds any layer of the images (or
 * all layers are to be sent), so nothing needs to be parsed or left out. The classic store's image ID is
 * the config digest, known only from a classic source without parsing, hence the store condition.
 */
function sendsWholeStream(images: SourceImage[], targets: TransferTarget[], sourceStore: string): boolean {
  return targets.every((target) => {
    const holdsNothing = images.every((image) => image.chains.every((chain) => !target.destination.chains.has(chain)))
    const verifiable = sourceStore === 'classic' || target.destination.facts.imageStore === 'containerd'
    return (!target.partial || holdsNothing) && verifiable
  })
}

/** The save stream, unparsed, to every destination at once (at the pace of the slowest). */
async function streamWhole(
  source: EngineClient,
  images: SourceImage[],
  targets: TransferTarget[],
  options: StreamCopyOptions,
): Promise<StreamCopyResult> {
  const outputs = targets.map(
    (target) => new TargetOutput({...target, convertToOci: false}, options.progress, options.signal, true),
  )
  const layers = new Set(images.flatMap((image) => image.diffIDs)).size
  try {
    const save = await openSave(source, images, options)
    for await (const chunk of save) await Promise.all(outputs.map((output) => output.writeWhole(chunk as Buffer)))
    await Promise.all(outputs.map((output) => output.endWhole()))
  } catch (error) {
    for (const output of outputs) output.abort(error as Error)
    throw error
  } finally {
    await Promise.all(outputs.map((output) => output.settled()))
  }

  for (const output of outputs) output.report.layersSent = layers
  const configDigests = new Map(options.sourceStore === 'classic' ? images.map((image) => [image.id, image.id]) : [])
  return {configDigests, reports: outputs.map((output) => output.report)}
}

/**
 * `POST /images/load` from the destination host itself: its zstd decompresses what arrives on the SSH
 * channel and its curl sends the result to the engine's socket. The engine's reply comes back on stdout.
 */
async function* loadThroughShell(
  shell: RemoteShell,
  destination: DestinationState,
  body: Readable,
  signal: AbortSignal,
): AsyncIterable<EngineMessage> {
  const url = `http://localhost/v${destination.engine.apiVersion}/images/load?quiet=0`
  const command = `zstd -dc --long=${LONG_WINDOW_LOG} | curl -sS --no-buffer --unix-socket ${shellQuote(shell.engineSocket)} -H 'Content-Type: application/x-tar' -X POST -T - '${url}'`
  const remote = shell.exec(command, {signal})
  const sending = pipeline(body, remote.stdin as NodeJS.WritableStream)
  sending.catch(() => {}) // a failed upload shows in the exit status or the reply below
  for await (const message of readMessages(remote.stdout as unknown as Readable, destination.host)) {
    // an error status comes back as the engine's error document
    if (message.stream === undefined && typeof message.message === 'string') {
      throw new EngineError(`${destination.host}: ${message.message}`, {host: destination.host})
    }

    yield message
  }

  const {code, stderr} = await remote.exit
  await sending
  if (code !== 0) {
    throw new EngineError(`${destination.host}: zstd | curl on the host failed (exit ${code}): ${stderr.trim()}`, {
      host: destination.host,
    })
  }
}

/** zstd level 6 runs at well over 100 MB/s on two cores: faster than any WAN link. */
function zstdFor(target: TransferTarget, signal: AbortSignal): NodeJS.ReadWriteStream {
  return compressor('zstd', {level: 6, longWindowLog: target.remoteLoad ? LONG_WINDOW_LOG : undefined, signal})
}

/** One destination: tar → compression → byte meter → the engine's load endpoint. */
class TargetOutput {
  failed: Error | undefined
  readonly report: TargetReport
  private ended = false
  /** legacy layer path → its diffID and size, for a conversion to OCI */
  private readonly layerSizes = new Map<string, {diffID: string; size: number}>()
  /** legacy layer path → the path its symlink points at, while that one has not been seen */
  private readonly links = new Map<string, string>()
  private readonly loading: Promise<void>
  private readonly pack = tar.pack()
  private readonly packing: Promise<void>
  private readonly task: ProgressTask
  /** in whole mode, the save stream goes here as it is, without being parsed */
  private readonly whole: PassThrough | undefined

  constructor(
    private readonly target: TransferTarget,
    progress: Progress,
    signal: AbortSignal,
    whole = false,
  ) {
    const {host} = target.destination
    const report: TargetReport = {bytesOnWire: 0, bytesRaw: 0, host, layersSent: 0, layersSkipped: 0, loaded: []}
    this.report = report
    this.task = progress.task(`copy:${host}`, `${host}`, target.estimatedBytes)
    const raw = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        this.report.bytesRaw += chunk.length
        this.task.tick(chunk.length)
        callback(null, chunk)
      },
    })
    const wire = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        this.report.bytesOnWire += chunk.length
        callback(null, chunk)
      },
    })
    this.whole = whole ? new PassThrough() : undefined
    const packed = this.whole ?? (this.pack as unknown as Readable)
    this.packing = (
      target.compression === 'none'
        ? pipeline(packed, raw, wire)
        : pipeline(
            packed,
            raw,
            target.compression === 'gzip' ? parallelGzip({level: 6}) : zstdFor(target, signal),
            wire,
          )
    ).catch((error: unknown) => this.fail(error))
    this.loading = (async () => {
      const messages = target.remoteLoad
        ? loadThroughShell(target.remoteLoad, target.destination, wire, signal)
        : target.destination.engine.messages({
            body: wire,
            method: 'POST',
            path: '/images/load',
            query: {quiet: false},
            signal,
          })
      for await (const message of messages) {
        const loaded = /^Loaded image(?: ID)?: (.+)$/.exec((message.stream ?? '').trim())?.[1]
        if (loaded) report.loaded.push(loaded)
      }
    })().catch((error: unknown) => this.fail(error))
  }

  abort(error: Error): void {
    this.fail(error)
  }

  /** Whole mode: the next chunk of the save stream, with backpressure. */
  async writeWhole(chunk: Buffer): Promise<void> {
    if (this.failed || !this.whole) return
    if (!this.whole.write(chunk)) await Promise.race([once(this.whole, 'drain'), this.packing])
  }

  async endWhole(): Promise<void> {
    this.whole?.end()
    await this.settled()
  }

  async finish(manifest: LegacyManifest, configs: Map<string, Buffer>): Promise<void> {
    if (this.failed) return
    if (this.target.convertToOci) {
      let metadata: Array<[string, Buffer]>
      try {
        metadata = ociMetadata(manifest, configs, this.layerSizes)
      } catch (error) {
        // this destination falls back to whole images; the others go on
        this.fail(error)
        await this.settled()
        return
      }

      for (const [name, body] of metadata) await this.writeEntry(metadataHeader(name, body.length), [body], true)
    }

    this.pack.finalize()
    await this.settled()
  }

  /** A layer directory whose layer.tar links to another's (Docker 20.10 saves a shared layer once). */
  noteLink(name: string, linkname: string): void {
    const target = path.posix.join(path.posix.dirname(name), linkname)
    const layer = this.layerSizes.get(target)
    if (layer) this.layerSizes.set(name, layer)
    else this.links.set(name, target)
  }

  /** Records what a layer entry is, for the OCI manifests a conversion writes at the end. */
  noteLayer(header: tar.Header, layer: ResolvedLayer | undefined): void {
    if (!this.target.convertToOci) return
    if (layer) {
      this.layerSizes.set(header.name, {diffID: layer.diffID, size: header.size!})
      // links seen before their target
      for (const [link, target] of this.links)
        if (target === header.name) this.layerSizes.set(link, this.layerSizes.get(target)!)
    } else {
      this.fail(
        new TransshipError(
          'PARTIAL_IMPOSSIBLE',
          ExitCode.Failed,
          `layer ${header.name} could not be identified before it was sent`,
        ),
      )
    }
  }

  /** Whether this destination already holds the layer an entry carries, so the entry can be left out. */
  holds(name: string, layer: ResolvedLayer): boolean {
    if (!this.target.partial) return false
    const {destination} = this.target
    const present = layer.chains.every((chain) => destination.chains.has(chain))
    if (destination.facts.imageStore === 'classic' || this.target.convertToOci) return present
    // the containerd store resolves a missing layer from its content store by blob digest: only an
    // uncompressed OCI blob (digest = diffID) of a layer it holds can be left out
    return present && name === blobName(layer.diffID)
  }

  async settled(): Promise<void> {
    await Promise.all([this.packing, this.loading])
    if (!this.ended) this.task.done(this.failed)
    this.ended = true
  }

  /** Writes one entry; chunks come from the source (shared with other destinations). */
  async writeEntry(header: tar.Header, chunks: Iterable<Buffer>, verbatim = false): Promise<void> {
    const sink = this.openEntry(header, verbatim)
    if (!sink) return
    try {
      for (const chunk of chunks) await sink.write(chunk)
    } finally {
      await sink.end()
    }
  }

  openEntry(header: tar.Header, verbatim = false): EntrySink | undefined {
    if (this.failed) return undefined
    const converting = this.target.convertToOci && !verbatim
    // an OCI layout holds blobs only: directories and links of the legacy layout are left out
    const name = converting
      ? header.type === 'file'
        ? ociEntryName(header.name, this.layerSizes)
        : undefined
      : header.name
    if (name === undefined) return {async end() {}, async write() {}}
    const pass = new PassThrough()
    const done = pipeline(pass, this.pack.entry({...entryHeader(header), name}) as unknown as NodeJS.WritableStream)
    done.catch((error: unknown) => this.fail(error))
    return {
      async end() {
        pass.end()
        await done.catch(() => {})
      },
      write: async (chunk) => {
        if (this.failed) return
        if (!pass.write(chunk)) await Promise.race([once(pass, 'drain'), done.catch(() => {})])
      },
    }
  }

  private fail(error: unknown): void {
    if (this.failed) return
    this.failed = error instanceof Error ? error : new Error(String(error))
    this.report.error = this.failed
    this.pack.destroy(this.failed)
    this.whole?.destroy(this.failed)
  }
}

interface EntrySink {
  end(): Promise<void>
  write(chunk: Buffer): Promise<void>
}

/** Streams one source entry into several destinations at once, at the pace of the slowest. */
async function fanOut(entry: Readable, header: tar.Header, outputs: TargetOutput[]): Promise<void> {
  const sinks = outputs.map((output) => output.openEntry(header)).filter((sink) => sink !== undefined)
  try {
    for await (const chunk of entry) await Promise.all(sinks.map((sink) => sink.write(chunk as Buffer)))
  } finally {
    await Promise.all(sinks.map((sink) => sink.end()))
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function entryHeader(header: tar.Header): tar.Header {
  const {devmajor, devminor, gid, gname, linkname, mode, mtime, name, size, type, uid, uname} = header
  return {devmajor, devminor, gid, gname, linkname, mode, mtime, name, size, type, uid, uname}
}

type LegacyManifest = Array<{Config: string; Layers: string[]; RepoTags?: null | string[]}>

/** Where a legacy entry goes in an OCI layout: layers and configs become blobs, the rest is left out. */
function ociEntryName(name: string, layers: Map<string, {diffID: string}>): string | undefined {
  const layer = layers.get(name)
  if (layer) return blobName(layer.diffID)
  const config = /^([\da-f]{64})\.json$/.exec(name)?.[1]
  return config ? blobName(`sha256:${config}`) : undefined
}

/** The OCI manifests, index.json and oci-layout for the images of a legacy manifest.json. */
function ociMetadata(
  manifest: LegacyManifest,
  configs: Map<string, Buffer>,
  layers: Map<string, {diffID: string; size: number}>,
): Array<[string, Buffer]> {
  const entries: Array<[string, Buffer]> = []
  const descriptors: Descriptor[] = []
  for (const image of manifest) {
    const config = configs.get(image.Config)
    if (!config)
      throw new TransshipError('ARCHIVE_CORRUPT', ExitCode.Failed, `the save stream lacks the config ${image.Config}`)
    const body = Buffer.from(
      JSON.stringify({
        config: {
          digest: sha256(config),
          mediaType: MEDIA_TYPES.ociConfig,
          size: config.length,
        },
        layers: image.Layers.map((path) => {
          const layer = layers.get(path)
          if (!layer)
            throw new TransshipError(
              'PARTIAL_IMPOSSIBLE',
              ExitCode.Failed,
              `layer ${path} was not seen in the save stream`,
            )
          return {digest: layer.diffID, mediaType: MEDIA_TYPES.ociLayer, size: layer.size}
        }),
        mediaType: MEDIA_TYPES.ociManifest,
        schemaVersion: 2,
      }),
    )
    const digest = sha256(body)
    entries.push([blobName(digest), body])
    for (const tag of image.RepoTags ?? []) {
      parseReference(tag) // a name that is not a reference is refused before the engine sees it
      descriptors.push({
        annotations: nameAnnotations(tag),
        digest,
        mediaType: MEDIA_TYPES.ociManifest,
        size: body.length,
      })
    }
  }

  entries.push(
    [INDEX_FILE, Buffer.from(JSON.stringify(layoutIndex(descriptors)))],
    [LAYOUT_FILE, Buffer.from(JSON.stringify(LAYOUT_VERSION))],
  )
  return entries
}

function parseManifest(body: Buffer): LegacyManifest {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown
    return Array.isArray(parsed) ? (parsed as LegacyManifest) : []
  } catch {
    return []
  }
}

function metadataHeader(name: string, size: number): tar.Header {
  return {
    devmajor: 0,
    devminor: 0,
    gid: 0,
    gname: '',
    linkname: '',
    mode: 0o644,
    mtime: new Date(0),
    name,
    size,
    type: 'file',
    uid: 0,
    uname: '',
  }
}
