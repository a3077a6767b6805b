/**
 * A volume from one host to another: the source's GNU tar streams the data through transship (which builds
 * the content manifest on the way) into the destination's GNU tar; then the destination is read back and
 * its manifest compared with the source's, file by file. The destination is created like the source
 * (driver, options, labels); until the comparison passes it holds a `.transship-incomplete` marker, so a
 * failed copy never looks finished. The source is only read.
 */
import type {EngineClient, Hosts, Logger, RemoteShell} from '@transship/kit'

import {byteCounter, ExitCode, shellQuote, TransshipError, UsageError} from '@transship/kit'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'

import {compareManifests, formatDifferences} from './manifest/compare.js'
import {manifestOfTar, manifestTap} from './manifest/tar-manifest.js'
import {finishInterrupted, withStopped} from './quiesce.js'
import {createVolumeLike, inspectVolume, requireVolume, type VolumeInfo, volumeUsers} from './volume-store.js'
import {readTar, requireGnuTar, TAR_FILE_CHANGED, type TarEnd, tarEnd, writeTar} from './volume-tar.js'

export const INCOMPLETE_MARKER = '.transship-incomplete'

export type CopyMode = 'create' | 'replace' | 'sync'

export interface VolumeCopyRequest {
  /** the destination volume's name (default: the same) */
  as?: string
  from: string
  /** seconds containers get to stop (quiesce: stop) */
  grace?: number
  /** create (default): destination absent or empty; replace: overwrite it; sync: send only what differs */
  mode?: CopyMode
  name: string
  /** stop the containers that use the volume for the copy, and start them again after */
  quiesce?: 'none' | 'stop'
  /** refuse (instead of warning) to copy a volume that running containers use without quiesce */
  strict?: boolean
  to: string
}

export interface VolumeCopyReport {
  /** bytes of the tar stream sent */
  bytes: number
  destination: string
  files: number
  seconds: number
  source: string
  /** containers stopped and started again */
  stopped: string[]
  verified: boolean
}

export interface CopyContext {
  hosts: Hosts
  log: Logger
  signal: AbortSignal
}

async function isEmpty(shell: RemoteShell, mountpoint: string, signal: AbortSignal): Promise<boolean> {
  const {stdout} = await shell.run(
    `find ${shellQuote(mountpoint)} -mindepth 1 -maxdepth 1 ! -name ${shellQuote(INCOMPLETE_MARKER)} -print -quit`,
    {signal},
  )
  return stdout.trim() === ''
}

async function mustRun(shell: RemoteShell, host: string, command: string, signal: AbortSignal): Promise<void> {
  const result = await shell.run(command, {signal})
  if (result.code !== 0) {
    throw new TransshipError(
      'VOLUME_COMMAND_FAILED',
      ExitCode.Failed,
      `${host}: ${command} failed: ${result.stderr.trim()}`,
    )
  }
}

/** Prepares the destination volume for the mode; resolves to it. */
async function prepareDestination(
  engine: EngineClient,
  shell: RemoteShell,
  request: VolumeCopyRequest,
  source: VolumeInfo,
  signal: AbortSignal,
): Promise<VolumeInfo> {
  const name = request.as ?? request.name
  const mode = request.mode ?? 'create'
  let destination = await inspectVolume(engine, name, signal)
  if (destination && !(await isEmpty(shell, destination.Mountpoint, signal)) && mode === 'create') {
    throw new UsageError(`${name} on ${request.to} is not empty: nothing was copied`, {
      code: 'VOLUME_NOT_EMPTY',
      suggestions: ['say `mode: replace` (--mode replace) to overwrite it, or `mode: sync` to make it equal'],
    })
  }

  destination ??= await createVolumeLike(engine, name, source, signal)
  const mountpoint = shellQuote(destination.Mountpoint)
  await mustRun(shell, request.to, `touch ${mountpoint}/${INCOMPLETE_MARKER}`, signal)
  if (mode === 'replace') {
    const empty = `find ${mountpoint} -mindepth 1 -maxdepth 1 ! -name ${shellQuote(INCOMPLETE_MARKER)} -exec rm -rf -- {} +`
    // a writer that is just ending (an interrupted copy's tar) may add a file while the directory is emptied
    const first = await shell.run(empty, {signal})
    if (first.code !== 0) {
      await new Promise((resolve) => {
        setTimeout(resolve, 1000)
      })
      await mustRun(shell, request.to, empty, signal)
    }
  }

  return destination
}

