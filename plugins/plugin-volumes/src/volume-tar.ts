/**
 * A volume's data is read and written by the host's own GNU tar, run on the volume's mount point, with
 * every flag that keeps what the other ways lose (see the README): xattrs of every namespace (file
 * capabilities included), POSIX ACLs, holes of sparse files, numeric owners (never mapped by name), and the
 * POSIX format (long and non-UTF-8 names, nanosecond times). Extraction runs as root, keeps owners and modes.
 */
import type {Host, RemoteShell} from '@transship/kit'

import {ExitCode, shellQuote, TransshipError, UsageError} from '@transship/kit'
import {compressor, decompressor, hasCommand} from '@transship/kit/archive'
import {pipeline, type Readable, type Writable} from 'node:stream'

import {manifestOfTar} from './manifest/tar-manifest.js'

const COMMON = "--xattrs --xattrs-include='*' --acls --numeric-owner"

/** Writes the volume at `mountpoint` as a tar on stdout (the root directory first, as `./`). */
export function createCommand(mountpoint: string, options: {files?: 'stdin'} = {}): string {
  const list = options.files === 'stdin' ? '--null --no-recursion -T -' : '.'
  return `tar -C ${shellQuote(mountpoint)} ${COMMON} --sparse --format=posix -cf - ${list}`
}

/**
 * Reads a tar from stdin into the volume at `mountpoint`. GNU tar stops reading at the end-of-archive blocks,
 * before its input has ended (the padding of the last record, or anything after it, stays unread): when it
 * succeeds, the rest of the input is read to its end, so that the command ends only after its input did, with
 * tar's exit status. Over SSH, a command that exits first closes the channel under a writer still writing, and
 * a complete copy would look broken. When tar fails, the command ends at once, and the writer learns it.
 */
export function extractCommand(mountpoint: string): string {
  const extract = `tar -C ${shellQuote(mountpoint)} ${COMMON} --same-permissions --same-owner -xf -`
  return `{ ${extract}; status=$?; if [ $status -eq 0 ]; then cat > /dev/null; fi; exit $status; }`
}

/** GNU tar exits 1 when a file changed while it was read: the archive is complete but may be inconsistent. */
export const TAR_FILE_CHANGED = 1

/** Refuses a host whose tar is not GNU tar, or that is not run as root (owners could not be kept). */
export async function requireGnuTar(shell: RemoteShell, host: string, signal?: AbortSignal): Promise<void> {
  const {code, stdout} = await shell.run('tar --version 2>/dev/null | head -n 1; id -u', {signal})
  const [version = '', uid = ''] = stdout.trim().split('\n')
  if (code !== 0 || !version.includes('GNU tar')) {
    throw new UsageError(`${host} has no GNU tar (found: ${version || 'no tar'})`, {
      code: 'VOLUME_TAR_MISSING',
      suggestions: [`install it on ${host} (Debian: apt-get install tar; Alpine: apk add tar)`],
    })
  }

  if (uid.trim() !== '0') {
    throw new UsageError(`${host}: volume data is read and written as root, not as uid ${uid.trim()}`, {
      code: 'VOLUME_NEEDS_ROOT',
      suggestions: ['reach the host as root (ssh://root@host), or run transship as root for the local host'],
    })
  }
}

/** One side of a transfer: a host's shell, and whether its tar stream is zstd-compressed on the wire. */
export interface TarEnd {
  host: string
  shell: RemoteShell
  /** zstd when the host is reached over SSH and both it and this machine have zstd */
  wire: 'none' | 'zstd'
}

/**
 * The tar end of a host: its shell, with zstd on the wire when the host is reached over SSH from another machine
 * and both sides have zstd (for a host on this machine, compressing only costs time).
 */
export async function tarEnd(host: Host, signal?: AbortSignal): Promise<TarEnd> {
  const end = {host: host.name, shell: host.shell}
  if (host.endpoint.kind !== 'ssh' || host.onThisMachine) return {...end, wire: 'none'}
  const probe = await host.shell.run('command -v zstd', {signal})
  return {...end, wire: probe.code === 0 && (await hasCommand('zstd')) ? 'zstd' : 'none'}
}

