/**
 * Volume archives: `volume export` writes the host tar's stream to a file (compressed by the file name's
 * suffix); `volume import` checks an archive whole before anything is written (the rules of archive-check: every
 * path stays inside the volume, nothing is reached through a link, devices only when asked, the tar is
 * complete), then extracts it with the destination's GNU tar and compares what landed with the archive, file by
 * file.
 */
import type {Hosts, Logger} from '@transship/kit'

import {ExitCode, shellQuote, TransshipError, UsageError} from '@transship/kit'
import {compressor, decompressed} from '@transship/kit/archive'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdtemp, rename, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {type Readable, type Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {archiveChecker} from './archive-check.js'
import {emptyVolume, finishDestination, INCOMPLETE_MARKER, markIncomplete} from './destination.js'
import {compareManifests, formatDifferences} from './manifest/compare.js'
import {manifestOfTar, manifestTap, type VolumeManifest} from './manifest/tar-manifest.js'
import {containerName, describeUsers, finishInterrupted, isActive, withStopped} from './quiesce.js'
import {checkVolumeName} from './volume-name.js'
import {createVolumeLike, inspectVolume, requireVolume, type VolumeUser, volumeUsers} from './volume-store.js'
import {readTar, readVolumeManifest, requireGnuTar, TAR_FILE_CHANGED, tarEnd, writeTar} from './volume-tar.js'

function compressionOf(file: string): 'bzip2' | 'gzip' | 'none' | 'xz' | 'zstd' {
  if (/\.(tgz|gz)$/.test(file)) return 'gzip'
  if (/\.(zst|zstd)$/.test(file)) return 'zstd'
  if (/\.(bz2)$/.test(file)) return 'bzip2'
  if (/\.(xz)$/.test(file)) return 'xz'
  return 'none'
}

export async function exportVolume(
  options: {file: string; host: string; hosts: Hosts; name: string; stdout?: Writable},
  signal: AbortSignal,
): Promise<{bytes: number; files: number}> {
  checkVolumeName(options.name)
  const host = await options.hosts.host(options.host, signal)
  const volume = await requireVolume(host.engine, options.name, signal)
  const end = await tarEnd(host, signal)
  await requireGnuTar(end.shell, options.host, signal)
  const reader = readTar(end, volume.Mountpoint, {signal})
  const tap = manifestTap()
  const toStdout = options.file === '-'
  const temporary = `${options.file}.${process.pid}.tmp`
  const kind = toStdout ? 'none' : compressionOf(options.file)
  const sink = toStdout ? (options.stdout ?? process.stdout) : createWriteStream(temporary)
  try {
    await (kind === 'none'
      ? pipeline(reader.stdout, tap.stream, sink, {signal})
      : pipeline(reader.stdout, tap.stream, compressor(kind, {signal}), sink, {signal}))
    const exit = await reader.exit
    if (exit.code !== 0 && exit.code !== TAR_FILE_CHANGED) {
      throw new TransshipError(
        'VOLUME_READ_FAILED',
        ExitCode.Failed,
        `${options.host}: tar failed reading ${options.name}: ${exit.stderr.trim()}`,
      )
    }

    if (!toStdout) await rename(temporary, options.file)
  } catch (error) {
    if (!toStdout) await rm(temporary, {force: true})
    throw error
  }

  const manifest = await tap.manifest
  return {bytes: manifest.totals.bytes, files: manifest.entries.length}
}

/**
 * Reads the whole archive with the rules of archive-check (nothing outside the volume, nothing through a link,
 * nothing another reader would see differently, devices only when allowed), and that it is complete; resolves to
 * its manifest. Its cost follows the archive's bytes, not the sizes it claims.
 */
export async function checkVolumeArchive(
  file: string,
  options: {allowDevices?: boolean; signal?: AbortSignal} = {},
): Promise<VolumeManifest> {
  const {stream} = await decompressed(createReadStream(file), options.signal)
  return manifestOfTar(stream, {
    label: file,
    onEntry: archiveChecker({allowDevices: options.allowDevices, label: file}),
    signal: options.signal,
  })
}

export interface ImportRequest {
  /** create character and block devices the archive holds (refused otherwise) */
  allowDevices?: boolean
  file: string
  /** seconds containers get to stop (quiesce: stop) */
  grace?: number
  host: string
  hosts: Hosts
  log: Logger
  mode?: 'create' | 'replace'
  name: string
  /** stop the containers that use the volume for the import, and start them again after */
  quiesce?: 'none' | 'stop'
  stdin?: Readable
}

export async function importVolume(
  options: ImportRequest,
  signal: AbortSignal,
): Promise<{files: number; stopped: string[]; verified: boolean}> {
  checkVolumeName(options.name)
  let {file} = options
  let spooled: string | undefined
  if (file === '-') {
    spooled = await mkdtemp(path.join(os.tmpdir(), 'transship-volume-'))
    file = path.join(spooled, 'stdin.tar')
    await pipeline(options.stdin ?? process.stdin, createWriteStream(file), {signal})
  }

  try {
    const checked = await checkVolumeArchive(file, {allowDevices: options.allowDevices, signal})
    const host = await options.hosts.host(options.host, signal)
    const {engine} = host
    const end = await tarEnd(host, signal)
    const {shell} = end
    await requireGnuTar(shell, options.host, signal)
    await finishInterrupted(host, options.name, options.log)
    let volume = await inspectVolume(engine, options.name, signal)
    let users: VolumeUser[] = []
    if (volume) {
      const {stdout} = await shell.run(
        `find ${shellQuote(volume.Mountpoint)} -mindepth 1 -maxdepth 1 ! -name ${shellQuote(INCOMPLETE_MARKER)} -print -quit`,
        {signal},
      )
      if (stdout.trim() !== '' && options.mode !== 'replace') {
        throw new UsageError(`${options.name} on ${options.host} is not empty: nothing was imported`, {
          code: 'VOLUME_NOT_EMPTY',
          suggestions: ['say --mode replace to overwrite it'],
        })
      }

      users = await volumeUsers(engine, options.name, signal)
      const inTheWay = options.mode === 'replace' ? users : users.filter((user) => isActive(user))
      if (inTheWay.length > 0 && options.quiesce !== 'stop') {
        throw new UsageError(
          `${options.name} on ${options.host} is used by ${describeUsers(inTheWay)}: its data would change under them; nothing was imported`,
          {
            code: 'VOLUME_IN_USE',
            details: {
              containers: inTheWay.map((user) => containerName(user)),
              host: options.host,
              volume: options.name,
            },
            suggestions: [
              'say --quiesce stop to stop the running ones for the import and start them again after (stopped ones stay stopped)',
              'or import into another volume, or remove those containers first',
            ],
          },
        )
      }
    }

    const stopped = options.quiesce === 'stop' ? users.filter((user) => isActive(user)) : []
    return await withStopped(
      host,
      options.name,
      stopped,
      {grace: options.grace, log: options.log, purpose: `the import into ${options.name}`},
      async () => {
        volume ??= await createVolumeLike(
          engine,
          options.name,
          {Driver: 'local', Labels: {}, Mountpoint: '', Name: options.name, Options: {}},
          signal,
        )
        await markIncomplete(shell, options.host, volume.Mountpoint, signal)
        if (options.mode === 'replace') await emptyVolume(shell, options.host, volume.Mountpoint, signal)

        const writer = writeTar(end, volume.Mountpoint, {signal})
        // checked again as it streams: the file may have changed since; a bad entry stops before tar sees it
        const tap = manifestTap({
          label: options.file,
          onEntry: archiveChecker({
            allowDevices: options.allowDevices,
            label: options.file,
            outcome:
              'the archive changed since it was checked; the import stopped there, and the volume is marked unfinished',
          }),
        })
        const {stream} = await decompressed(createReadStream(file), signal)
        let broken: unknown
        try {
          await pipeline(stream, tap.stream, writer.stdin, {signal})
        } catch (error) {
          if (signal.aborted || error instanceof TransshipError) throw error
          broken = error
        }

        const wrote = await writer.exit
        if (wrote.code !== 0) {
          throw new TransshipError(
            'VOLUME_WRITE_FAILED',
            ExitCode.Failed,
            `${options.host}: tar failed writing ${options.name} (exit ${wrote.code ?? wrote.signal}): ${wrote.stderr.trim()}`,
          )
        }

        if (broken) {
          throw new TransshipError(
            'VOLUME_TRANSFER_FAILED',
            ExitCode.Failed,
            `the stream to ${options.host} broke: ${(broken as Error).message} (tar: exit 0)`,
            {cause: broken, suggestions: ['import it again with --mode replace: the volume is marked unfinished']},
          )
        }

        const expected = await tap.manifest
        const landed = await readVolumeManifest(end, volume.Mountpoint, signal)
        const comparison = compareManifests(expected, landed, {ignore: (entry) => entry === INCOMPLETE_MARKER})
        if (!comparison.equal) {
          throw new TransshipError(
            'VOLUME_VERIFY_FAILED',
            ExitCode.Verify,
            `${options.name} on ${options.host} differs from ${options.file}:\n${formatDifferences(comparison).join('\n')}`,
          )
        }

        const root = expected.entries.find((entry) => entry.path === '.')
        await finishDestination(shell, options.host, volume.Mountpoint, root?.mtime, signal)
        return {
          files: checked.entries.length,
          stopped: stopped.map((user) => containerName(user)),
          verified: true,
        }
      },
    )
  } finally {
    if (spooled) await rm(spooled, {force: true, recursive: true})
  }
}