/** Streams the source volume into the destination; resolves to the source's manifest and the bytes sent. */
async function transfer(
  source: {end: TarEnd; mountpoint: string},
  destination: {end: TarEnd; mountpoint: string},
  log: Logger,
  signal: AbortSignal,
) {
  const reader = readTar(source.end, source.mountpoint, {signal})
  const writer = writeTar(destination.end, destination.mountpoint, {signal})
  const tap = manifestTap()
  let bytes = 0
  let broken: Error | undefined
  try {
    await pipeline(
      reader.stdout,
      tap.stream,
      byteCounter((n) => {
        bytes += n
      }),
      writer.stdin,
      {signal},
    )
  } catch (error) {
    if (signal.aborted) throw error
    // the tars' own exit statuses say why better than the broken pipe does
    broken = error as Error
  }

  const [read, wrote] = await Promise.all([reader.exit, writer.exit])
  if (wrote.code !== 0) {
    throw new TransshipError(
      'VOLUME_WRITE_FAILED',
      ExitCode.Failed,
      `${destination.end.host}: tar failed writing the volume (exit ${wrote.code ?? wrote.signal}): ${wrote.stderr.trim()}`,
    )
  }

  if (read.code === TAR_FILE_CHANGED) {
    log.warn(`${source.end.host}: files changed while they were read (${read.stderr.trim()}); the comparison will tell`)
  } else if (read.code !== 0 && !broken) {
    throw new TransshipError(
      'VOLUME_READ_FAILED',
      ExitCode.Failed,
      `${source.end.host}: tar failed reading the volume: ${read.stderr.trim()}`,
    )
  }

  if (broken) {
    throw new TransshipError(
      'VOLUME_TRANSFER_FAILED',
      ExitCode.Failed,
      `the stream from ${source.end.host} to ${destination.end.host} broke: ${broken.message} (reading tar: exit ${read.code ?? read.signal}${read.stderr.trim() ? `, ${read.stderr.trim()}` : ''})`,
      {cause: broken},
    )
  }

  return {bytes, manifest: await tap.manifest}
}

/** A manifest path as the bytes tar knows it by (`\\xNN` escapes back to bytes). */
function rawPath(manifestPath: string): Buffer {
  const parts: Buffer[] = []
  let text = ''
  for (let i = 0; i < manifestPath.length; i++) {
    const escape = /^\\x([\dA-F]{2})/.exec(manifestPath.slice(i))
    if (escape) {
      parts.push(Buffer.from(text), Buffer.from([Number.parseInt(escape[1]!, 16)]))
      text = ''
      i += 3
    } else {
      text += manifestPath[i]
    }
  }

  parts.push(Buffer.from(text))
  return Buffer.concat(parts)
}

function nulList(paths: string[]): Buffer {
  return Buffer.concat(paths.flatMap((item) => [Buffer.from('./'), rawPath(item), Buffer.from([0])]))
}

/**
 * mode sync: the destination made equal to the source by sending only what differs. Both volumes are read
 * for their manifests; paths only in the destination are removed; changed and new paths (with their
 * directories, whose times the changes disturb) are sent as one tar of just those entries.
 */