/** tar's own exit code, reported on stderr when its output goes through a compressor (the pipe's status is the compressor's) */
const EXIT_MARK = 'TRANSSHIP_TAR_EXIT='

function tarExit(result: {code: null | number; signal?: string; stderr: string}, wire: TarEnd['wire']) {
  if (wire === 'none') return result
  const mark = new RegExp(`${EXIT_MARK}(\\d+)`).exec(result.stderr)
  const stderr = result.stderr.replace(new RegExp(`${EXIT_MARK}\\d+\\n?`), '')
  return {...result, code: result.code === 0 && mark ? Number(mark[1]) : result.code, stderr}
}

export interface TarProcess {
  exit: Promise<{code: null | number; signal?: string; stderr: string}>
}

/**
 * The volume at `mountpoint` as a tar stream: uncompressed here whatever travelled on the wire, or with `raw`, as
 * it travels (zstd-compressed when the end says so), for a stream relayed to another host unopened.
 */
export function readTar(
  end: TarEnd,
  mountpoint: string,
  options: {files?: Buffer; raw?: boolean; signal?: AbortSignal} = {},
): TarProcess & {stdout: Readable} {
  const create = createCommand(mountpoint, options.files ? {files: 'stdin'} : {})
  // --adapt: the level follows what the link takes (a fast link gets a cheap level, a slow one a better ratio)
  const command =
    end.wire === 'zstd' ? `{ ${create}; echo ${EXIT_MARK}$? >&2; } | zstd -q -T0 --adapt=min=1,max=12 -c` : create
  const process = end.shell.exec(command, {signal: options.signal})
  if (options.files) process.stdin.end(options.files)
  else process.stdin.end()
  // pipeline, not pipe: an error of the channel (an abort) must reach the reader, not go unhandled
  const stdout =
    end.wire === 'zstd' && !options.raw
      ? pipeline(process.stdout as Readable, decompressor('zstd', {signal: options.signal}), () => {})
      : (process.stdout as Readable)
  return {exit: process.exit.then((result) => tarExit(result, end.wire)), stdout}
}

/**
 * A writable tar stream extracted into the volume at `mountpoint`: uncompressed, or with `raw` as it travels on
 * the wire (compressed as the end says).
 */
export function writeTar(
  end: TarEnd,
  mountpoint: string,
  options: {raw?: boolean; signal?: AbortSignal} = {},
): TarProcess & {stdin: Writable} {
  const extract = extractCommand(mountpoint)
  const process = end.shell.exec(end.wire === 'zstd' ? `zstd -q -d -c | ${extract}` : extract, {signal: options.signal})
  // nothing comes out, but stdout is read to its end (as the shell expects) and its errors (an abort) are `exit`'s
  const stdout = process.stdout as Readable
  stdout.on('error', () => {})
  stdout.resume()
  if (end.wire === 'none' || options.raw) return {exit: process.exit, stdin: process.stdin as Writable}
  const compress = compressor('zstd', {level: 3, signal: options.signal})
  // the channel's errors reach the writer through `compress`
  pipeline(compress, process.stdin as Writable, () => {})
  return {exit: process.exit, stdin: compress}
}

/** The manifest of a volume as its host's tar reads it now (the data crosses to this machine: for archives). */
export async function readVolumeManifest(end: TarEnd, mountpoint: string, signal: AbortSignal) {
  const reader = readTar(end, mountpoint, {signal})
  const [manifest, exit] = await Promise.all([manifestOfTar(reader.stdout, {signal}), reader.exit])
  if (exit.code !== 0 && exit.code !== TAR_FILE_CHANGED) {
    throw new TransshipError(
      'VOLUME_READ_FAILED',
      ExitCode.Failed,
      `${end.host}: tar failed reading the volume: ${exit.stderr.trim()}`,
    )
  }

  return manifest
}
