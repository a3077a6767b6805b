import type {Host, Hosts, Logger, Progress, RemoteShell} from '@transship/kit'

import {ExitCode, TransshipError} from '@transship/kit'
import {hasCommand} from '@transship/kit/archive'

import {archiveSupport} from '../engine-archive.js'
import {inspectImage} from '../image-store.js'
import {type DestinationState, holdsImage, missingLayers, probeDestination} from './destination.js'
import {describeSourceImages, layerSizes, type SourceImage} from './images.js'
import {loadLayerCache, saveLayerCache} from './layer-cache.js'
import {streamCopy, type TargetReport, type TransferTarget, type WireCompression} from './stream-copy.js'

export type CompressionChoice = 'auto' | WireCompression

export interface CopyRequest {
  compression: CompressionChoice
  from: string
  /** send whole images even where the destination holds some layers */
  full?: boolean
  hosts: Hosts
  log: Logger
  progress: Progress
  refs: string[]
  signal: AbortSignal
  to: string[]
}

export interface HostCopyReport {
  bytesOnWire: number
  compression: WireCompression
  durationMs: number
  error?: {code: string; message: string}
  /** why the destination got whole images instead of only the missing layers */
  fallback?: string
  host: string
  images: Array<{id: string; ref: string}>
  layersSent: number
  layersSkipped: number
  /** tags that pointed at another image before; that image is kept, untagged */
  movedTags: Array<{previous: string; tag: string}>
  status: 'copied' | 'failed' | 'up-to-date'
}

/** What a destination needs, decided before anything moves (also what `plan` shows). */
export interface DestinationNeeds {
  destination: DestinationState
  /** the destination host, resolved */
  host: Host
  /** images it lacks, with the layers (diffIDs) it lacks for each */
  images: Array<{image: SourceImage; missing: string[]}>
}

export async function assessDestinations(
  hosts: Hosts,
  images: SourceImage[],
  to: string[],
  signal: AbortSignal,
): Promise<DestinationNeeds[]> {
  return Promise.all(
    to.map(async (name) => {
      const host = await hosts.host(name, signal)
      const destination = await probeDestination(name, host.engine, signal)
      const needed: DestinationNeeds['images'] = []
      for (const image of images) {
        if (!(await holdsImage(destination, image, signal)))
          needed.push({image, missing: missingLayers(destination, image)})
      }

      return {destination, host, images: needed}
    }),
  )
}

/**
 * Copies images from one host to others: reads the source once, sends each destination only the layers
 * it lacks (each layer once, however many images share it), then proves the result: the destination's
 * image has the source's layers (diffIDs) and config.
 */
export async function copyImages(request: CopyRequest): Promise<HostCopyReport[]> {
  const {hosts, signal} = request
  const sourceHost = await hosts.host(request.from, signal)
  const source = sourceHost.engine
  const images = await describeSourceImages(source, request.refs, signal)
  const needs = await assessDestinations(hosts, images, request.to, signal)
  const reports = new Map<string, HostCopyReport>()
  const previousTags = new Map<string, Map<string, string>>()
  for (const need of needs) {
    const {host} = need.destination
    reports.set(host, {
      bytesOnWire: 0,
      compression: 'none',
      durationMs: 0,
      host,
      images: images.map((image) => ({id: image.id, ref: image.ref})),
      layersSent: 0,
      layersSkipped: 0,
      movedTags: [],
      status: need.images.length === 0 ? 'up-to-date' : 'copied',
    })
    const tags = new Map<string, string>()
    for (const {image} of need.images) {
      const existing = await inspectImage(need.destination.engine, image.ref, signal)
      if (existing) tags.set(image.ref, existing.Id)
    }

    previousTags.set(host, tags)
  }

  const pending = needs.filter((need) => need.images.length > 0)
  if (pending.length === 0) return [...reports.values()]
  const toCopy = images.filter((image) => pending.some((need) => need.images.some((item) => item.image === image)))

  const cache = await loadLayerCache(sourceHost.id)
  const started = Date.now()
  const sourceStore = sourceHost.facts.imageStore
  const legacySource = sourceStore === 'classic'
  const sizes = await layerSizes(source, toCopy, signal)
  const targets = await Promise.all(
    pending.map(async (need): Promise<TransferTarget> => ({
      estimatedBytes: estimate(need, sizes),
      ...(await wireCompression(request.compression, need.host, need.destination, signal)),
      // the containerd store loads a partial archive only in the OCI layout
      convertToOci: !request.full && legacySource && need.destination.facts.imageStore === 'containerd',
      destination: need.destination,
      partial: !request.full,
    })),
  )
  const sourceShell = await compressingSource(request.compression, sourceHost, signal)
  let result = await streamCopy(source, toCopy, targets, {
    cache,
    progress: request.progress,
    signal,
    sourceShell,
    sourceStore,
  })
  record(result.reports, targets, reports, started)

  // A destination that refused the partial archive gets the whole images, and the report says so.
  const refused = targets.filter((target) => {
    const report = reports.get(target.destination.host)!
    return report.status === 'failed' && target.partial && !signal.aborted
  })
  if (refused.length > 0) {
    const retry = refused.map((target) => ({...target, convertToOci: false, partial: false}))
    for (const target of retry) {
      const report = reports.get(target.destination.host)!
      report.fallback = `sending only the missing layers failed (${report.error?.message}); sent whole images`
      request.log.warn(`${target.destination.host}: ${report.fallback}`)
    }

    const again = await streamCopy(source, toCopy, retry, {
      cache,
      progress: request.progress,
      signal,
      sourceShell,
      sourceStore,
    })
    record(again.reports, retry, reports, started, true)
    result = {...result, configDigests: new Map([...result.configDigests, ...again.configDigests])}
  }

  await saveLayerCache(sourceHost.id, cache).catch((error: unknown) =>
    request.log.debug(`layer cache not saved: ${error}`),
  )
  for (const target of targets) {
    const report = reports.get(target.destination.host)!
    if (report.status !== 'copied') continue
    const need = pending.find((item) => item.destination === target.destination)!
    for (const {image} of need.images) {
      await verifyCopy(target.destination, image, result.configDigests.get(image.id), signal)
      const previous = previousTags.get(report.host)?.get(image.ref)
      const now = await inspectImage(target.destination.engine, image.ref, signal)
      if (previous && now && previous !== now.Id) report.movedTags.push({previous, tag: image.ref})
    }
  }

  return [...reports.values()]
}