async function syncTransfer(
  source: {end: TarEnd; mountpoint: string},
  destination: {end: TarEnd; mountpoint: string},
  log: Logger,
  signal: AbortSignal,
) {
  const [wanted, present] = await Promise.all([
    readVolumeManifest(source.end, source.mountpoint, signal),
    readVolumeManifest(destination.end, destination.mountpoint, signal),
  ])
  const comparison = compareManifests(wanted, present, {
    ignore: (item) => item === INCOMPLETE_MARKER,
    limit: Number.MAX_SAFE_INTEGER,
  })
  const removed = comparison.differences.filter((item) => item.kind === 'only-in-destination').map((item) => item.path)
  const touched = new Set(
    comparison.differences.filter((item) => item.kind !== 'only-in-destination').map((item) => item.path),
  )
  // a hard link group goes whole; the directories holding any change get their times back
  for (const entry of wanted.entries) {
    if (entry.hardlinkOf && (touched.has(entry.path) || touched.has(entry.hardlinkOf))) {
      touched.add(entry.path)
      touched.add(entry.hardlinkOf)
    }
  }

  for (const changed of [...touched, ...removed]) {
    for (let parent = path.posix.dirname(changed); ; parent = path.posix.dirname(parent)) {
      touched.add(parent === '' ? '.' : parent)
      if (parent === '.' || parent === '/' || parent === '') break
    }
  }

  if (removed.length > 0) {
    const remover = destination.end.shell.exec(`cd ${shellQuote(destination.mountpoint)} && xargs -0 rm -rf --`, {
      signal,
    })
    remover.stdout.resume()
    const deepestFirst = [...removed].sort((a, b) => b.split('/').length - a.split('/').length)
    remover.stdin.end(nulList(deepestFirst))
    const exit = await remover.exit
    if (exit.code !== 0)
      throw new TransshipError('VOLUME_WRITE_FAILED', ExitCode.Failed, `${destination.end.host}: ${exit.stderr.trim()}`)
  }

  // in the source's order, so a hard link's target comes before it and directories before their files
  const order = wanted.entries.map((entry) => entry.path).filter((item) => touched.has(item))
  log.info(`sync: ${order.length} entries to send, ${removed.length} to remove, of ${wanted.entries.length}`)
  const reader = readTar(source.end, source.mountpoint, {files: nulList(order), signal})
  const writer = writeTar(destination.end, destination.mountpoint, {signal})
  let bytes = 0
  await pipeline(
    reader.stdout,
    byteCounter((n) => {
      bytes += n
    }),
    writer.stdin,
    {signal},
  )
  const [read, wrote] = await Promise.all([reader.exit, writer.exit])
  if (read.code !== 0 && read.code !== TAR_FILE_CHANGED) {
    throw new TransshipError(
      'VOLUME_READ_FAILED',
      ExitCode.Failed,
      `${source.end.host}: tar failed reading the volume: ${read.stderr.trim()}`,
    )
  }

  if (wrote.code !== 0) {
    throw new TransshipError(
      'VOLUME_WRITE_FAILED',
      ExitCode.Failed,
      `${destination.end.host}: tar failed writing the volume: ${wrote.stderr.trim()}`,
    )
  }

  return {bytes, manifest: wanted}
}

/** The manifest of a volume as its host's tar reads it now. */
export async function readVolumeManifest(end: TarEnd, mountpoint: string, signal: AbortSignal) {
  const {host} = end
  const reader = readTar(end, mountpoint, {signal})
  const [manifest, exit] = await Promise.all([manifestOfTar(reader.stdout, {signal}), reader.exit])
  if (exit.code !== 0 && exit.code !== TAR_FILE_CHANGED) {
    throw new TransshipError(
      'VOLUME_READ_FAILED',
      ExitCode.Failed,
      `${host}: tar failed reading the volume: ${exit.stderr.trim()}`,
    )
  }

  return manifest
}

