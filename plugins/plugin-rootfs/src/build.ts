/**
 * A rootfs build: make or open the rootfs, decide the epoch, measure the layer, then stream it into every
 * output (an engine's load, an OCI layout, an archive file). The rootfs is packed straight from where it is;
 * nothing is copied to disk on the way.
 */
import type {EngineClient, Hosts, Logger} from '@transship/kit'

import {ExitCode, TransshipError, UsageError} from '@transship/kit'
import {engineLoad} from '@transship/kit/engine'
import {formatBytes} from '@transship/kit/ui'
import {createWriteStream} from 'node:fs'
import {mkdir, mkdtemp, rename, rm} from 'node:fs/promises'
import path from 'node:path'
import {type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {RootfsEntry, RootfsSource} from './source/entry.js'

import {imageConfig, type ImageConfigSpec, imagePlatform} from './image/config.js'
import {contentDigest, readOnce} from './inputs/content.js'
import {type InputFacts, inputsRecord, type InputsRecord, withRecord} from './inputs/record.js'
import {dockerArchive} from './output/docker-archive.js'
import {Digester, type LayerCompression} from './output/layer-blob.js'
import {writeOciArchive, writeOciLayout} from './output/oci-layout.js'
import {formatOutput, type OutputTarget} from './output/targets.js'
import {cleanEntries} from './pack/cleanup.js'
import {measureLayer, writeLayer} from './pack/layer-tar.js'
import {
  bootstrap,
  bootstrapCommand,
  bootstrapProblem,
  type BootstrapSpec,
  releaseEpoch,
  removeRootfs,
} from './source/bootstrap.js'
import {DirectorySource} from './source/directory.js'
import {openTarballSource} from './source/tarball.js'

export type RootfsInput =
  {bootstrap: BootstrapSpec; kind: 'bootstrap'} | {kind: 'directory'; path: string} | {kind: 'tarball'; path: string}

export interface BuildRequest {
  /** remove logs and caches and fix host files (default true) */
  cleanup?: boolean
  /** layer compression of OCI outputs (default gzip; engines and docker-archives get the plain tar) */
  compression?: LayerCompression
  config?: ImageConfigSpec
  /** SOURCE_DATE_EPOCH; decided from the rootfs when absent */
  epoch?: number
  /** the image's name, e.g. base/debian:bookworm */
  image: string
  input: RootfsInput
  outputs: OutputTarget[]
  /** where debootstrap builds (default /var/tmp): a filesystem that allows devices and exec */
  workDir?: string
}

export interface BuildOutputResult {
  /** the config digest: the image ID on a classic engine */
  configDigest: string
  /** the engine's ID for the image (engines only) */
  id?: string
  /** the layer blob's digest (OCI outputs; docker outputs hold the plain tar, whose digest is the diffID) */
  layerDigest: string
  /** the OCI manifest's digest (OCI outputs) */
  manifestDigest?: string
  output: string
}

export interface BuildResult {
  /** seconds spent in debootstrap/mmdebstrap */
  bootstrapSeconds?: number
  diffID: string
  entries: number
  epoch: number
  /** where the epoch came from */
  epochSource: 'given' | 'newest file' | 'release date'
  image: string
  /** what the image was built from, as its label org.transship.rootfs.inputs records it (not for stdin) */
  inputs?: InputsRecord
  /** bytes of the uncompressed layer */
  layerSize: number
  outputs: BuildOutputResult[]
  /** seconds spent packing and writing the outputs */
  packSeconds: number
}

export interface BuildContext {
  hosts: Hosts
  log: Logger
  signal: AbortSignal
}

/** `app` → `app:latest`; a name with a tag stays. */
export function imageTag(name: string): string {
  const lastSlash = name.lastIndexOf('/')
  return name.slice(lastSlash + 1).includes(':') ? name : `${name}:latest`
}

interface OpenedSource {
  /** what the history's created_by says */
  createdBy: string
  dispose(): Promise<void>
  source: RootfsSource
}

async function openInput(request: BuildRequest, context: BuildContext): Promise<OpenedSource & {seconds?: number}> {
  const {input} = request
  if (input.kind === 'directory') {
    const source = new DirectorySource(input.path, {description: `directory ${input.path}`, log: context.log})
    return {createdBy: `transship rootfs build --dir ${path.basename(input.path)}`, async dispose() {}, source}
  }

  if (input.kind === 'tarball') {
    const source = await openTarballSource(input.path, {signal: context.signal})
    const name = input.path === '-' ? '-' : path.basename(input.path)
    return {createdBy: `transship rootfs build --tarball ${name}`, dispose: () => source.close(), source}
  }

  const problem = await bootstrapProblem(input.bootstrap)
  if (problem) throw problem
  const workDir = request.workDir ?? '/var/tmp'
  await mkdir(workDir, {recursive: true})
  const target = await mkdtemp(path.join(workDir, 'transship-rootfs-'))
  const started = performance.now()
  try {
    context.log.info(`${input.bootstrap.tool} ${input.bootstrap.suite} into ${target}…`)
    await bootstrap(input.bootstrap, target, {epoch: request.epoch, log: context.log, signal: context.signal})
  } catch (error) {
    await removeRootfs(target).catch((removeError: unknown) => {
      context.log.warn(`could not remove ${target}: ${(removeError as Error).message}`)
    })
    throw error
  }

  const seconds = (performance.now() - started) / 1000
  const source = new DirectorySource(target, {
    description: `${input.bootstrap.tool} ${input.bootstrap.suite}`,
    log: context.log,
  })
  // the command without its temporary target: the history must not change from one build to the next
  const command = bootstrapCommand(input.bootstrap, 'ROOTFS').join(' ')
  return {
    createdBy: command,
    dispose: () => removeRootfs(target),
    seconds,
    source: Object.assign(source, {epochHint: () => releaseEpoch(target)}),
  }
}

async function decideEpoch(
  request: BuildRequest,
  source: RootfsSource,
  signal: AbortSignal,
): Promise<{epoch: number; epochSource: BuildResult['epochSource']}> {
  if (request.epoch !== undefined) return {epoch: request.epoch, epochSource: 'given'}
  const hint = await source.epochHint?.(signal)
  if (hint !== undefined) return {epoch: hint, epochSource: 'release date'}
  const {newestMtime} = await measureLayer(
    cleanEntries(source.entries(signal), {cleanup: request.cleanup, epoch: Number.MAX_SAFE_INTEGER}),
  )
  if (newestMtime === undefined) {
    throw new UsageError(`${source.description} is empty`, {code: 'ROOTFS_EMPTY'})
  }

  return {epoch: newestMtime, epochSource: 'newest file'}
}

type EngineImage = {config: (diffID: string) => Buffer; epoch: number; tag: string}

/**
 * A classic engine's `docker load` spools the whole archive to disk before it unpacks the layer; its import
 * unpacks as the bytes arrive. So the layer goes in through `POST /images/create?fromSrc=-` (whose image,
 * stamped with the current time, is removed again), and the image itself through a load of an archive that
 * holds only the config: the engine finds the layer it already has by its chain ID.
 */
async function importLayer(
  engine: EngineClient,
  layer: {size: number; stream: NodeJS.ReadableStream},
  signal: AbortSignal,
): Promise<{diffID: string; importedId: string | undefined}> {
  const digester = new Digester()
  const body = (layer.stream as Readable).pipe(digester)
  layer.stream.on('error', (error: Error) => digester.destroy(error))
  let importedId: string | undefined
  for await (const message of engine.messages({
    body,
    headers: {'content-type': 'application/x-tar'},
    method: 'POST',
    path: '/images/create',
    query: {fromSrc: '-'},
    signal,
  })) {
    if (typeof message.status === 'string' && message.status.startsWith('sha256:')) importedId = message.status.trim()
  }

  if (digester.bytes !== layer.size) {
    throw new Error(`the layer had ${digester.bytes} bytes, not the ${layer.size} measured`)
  }

  return {diffID: digester.digest(), importedId}
}

async function loadIntoEngine(
  engine: EngineClient,
  layer: {size: number; stream: NodeJS.ReadableStream},
  image: EngineImage,
  signal: AbortSignal,
): Promise<{configDigest: string; diffID: string; id: string}> {
  const {imageStore} = await engine.facts(signal)
  let written: {configDigest: string; diffID: string}
  if (imageStore === 'classic') {
    const imported = await importLayer(engine, layer, signal)
    try {
      const archive = dockerArchive({diffID: imported.diffID}, {...image, tags: [image.tag]}, signal)
      ;[, written] = await Promise.all([engineLoad(engine, archive.stream, signal), archive.done])
    } finally {
      if (imported.importedId) {
        await engine.json({method: 'DELETE', path: `/images/${imported.importedId}`, signal}).catch(() => {
          // only an untagged leftover: nothing depends on it
        })
      }
    }
  } else {
    const archive = dockerArchive(
      {size: layer.size, stream: layer.stream as Readable},
      {...image, tags: [image.tag]},
      signal,
    )
    ;[, written] = await Promise.all([engineLoad(engine, archive.stream, signal), archive.done])
  }

  const inspected = await engine.json<{Id: string; RootFS?: {Layers?: string[]}}>({
    path: `/images/${encodeURIComponent(image.tag)}/json`,
    signal,
  })
  const layers = inspected.RootFS?.Layers ?? []
  if (layers.length !== 1 || layers[0] !== written.diffID) {
    throw new TransshipError(
      'ROOTFS_LOAD_MISMATCH',
      ExitCode.Verify,
      `${engine.host} holds ${image.tag} with layers ${layers.join(', ') || 'none'}, not the ${written.diffID} that was loaded`,
    )
  }

  return {...written, id: inspected.Id}
}

async function writeDockerArchiveFile(
  file: string,
  layer: {size: number; stream: NodeJS.ReadableStream},
  image: {config: (diffID: string) => Buffer; epoch: number; tag: string},
  signal: AbortSignal,
): Promise<{configDigest: string; diffID: string}> {
  await mkdir(path.dirname(file), {recursive: true})
  const temporary = `${file}.${process.pid}.tmp`
  const archive = dockerArchive(
    {size: layer.size, stream: layer.stream as never},
    {config: image.config, epoch: image.epoch, tags: [image.tag]},
    signal,
  )
  try {
    const [, written] = await Promise.all([
      pipeline(archive.stream, createWriteStream(temporary), {signal}),
      archive.done,
    ])
    await rename(temporary, file)
    return written
  } catch (error) {
    await rm(temporary, {force: true})
    throw error
  }
}

/**
 * The record of what this build reads, from the source itself: the Release date the bootstrap fetched, the
 * digest of the tarball or directory. Undefined for a tarball read from stdin or a pipe (it cannot be read
 * again to compare: such an image is rebuilt every time).
 */
async function recordInputs(
  request: BuildRequest,
  source: RootfsSource,
  signal: AbortSignal,
): Promise<InputsRecord | undefined> {
  const {input} = request
  const facts: InputFacts = {}
  if (input.kind === 'bootstrap') facts.release = await source.epochHint?.(signal)
  else if (input.kind === 'tarball' && (await readOnce(input.path))) return undefined
  else facts.content = await contentDigest(source, signal)
  return inputsRecord(request, facts)
}

/** Builds the image and writes it to every output, in order. */
export async function buildRootfs(request: BuildRequest, context: BuildContext): Promise<BuildResult> {
  const {log, signal} = context
  const tag = imageTag(request.image)
  // reach every engine before the (long) bootstrap: a typo in a host name fails at once
  const engines = new Map<string, EngineClient>()
  for (const output of request.outputs) {
    if (output.kind === 'engine' && !engines.has(output.host)) {
      engines.set(output.host, await context.hosts.engine(output.host, signal))
    }
  }

  const opened = await openInput(request, context)
  try {
    const started = performance.now()
    const {source} = opened
    const {epoch, epochSource} = await decideEpoch(request, source, signal)
    const entries = (): AsyncIterable<RootfsEntry> =>
      cleanEntries(source.entries(signal), {cleanup: request.cleanup, epoch})
    const measured = await measureLayer(entries())
    log.info(
      `packing ${measured.entries} files (${formatBytes(measured.size)}) with epoch ${epoch} (${new Date(epoch * 1000).toISOString()}, ${epochSource})`,
    )
    const platform = imagePlatform(request.input.kind === 'bootstrap' ? request.input.bootstrap.arch : undefined)
    const inputs = await recordInputs(request, source, signal)
    const spec = inputs ? withRecord(request.config, inputs) : request.config
    const config = (diffID: string) =>
      imageConfig({...platform, createdBy: opened.createdBy, diffIDs: [diffID], epoch, spec})
    const image = {config, epoch, tag}
    const outputs: BuildOutputResult[] = []
    let diffID = ''
    let first: string | undefined
    for (const output of request.outputs) {
      const layer = {size: measured.size, stream: writeLayer(entries(), signal)}
      const name = formatOutput(output)
      if (output.kind === 'engine') {
        const loaded = await loadIntoEngine(engines.get(output.host)!, layer, image, signal)
        diffID = loaded.diffID
        outputs.push({configDigest: loaded.configDigest, id: loaded.id, layerDigest: loaded.diffID, output: name})
      } else if (output.kind === 'docker-archive') {
        const written = await writeDockerArchiveFile(output.path, layer, image, signal)
        diffID = written.diffID
        outputs.push({configDigest: written.configDigest, layerDigest: written.diffID, output: name})
      } else {
        const spec = {compression: request.compression ?? 'gzip', config, epoch, tags: [tag]}
        const written =
          output.kind === 'oci'
            ? await writeOciLayout(output.path, layer.stream, spec, signal)
            : await writeOciArchive(output.path, layer.stream, spec, signal)
        diffID = written.layer.diffID
        outputs.push({
          configDigest: written.configDigest,
          layerDigest: written.layer.digest,
          manifestDigest: written.manifestDigest,
          output: name,
        })
      }

      // each output packs the rootfs again: all must get the same layer
      if (first !== undefined && diffID !== first) {
        throw new UsageError(`${source.description} changed between two outputs (layer ${first}, then ${diffID})`, {
          code: 'ROOTFS_CHANGED',
          suggestions: ['build from a rootfs that nothing else writes to while transship packs it'],
        })
      }

      first ??= diffID
      log.info(`wrote ${tag} to ${name}`)
    }

    return {
      bootstrapSeconds: opened.seconds,
      diffID,
      entries: measured.entries,
      epoch,
      epochSource,
      image: tag,
      inputs,
      layerSize: measured.size,
      outputs,
      packSeconds: (performance.now() - started) / 1000,
    }
  } finally {
    await opened.dispose()
  }
}