/** The layer bytes a destination is to receive, when the history tells every size. */
function estimate(need: DestinationNeeds, sizes: Map<string, number>): number | undefined {
  const missing = [...new Set(need.images.flatMap((item) => item.missing))]
  return missing.every((diffID) => sizes.has(diffID))
    ? missing.reduce((sum, diffID) => sum + sizes.get(diffID)!, 0)
    : undefined
}

function record(
  results: TargetReport[],
  targets: TransferTarget[],
  reports: Map<string, HostCopyReport>,
  started: number,
  retry = false,
): void {
  for (const [index, result] of results.entries()) {
    const report = reports.get(result.host)!
    report.compression = targets[index]!.compression
    report.bytesOnWire += result.bytesOnWire
    report.layersSent = result.layersSent
    report.layersSkipped = retry ? 0 : result.layersSkipped
    report.durationMs = Date.now() - started
    if (result.error) {
      report.status = 'failed'
      report.error = {code: (result.error as TransshipError).code ?? 'COPY_FAILED', message: result.error.message}
    } else {
      report.status = 'copied'
      delete report.error
    }
  }
}

/** The destination's image must have the source's layers and config, or the copy failed. */
async function verifyCopy(
  destination: DestinationState,
  image: SourceImage,
  configDigest: string | undefined,
  signal: AbortSignal,
): Promise<void> {
  const copied = await inspectImage(destination.engine, image.ref, signal)
  const problems: string[] = []
  if (copied) {
    const layers = copied.RootFS.Layers ?? []
    if (JSON.stringify(layers) !== JSON.stringify(image.diffIDs)) {
      problems.push(`its layers differ: ${layers.length} layers, expected ${image.diffIDs.length}`)
    }

    // a classic store names an image by its config digest; a containerd store by its manifest digest
    const expected = destination.facts.imageStore === 'classic' ? (configDigest ?? image.id) : undefined
    if (expected && copied.Id !== expected) problems.push(`its ID is ${copied.Id}, expected ${expected}`)
    if (copied.Created !== image.created) problems.push(`it was created ${copied.Created}, expected ${image.created}`)
  } else {
    problems.push(`${image.ref} is not there after the load`)
  }

  if (problems.length > 0) {
    throw new TransshipError(
      'COPY_VERIFY_FAILED',
      ExitCode.Verify,
      `${destination.host}: ${image.ref} does not match the source: ${problems.join('; ')}`,
      {
        details: {host: destination.host, image: image.ref},
      },
    )
  }
}

/**
 * zstd where it can be decompressed: by the engine (Docker 23+), else by the destination host's own zstd
 * and curl when it has them; gzip otherwise. Nothing where the bytes never leave this machine.
 */
async function wireCompression(
  choice: CompressionChoice,
  host: Host,
  destination: DestinationState,
  signal: AbortSignal,
): Promise<Pick<TransferTarget, 'compression' | 'remoteLoad'>> {
  const engineTakesZstd = archiveSupport(destination.facts).compressions.includes('zstd')
  if (choice === 'gzip' || choice === 'none') return {compression: choice}
  if (choice === 'auto' && host.onThisMachine) return {compression: 'none'}

  if (!(await hasCommand('zstd'))) return {compression: 'gzip'}
  if (engineTakesZstd) return {compression: 'zstd'}
  const shell = await shellWithZstdAndCurl(host, signal)
  return shell ? {compression: 'zstd', remoteLoad: shell} : {compression: 'gzip'}
}

/**
 * The source host's shell when the save stream should be compressed on its side of the link: it is
 * reached over SSH (not loopback) and has curl and zstd (nothing is installed), and here has zstd too.
 */
async function compressingSource(
  choice: CompressionChoice,
  source: Host,
  signal: AbortSignal,
): Promise<RemoteShell | undefined> {
  if (choice === 'none' || choice === 'gzip' || !(await hasCommand('zstd'))) return undefined
  if (choice === 'auto' && source.onThisMachine) return undefined
  return shellWithZstdAndCurl(source, signal)
}

/** The shell of a host reached over SSH, if it has the zstd and curl commands. */
async function shellWithZstdAndCurl(host: Host, signal: AbortSignal): Promise<RemoteShell | undefined> {
  if (host.endpoint.kind !== 'ssh') return undefined
  const {shell} = host
  try {
    const probe = await shell.run('command -v zstd >/dev/null && command -v curl >/dev/null', {signal})
    return probe.code === 0 ? shell : undefined
  } catch {
    return undefined
  }
}