export async function copyVolume(request: VolumeCopyRequest, context: CopyContext): Promise<VolumeCopyReport> {
  const {hosts, log, signal} = context
  const started = performance.now()
  const [sourceEngine, destinationEngine] = await Promise.all([
    hosts.engine(request.from, signal),
    hosts.engine(request.to, signal),
  ])
  const [sourceEnd, destinationEnd] = await Promise.all([
    tarEnd(hosts, request.from, signal),
    tarEnd(hosts, request.to, signal),
  ])
  const sourceShell = sourceEnd.shell
  const destinationShell = destinationEnd.shell
  await finishInterrupted(sourceEngine, request.from, request.name, log)
  const source = await requireVolume(sourceEngine, request.name, signal)
  await requireGnuTar(sourceShell, request.from, signal)
  await requireGnuTar(destinationShell, request.to, signal)
  const users = await volumeUsers(sourceEngine, request.name, signal)
  const running = users.filter((user) => user.State === 'running')
  if (running.length > 0 && request.quiesce !== 'stop') {
    const names = running.map((user) => user.Names[0]?.replace(/^\//, '') ?? user.Id).join(', ')
    if (request.strict) {
      throw new UsageError(`${request.name} is in use by ${names} on ${request.from}`, {
        code: 'VOLUME_IN_USE',
        suggestions: ['say `quiesce: stop` (--quiesce stop) to stop them for the copy and start them again after'],
      })
    }

    log.warn(
      `${request.name} is in use by ${names} on ${request.from}: the copy may catch files mid-write (quiesce: stop avoids it)`,
    )
  }

  const destination = await prepareDestination(destinationEngine, destinationShell, request, source, signal)
  const destinationName = request.as ?? request.name
  const stopped = request.quiesce === 'stop' ? running.map((user) => user.Names[0]?.replace(/^\//, '') ?? user.Id) : []
  const copyOnce = () =>
    withStopped(
      sourceEngine,
      request.from,
      request.name,
      request.quiesce === 'stop' ? users : [],
      {grace: request.grace, log},
      () =>
        (request.mode === 'sync' ? syncTransfer : transfer)(
          {end: sourceEnd, mountpoint: source.Mountpoint},
          {end: destinationEnd, mountpoint: destination.Mountpoint},
          log,
          signal,
        ),
    )
  let sent: Awaited<ReturnType<typeof copyOnce>>
  try {
    sent = await copyOnce()
  } catch (error) {
    // a broken stream (a host's tar that died, a dropped channel) is worth one more try, from scratch
    if (signal.aborted || (error as TransshipError).code !== 'VOLUME_TRANSFER_FAILED') throw error
    log.warn(`${(error as Error).message}; copying ${request.name} again`)
    if ((request.mode ?? 'create') !== 'sync') {
      const emptied = `find ${shellQuote(destination.Mountpoint)} -mindepth 1 -maxdepth 1 ! -name ${shellQuote(INCOMPLETE_MARKER)} -exec rm -rf -- {} +`
      await mustRun(destinationShell, request.to, emptied, signal)
    }

    sent = await copyOnce()
  }

  const landed = await readVolumeManifest(destinationEnd, destination.Mountpoint, signal)
  const comparison = compareManifests(sent.manifest, landed, {ignore: (path) => path === INCOMPLETE_MARKER})
  if (!comparison.equal) {
    throw new TransshipError(
      'VOLUME_VERIFY_FAILED',
      ExitCode.Verify,
      `${destinationName} on ${request.to} differs from ${request.name} on ${request.from}:\n${formatDifferences(comparison).join('\n')}`,
      {details: {differences: comparison.differences}},
    )
  }

  // removing the marker touches the volume's root: give it back the source's time
  const root = sent.manifest.entries.find((entry) => entry.path === '.')
  const mountpoint = shellQuote(destination.Mountpoint)
  await mustRun(
    destinationShell,
    request.to,
    `rm -f ${mountpoint}/${INCOMPLETE_MARKER}${root ? ` && touch -m -d @${root.mtime} ${mountpoint}` : ''}`,
    signal,
  )
  return {
    bytes: sent.bytes,
    destination: `${request.to}:${destinationName}`,
    files: sent.manifest.entries.length,
    seconds: (performance.now() - started) / 1000,
    source: `${request.from}:${request.name}`,
    stopped,
    verified: true,
  }
}
