/**
 * Volume archives: `volume export` writes the host tar's stream to a file (compressed by the file name's
 * suffix); `volume import` checks an archive whole before anything is written (every path stays inside the
 * volume, nothing is reached through a symbolic link, the tar is complete), then extracts it with the
 * destination's GNU tar and compares what landed with the archive, file by file.
 */
import type {Hosts, Logger} from '@transship/kit'

import {ArchiveError, compressor, decompressed, ExitCode, shellQuote, TransshipError, UsageError} from '@transship/kit'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdtemp, rename, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {type Readable, type Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import tar from 'tar-stream'

import {INCOMPLETE_MARKER, readVolumeManifest} from './copy.js'
import {compareManifests, formatDifferences} from './manifest/compare.js'
import {manifestTap} from './manifest/tar-manifest.js'
import {createVolumeLike, inspectVolume, requireVolume} from './volume-store.js'
import {readTar, requireGnuTar, TAR_FILE_CHANGED, tarEnd, writeTar} from './volume-tar.js'

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
  const engine = await options.hosts.engine(options.host, signal)
  const volume = await requireVolume(engine, options.name, signal)
  const end = await tarEnd(options.hosts, options.host, signal)
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

function unsafe(file: string, entry: string, why: string): ArchiveError {
  return new ArchiveError('ARCHIVE_CORRUPT', `${file}: entry ${JSON.stringify(entry)} ${why}: nothing was written`, {
    details: {entry, file},
    suggestions: ['make the archive with `transship volume export`, or `tar -C DIR -cf FILE .` from inside the data'],
  })
}

/** Reads the whole archive: every path relative and inside, no entry under a symbolic link, complete. */
export async function checkVolumeArchive(file: string, signal?: AbortSignal): Promise<void> {
  const {stream} = await decompressed(createReadStream(file))
  const extract = tar.extract()
  const symlinks = new Set<string>()
  const run = pipeline(stream as Readable, extract as unknown as NodeJS.WritableStream, {signal})
  for await (const entry of extract as unknown as AsyncIterable<{header: tar.Header; resume(): void}>) {
    const {name, linkname, type} = entry.header
    const parts = name.split('/').filter((part) => part !== '' && part !== '.')
    if (name.startsWith('/')) throw unsafe(file, name, 'has an absolute path')
    if (parts.includes('..')) throw unsafe(file, name, 'climbs out of the volume (..)')
    for (let i = 1; i < parts.length; i++) {
      if (symlinks.has(parts.slice(0, i).join('/'))) throw unsafe(file, name, 'is reached through a symbolic link')
    }

    if (type === 'link' && linkname && (linkname.startsWith('/') || linkname.split('/').includes('..'))) {
      throw unsafe(file, name, `is a hard link to ${linkname}, outside the volume`)
    }

    if (type === 'symlink') symlinks.add(parts.join('/'))
    entry.resume()
  }

  await run
}

export async function importVolume(
  options: {
    file: string
    host: string
    hosts: Hosts
    log: Logger
    mode?: 'create' | 'replace'
    name: string
    stdin?: Readable
  },
  signal: AbortSignal,
): Promise<{files: number; verified: boolean}> {
  let {file} = options
  let spooled: string | undefined
  if (file === '-') {
    spooled = await mkdtemp(path.join(os.tmpdir(), 'transship-volume-'))
    file = path.join(spooled, 'stdin.tar')
    await pipeline(options.stdin ?? process.stdin, createWriteStream(file), {signal})
  }

  try {
    await checkVolumeArchive(file, signal)
    const engine = await options.hosts.engine(options.host, signal)
    const end = await tarEnd(options.hosts, options.host, signal)
    const {shell} = end
    await requireGnuTar(shell, options.host, signal)
    let volume = await inspectVolume(engine, options.name, signal)
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
    }

    volume ??= await createVolumeLike(
      engine,
      options.name,
      {Driver: 'local', Labels: {}, Mountpoint: '', Name: options.name, Options: {}},
      signal,
    )
    const mountpoint = shellQuote(volume.Mountpoint)
    await shell.run(`touch ${mountpoint}/${INCOMPLETE_MARKER}`, {signal})
    if (options.mode === 'replace') {
      await shell.run(
        `find ${mountpoint} -mindepth 1 -maxdepth 1 ! -name ${shellQuote(INCOMPLETE_MARKER)} -exec rm -rf -- {} +`,
        {signal},
      )
    }

    const writer = writeTar(end, volume.Mountpoint, {signal})
    const tap = manifestTap()
    const {stream} = await decompressed(createReadStream(file))
    await pipeline(stream as Readable, tap.stream, writer.stdin, {signal})
    const wrote = await writer.exit
    if (wrote.code !== 0) {
      throw new TransshipError(
        'VOLUME_WRITE_FAILED',
        ExitCode.Failed,
        `${options.host}: tar failed writing ${options.name}: ${wrote.stderr.trim()}`,
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
    await shell.run(
      `rm -f ${mountpoint}/${INCOMPLETE_MARKER}${root ? ` && touch -m -d @${root.mtime} ${mountpoint}` : ''}`,
      {signal},
    )
    return {files: expected.entries.length, verified: true}
  } finally {
    if (spooled) await rm(spooled, {force: true, recursive: true})
  }
}
