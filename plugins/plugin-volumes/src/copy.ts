/**
 * A volume from one host to another: the source's GNU tar streams the data through transship (which builds
 * the content manifest on the way) into the destination's GNU tar; then the destination is read back and
 * its manifest compared with the source's, file by file. The destination is created like the source
 * (driver, options, labels); until the comparison passes it holds a `.transship-incomplete` marker, so a
 * failed copy never looks finished. The source is only read.
 */
import type {EngineClient, Hosts, Logger, RemoteShell} from '@transship/kit'

import {ExitCode, sameEngine, shellQuote, TransshipError, UsageError} from '@transship/kit'
import {byteCounter} from '@transship/kit/archive'
import path from 'node:path'
import {type Readable, type Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {compareManifests, formatDifferences} from './manifest/compare.js'
import {manifestOfTar, manifestTap, type VolumeManifest} from './manifest/tar-manifest.js'
import {containerName, describeUsers, finishInterrupted, isActive, withStopped} from './quiesce.js'
import {checkVolumeName} from './volume-name.js'
import {
  createVolumeLike,
  inspectVolume,
  requireVolume,
  type VolumeInfo,
  type VolumeUser,
  volumeUsers,
} from './volume-store.js'
import {readTar, requireGnuTar, TAR_FILE_CHANGED, type TarEnd, tarEnd, type TarProcess, writeTar} from './volume-tar.js'

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
  /**
   * stop the containers that use the volume for the copy, and start them again after: on the source, and on the
   * destination when the volume there is used by containers
   */
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
  /** containers stopped and started again: on the source */
  stopped: string[]
  /** and on the destination */
  stoppedAtDestination: string[]
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

/** Runs a command on a host's shell; a non-zero exit is VOLUME_COMMAND_FAILED with its stderr. */
export async function mustRun(shell: RemoteShell, host: string, command: string, signal: AbortSignal): Promise<void> {
  const result = await shell.run(command, {signal})
  if (result.code !== 0) {
    throw new TransshipError(
      'VOLUME_COMMAND_FAILED',
      ExitCode.Failed,
      `${host}: ${command} failed: ${result.stderr.trim()}`,
    )
  }
}

/**
 * What is at the destination before anything is touched: the volume (or undefined) and the containers that use
 * it. Refuses (exit 2, nothing changed) a destination that `create` would overwrite, and one that containers use
 * while its data would change under them, unless they are to be stopped.
 */
async function checkDestination(
  engine: EngineClient,
  shell: RemoteShell,
  request: VolumeCopyRequest,
  signal: AbortSignal,
): Promise<{users: VolumeUser[]; volume: undefined | VolumeInfo}> {
  const name = request.as ?? request.name
  const mode = request.mode ?? 'create'
  const volume = await inspectVolume(engine, name, signal)
  if (!volume) return {users: [], volume}
  if (mode === 'create' && !(await isEmpty(shell, volume.Mountpoint, signal))) {
    throw new UsageError(`${name} on ${request.to} is not empty: nothing was copied`, {
      code: 'VOLUME_NOT_EMPTY',
      suggestions: ['say `mode: replace` (--mode replace) to overwrite it, or `mode: sync` to make it equal'],
    })
  }

  const users = await volumeUsers(engine, name, signal)
  // create fills an empty volume (a stopped user loses nothing); replace and sync delete what is there
  const inTheWay = mode === 'create' ? users.filter((user) => isActive(user)) : users
  if (inTheWay.length > 0 && request.quiesce !== 'stop') {
    const what =
      mode === 'create' ? 'its data would change under them' : `mode ${mode} would change its data under them`
    throw new UsageError(
      `${name} on ${request.to} is used by ${describeUsers(inTheWay)}: ${what}; nothing was copied`,
      {
        code: 'VOLUME_IN_USE',
        details: {containers: inTheWay.map((user) => containerName(user)), host: request.to, volume: name},
        suggestions: [
          'say `quiesce: stop` (--quiesce stop) to stop the running ones for the copy and start them again after (stopped ones stay stopped)',
          `or copy it under another name (--as), or remove those containers from ${request.to} first`,
        ],
      },
    )
  }

  return {users, volume}
}

/** Makes the destination ready for the mode (created, marked unfinished, emptied for replace); resolves to it. */
async function prepareDestination(
  engine: EngineClient,
  shell: RemoteShell,
  request: VolumeCopyRequest,
  existing: undefined | VolumeInfo,
  source: VolumeInfo,
  signal: AbortSignal,
): Promise<VolumeInfo> {
  const name = request.as ?? request.name
  const destination = existing ?? (await createVolumeLike(engine, name, source, signal))
  const mountpoint = shellQuote(destination.Mountpoint)
  await mustRun(shell, request.to, `touch ${mountpoint}/${INCOMPLETE_MARKER}`, signal)
  if ((request.mode ?? 'create') === 'replace') await emptyVolume(shell, request.to, destination.Mountpoint, signal)
  return destination
}

/** Removes everything in a volume but the unfinished marker. */
export async function emptyVolume(
  shell: RemoteShell,
  host: string,
  mountpoint: string,
  signal: AbortSignal,
): Promise<void> {
  const empty = `find ${shellQuote(mountpoint)} -mindepth 1 -maxdepth 1 ! -name ${shellQuote(INCOMPLETE_MARKER)} -exec rm -rf -- {} +`
  // a writer that is just ending (an interrupted copy's tar) may add a file while the directory is emptied
  const first = await shell.run(empty, {signal})
  if (first.code !== 0) {
    await new Promise((resolve) => {
      setTimeout(resolve, 1000)
    })
    await mustRun(shell, host, empty, signal)
  }
}

/**
 * Streams a reading tar into a writing one through `stages`; resolves to the bytes sent. A stream that breaks
 * is explained by the tars' own exit statuses when they have one (a tar that failed says why), else reported
 * as the transfer that broke.
 */
async function pump(
  reader: TarProcess & {stdout: Readable},
  writer: TarProcess & {stdin: NodeJS.WritableStream},
  stages: Transform[],
  hosts: {from: string; to: string},
  log: Logger,
  signal: AbortSignal,
): Promise<number> {
  let bytes = 0
  let broken: Error | undefined
  try {
    await pipeline(
      [
        reader.stdout,
        ...stages,
        byteCounter((n) => {
          bytes += n
        }),
        writer.stdin,
      ],
      {signal},
    )
  } catch (error) {
    if (signal.aborted) throw error
    broken = error as Error
  }

  const [read, wrote] = await Promise.all([reader.exit, writer.exit])
  // what transship itself found (a damaged stream, a lost connection) is the cause; the tars' failures follow it
  if (broken instanceof TransshipError) throw broken
  const readFailed = read.code !== 0 && read.code !== TAR_FILE_CHANGED
  // a reading tar killed by SIGPIPE was cut short by what broke downstream: that is the story to tell
  const cutShort = read.signal === 'PIPE' || read.signal === 'SIGPIPE'
  if (readFailed && !cutShort) {
    throw new TransshipError(
      'VOLUME_READ_FAILED',
      ExitCode.Failed,
      `${hosts.from}: tar failed reading the volume (exit ${read.code ?? read.signal}): ${read.stderr.trim()}`,
    )
  }

  if (wrote.code !== 0) {
    throw new TransshipError(
      'VOLUME_WRITE_FAILED',
      ExitCode.Failed,
      `${hosts.to}: tar failed writing the volume (exit ${wrote.code ?? wrote.signal}): ${wrote.stderr.trim()}`,
    )
  }

  if (broken || readFailed) {
    throw new TransshipError(
      'VOLUME_TRANSFER_FAILED',
      ExitCode.Failed,
      `the stream from ${hosts.from} to ${hosts.to} broke: ${broken?.message ?? 'the reading tar was cut short'} (reading tar: exit ${read.code ?? read.signal}; writing tar: exit 0)`,
      {
        cause: broken,
        suggestions: ['run the copy again with --mode replace (or mode: sync): the destination is marked unfinished'],
      },
    )
  }

  if (read.code === TAR_FILE_CHANGED) {
    log.warn(`${hosts.from}: files changed while they were read (${read.stderr.trim()}); the comparison will tell`)
  }

  return bytes
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
  const bytes = await pump(reader, writer, [tap.stream], {from: source.end.host, to: destination.end.host}, log, signal)
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
    remover.stdout.on('error', () => {})
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
  const bytes = await pump(reader, writer, [], {from: source.end.host, to: destination.end.host}, log, signal)
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
  checkVolumeName(request.name)
  if (request.as !== undefined) checkVolumeName(request.as, '--as')
  const destinationName = request.as ?? request.name
  const started = performance.now()
  const [sourceHost, destinationHost] = await Promise.all([
    hosts.host(request.from, signal),
    hosts.host(request.to, signal),
  ])
  const sourceEngine = sourceHost.engine
  const destinationEngine = destinationHost.engine
  if (sameEngine(sourceHost, destinationHost) && destinationName === request.name) {
    throw new UsageError(
      `${request.from} and ${request.to} are the same engine: ${request.name} would be copied onto itself`,
      {
        code: 'VOLUME_SAME',
        suggestions: ['name the copy with --as (as:)'],
      },
    )
  }

  const [sourceEnd, destinationEnd] = await Promise.all([tarEnd(sourceHost, signal), tarEnd(destinationHost, signal)])
  const sourceShell = sourceEnd.shell
  const destinationShell = destinationEnd.shell
  await finishInterrupted(sourceHost, request.name, log)
  await finishInterrupted(destinationHost, destinationName, log)
  const source = await requireVolume(sourceEngine, request.name, signal)
  await requireGnuTar(sourceShell, request.from, signal)
  await requireGnuTar(destinationShell, request.to, signal)
  const users = await volumeUsers(sourceEngine, request.name, signal)
  const running = users.filter((user) => isActive(user))
  if (running.length > 0 && request.quiesce !== 'stop') {
    const names = running.map((user) => containerName(user)).join(', ')
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

  const existing = await checkDestination(destinationEngine, destinationShell, request, signal)
  const quiesce = request.quiesce === 'stop'
  const options = {grace: request.grace, log}
  // the destination's containers stay stopped until its data is in place and proven; the source's only while read
  const sent = await withStopped(
    destinationHost,
    destinationName,
    quiesce ? existing.users : [],
    {...options, purpose: `the copy of ${request.name} into ${destinationName}`},
    async () => {
      const destination = await prepareDestination(
        destinationEngine,
        destinationShell,
        request,
        existing.volume,
        source,
        signal,
      )
      const copied = await withStopped(sourceHost, request.name, quiesce ? users : [], options, () =>
        (request.mode === 'sync' ? syncTransfer : transfer)(
          {end: sourceEnd, mountpoint: source.Mountpoint},
          {end: destinationEnd, mountpoint: destination.Mountpoint},
          log,
          signal,
        ),
      )
      await proveAndFinish(copied.manifest, destination, {request, shell: destinationShell}, destinationEnd, signal)
      return copied
    },
  )
  return {
    bytes: sent.bytes,
    destination: `${request.to}:${destinationName}`,
    files: sent.manifest.entries.length,
    seconds: (performance.now() - started) / 1000,
    source: `${request.from}:${request.name}`,
    stopped: quiesce ? running.map((user) => containerName(user)) : [],
    stoppedAtDestination: quiesce
      ? existing.users.filter((user) => isActive(user)).map((user) => containerName(user))
      : [],
    verified: true,
  }
}

/** Reads the destination back and compares it with what was sent; then removes the unfinished marker. */
async function proveAndFinish(
  sent: VolumeManifest,
  destination: VolumeInfo,
  context: {request: VolumeCopyRequest; shell: RemoteShell},
  destinationEnd: TarEnd,
  signal: AbortSignal,
): Promise<void> {
  const {request, shell} = context
  const destinationName = request.as ?? request.name
  const landed = await readVolumeManifest(destinationEnd, destination.Mountpoint, signal)
  const comparison = compareManifests(sent, landed, {ignore: (item) => item === INCOMPLETE_MARKER})
  if (!comparison.equal) {
    throw new TransshipError(
      'VOLUME_VERIFY_FAILED',
      ExitCode.Verify,
      `${destinationName} on ${request.to} differs from ${request.name} on ${request.from}:\n${formatDifferences(comparison).join('\n')}`,
      {details: {differences: comparison.differences}},
    )
  }

  // removing the marker touches the volume's root: give it back the source's time
  const root = sent.entries.find((entry) => entry.path === '.')
  const mountpoint = shellQuote(destination.Mountpoint)
  await mustRun(
    shell,
    request.to,
    `rm -f ${mountpoint}/${INCOMPLETE_MARKER}${root ? ` && touch -m -d @${root.mtime} ${mountpoint}` : ''}`,
    signal,
  )
}
