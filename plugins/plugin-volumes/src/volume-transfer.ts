/**
 * Moving a volume's data from one end to the other, three ways:
 * - `tar`: everything, as one GNU tar stream from the source's tar to the destination's, relayed by transship
 *   unopened (zstd-compressed on the wire when both ends have zstd and the hosts are apart);
 * - `rsync`: the hosts' own rsync, relayed (see rsync-relay.ts): only changed blocks of changed files cross;
 * - `files`: what the two listings say differs, as one tar of just those entries, and what is gone removed.
 * Each resolves to what it sent; proving the result is volume-proof.ts's job.
 */
import type {Logger, RemoteShell} from '@transship/kit'

import {ExitCode, shellQuote, TransshipError} from '@transship/kit'
import {byteCounter} from '@transship/kit/archive'
import path from 'node:path'
import {type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {VolumeEnd} from './access/volume-end.js'
import type {VolumeManifest} from './manifest/types.js'

import {INCOMPLETE_MARKER} from './destination.js'
import {compareManifests} from './manifest/compare.js'
import {rawPath} from './manifest/tar-manifest.js'
import {rsyncRelay} from './rsync-relay.js'
import {readTar, TAR_FILE_CHANGED, type TarEnd, type TarProcess, writeTar} from './volume-tar.js'

export type TransferMethod = 'files' | 'none' | 'rsync' | 'tar'

/** How each method is named in plans and reports. */
export const METHOD_WORDS: Record<TransferMethod, string> = {
  files: 'the changed files',
  none: 'nothing (already equal)',
  rsync: "the hosts' rsync",
  tar: 'one tar stream',
}

/** A changed file this large that the destination has an older copy of is worth rsync's block delta. */
const DELTA_WORTHWHILE = 1024 * 1024

/**
 * How a sync sends `delta`: nothing when nothing differs; the hosts' rsync (when both have it) when a large file
 * changed that the destination has an older copy of, so that only its changed blocks cross; else the changed
 * entries as one tar (cheaper than rsync's own walk of both trees).
 */
export function syncMethod(delta: SyncDelta, present: VolumeManifest, rsync: boolean): TransferMethod {
  if (delta.send.length === 0 && delta.remove.length === 0) return 'none'
  if (!rsync) return 'files'
  const before = new Map(present.entries.map((entry) => [entry.path, entry]))
  const partial = delta.files.some((file) => file.size >= DELTA_WORTHWHILE && before.get(file.path)?.type === 'file')
  return partial ? 'rsync' : 'files'
}

export interface Sent {
  /** bytes that crossed from the source to the destination (as on the wire: compressed when it was) */
  bytes: number
  method: TransferMethod
  /** entries removed from the destination */
  removed: number
  /** files whose content was sent (manifest paths), or all of them */
  sent: 'all' | string[]
}

export interface TransferContext {
  log: Logger
  signal: AbortSignal
}

/** A volume end as its tar sees it: its shell, and whether its stream is zstd-compressed on the wire. */
export function tarEndOf(end: VolumeEnd, wire: TarEnd['wire']): TarEnd {
  return {host: end.host, shell: end.shell, wire}
}

/**
 * Streams a reading tar into a writing one; resolves to the bytes relayed. A stream that breaks is explained by
 * the tars' own exit statuses when they have one (a tar that failed says why), else reported as the transfer
 * that broke.
 */
async function pump(
  reader: TarProcess & {stdout: Readable},
  writer: TarProcess & {stdin: NodeJS.WritableStream},
  hosts: {from: string; to: {end: TarEnd; root: string}},
  context: TransferContext,
): Promise<number> {
  const {log, signal} = context
  let bytes = 0
  let broken: Error | undefined
  try {
    await pipeline(
      [
        reader.stdout,
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
    const space = await freeSpace(hosts.to)
    throw new TransshipError(
      'VOLUME_WRITE_FAILED',
      ExitCode.Failed,
      `${hosts.to.end.host}: tar failed writing the volume (exit ${wrote.code ?? wrote.signal}): ${wrote.stderr.trim()}${space.full ? `\nthe destination volume is full: ${space.text}` : ''}`,
      {
        details: {freeBytes: space.free},
        suggestions: [
          `the destination is marked unfinished: ${space.full ? 'make room for the volume' : 'fix what tar says'} and run the copy again (only what is missing is sent)`,
        ],
      },
    )
  }

  if (broken || readFailed) {
    throw new TransshipError(
      'VOLUME_TRANSFER_FAILED',
      ExitCode.Failed,
      `the stream from ${hosts.from} to ${hosts.to.end.host} broke: ${broken?.message ?? 'the reading tar was cut short'} (reading tar: exit ${read.code ?? read.signal}; writing tar: exit 0)`,
      {
        cause: broken,
        suggestions: [
          'run the copy again with --mode sync (mode: sync): the destination is marked unfinished, and only what is still missing is sent',
        ],
      },
    )
  }

  if (read.code === TAR_FILE_CHANGED) {
    log.warn(`${hosts.from}: files changed while they were read (${read.stderr.trim()}); the comparison will tell`)
  }

  return bytes
}

/** Everything: the source's tar stream into the destination's tar, relayed unopened. */
export async function sendAll(
  source: {end: TarEnd; root: string},
  destination: {end: TarEnd; root: string},
  context: TransferContext,
): Promise<Sent> {
  const reader = readTar(source.end, source.root, {raw: true, signal: context.signal})
  const writer = writeTar(destination.end, destination.root, {raw: true, signal: context.signal})
  const bytes = await pump(reader, writer, {from: source.end.host, to: destination}, context)
  return {bytes, method: 'tar', removed: 0, sent: 'all'}
}

/** The free space of the destination's file system, as `df` there sees it; `full` when under 1 MiB is left. */
async function freeSpace(destination: {
  end: TarEnd
  root: string
}): Promise<{free?: number; full: boolean; text: string}> {
  const result = await destination.end.shell.run(`df -P -k ${shellQuote(destination.root)} | tail -n 1`).catch(() => {})
  const fields = result?.code === 0 ? result.stdout.trim().split(/\s+/) : []
  const [size, , available] = fields.slice(1, 4).map(Number)
  if (size === undefined || available === undefined || Number.isNaN(available)) return {full: false, text: ''}
  return {
    free: available * 1024,
    full: available < 1024,
    text: `${available} KiB free of ${size} KiB`,
  }
}

function nulList(paths: string[]): Buffer {
  return Buffer.concat(paths.flatMap((item) => [Buffer.from('./'), rawPath(item), Buffer.from([0])]))
}

/** What a sync would change at the destination, from the two listings. */
export interface SyncDelta {
  /** entries to send, in the source's order (directories before their files, a hard link's target first) */
  send: string[]
  /** files among them whose content differs or is new (the rest are directories, links, metadata), with their sizes */
  files: Array<{path: string; size: number}>
  /** logical bytes of those files */
  bytes: number
  /** paths to remove from the destination */
  remove: string[]
}

/**
 * The difference between the source's listing and the destination's, as what to send and what to remove: changed
 * and new paths (a hard link group goes whole; the directories holding a change get their times back), and the
 * paths only the destination has.
 */
export function syncDelta(wanted: VolumeManifest, present: VolumeManifest): SyncDelta {
  const comparison = compareManifests(wanted, present, {
    ignore: (item) => item === INCOMPLETE_MARKER,
    limit: Number.MAX_SAFE_INTEGER,
  })
  const remove = comparison.differences.filter((item) => item.kind === 'only-in-destination').map((item) => item.path)
  const touched = new Set(
    comparison.differences.filter((item) => item.kind !== 'only-in-destination').map((item) => item.path),
  )
  for (const entry of wanted.entries) {
    if (entry.hardlinkOf && (touched.has(entry.path) || touched.has(entry.hardlinkOf))) {
      touched.add(entry.path)
      touched.add(entry.hardlinkOf)
    }
  }

  for (const changed of [...touched, ...remove]) {
    for (let parent = path.posix.dirname(changed); ; parent = path.posix.dirname(parent)) {
      touched.add(parent === '' ? '.' : parent)
      if (parent === '.' || parent === '/' || parent === '') break
    }
  }

  const send = wanted.entries.map((entry) => entry.path).filter((item) => touched.has(item))
  const files = wanted.entries
    .filter((entry) => entry.type === 'file' && touched.has(entry.path))
    .map((entry) => ({path: entry.path, size: entry.size}))
  return {bytes: files.reduce((sum, file) => sum + file.size, 0), files, remove, send}
}

async function removePaths(shell: RemoteShell, host: string, root: string, paths: string[], signal: AbortSignal) {
  if (paths.length === 0) return
  const remover = shell.exec(`cd ${shellQuote(root)} && xargs -0 rm -rf --`, {signal})
  remover.stdout.on('error', () => {})
  remover.stdout.resume()
  const deepestFirst = [...paths].sort((a, b) => b.split('/').length - a.split('/').length)
  remover.stdin.end(nulList(deepestFirst))
  const exit = await remover.exit
  if (exit.code !== 0)
    throw new TransshipError('VOLUME_WRITE_FAILED', ExitCode.Failed, `${host}: ${exit.stderr.trim()}`)
}

/** The differences of `delta` made at the destination: removals, then one tar of the entries to send. */
export async function sendDelta(
  source: {end: TarEnd; root: string},
  destination: {end: TarEnd; root: string},
  delta: SyncDelta,
  context: TransferContext,
): Promise<Sent> {
  await removePaths(destination.end.shell, destination.end.host, destination.root, delta.remove, context.signal)
  if (delta.send.length === 0) return {bytes: 0, method: 'files', removed: delta.remove.length, sent: []}
  const reader = readTar(source.end, source.root, {files: nulList(delta.send), raw: true, signal: context.signal})
  const writer = writeTar(destination.end, destination.root, {raw: true, signal: context.signal})
  const bytes = await pump(reader, writer, {from: source.end.host, to: destination}, context)
  return {bytes, method: 'files', removed: delta.remove.length, sent: delta.files.map((file) => file.path)}
}

/** A sync by the hosts' own rsync, relayed through transship. */
export async function sendByRsync(
  source: VolumeEnd,
  destination: VolumeEnd,
  options: TransferContext & {checksum?: boolean},
): Promise<Sent> {
  const {checksum, log, signal} = options
  const result = await rsyncRelay(source, destination, {checksum, exclude: [INCOMPLETE_MARKER], log, signal})
  options.log.info(
    `sync by the hosts' rsync: ${result.changed.length} entries changed, ${result.deleted.length} removed, ${result.bytesSent} bytes sent`,
  )
  return {bytes: result.bytesSent, method: 'rsync', removed: result.deleted.length, sent: result.changed}
}
