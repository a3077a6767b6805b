import {UsageError} from '@transship/kit'
import {COMPRESSION_MAGIC_LENGTH, detectCompression, requireCompressor} from '@transship/kit/archive'
import {readTar, type TarEntry, type TarEntryType} from '@transship/kit/tar'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdtemp, open, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {EntryType, RootfsEntry, RootfsSource} from './entry.js'

/**
 * Codes of the errors that refuse a tarball for its content (a damaged or cut tarball is an ArchiveError:
 * ARCHIVE_CORRUPT or ARCHIVE_TRUNCATED). All exit with 2.
 */
export const TarballErrorCode = {
  /** an entry (or a hard link's target) would land outside the root: `..` climbing above it */
  Unsafe: 'ROOTFS_TARBALL_UNSAFE',
  /** not a valid base rootfs: a duplicate path, a whiteout, an unsupported entry type, a dangling hard link */
  Invalid: 'ROOTFS_TARBALL_INVALID',
} as const

export interface TarballSourceOptions {
  /** what `-` reads (default process.stdin) */
  stdin?: Readable
  /** where `-` (or a pipe given by name) is spooled (default os.tmpdir()) */
  tmpDir?: string
  /** cancels the spooling of stdin */
  signal?: AbortSignal
}

/** A RootfsSource over a tarball; dispose it (`await using`, or close()) to remove the spooled copy of stdin. */
export interface TarballSource extends AsyncDisposable, RootfsSource {
  /** removes the spooled copy of stdin, if any (idempotent) */
  close(): Promise<void>
}

/**
 * A rootfs from a tarball: uncompressed, gzip, zstd, bzip2 or xz (by its first bytes). `entries()` re-opens the
 * file on each pass. `-` is stdin, which can be read only once: it is spooled (as it comes, still compressed) to
 * a temporary file in `tmpDir` or os.tmpdir(), removed by close() / dispose; a FIFO named as `file` is spooled
 * the same way.
 *
 * Each entry's open() returns its content only during its iteration step and only once (tar is read
 * sequentially): an entry the consumer does not open, or leaves half read, is skipped when the next is asked for.
 *
 * Refused, with the entry named: a path climbing above the root (ROOTFS_TARBALL_UNSAFE); duplicate paths
 * (OCI forbids them in a layer), whiteouts, hard links to an entry not written before, entry types other than
 * file, directory, symlink, hard link, devices and fifo (ROOTFS_TARBALL_INVALID); a damaged or cut tarball
 * (ArchiveError ARCHIVE_CORRUPT / ARCHIVE_TRUNCATED, also when the end-of-archive marker is missing).
 */
export async function openTarballSource(file: string, options: TarballSourceOptions = {}): Promise<TarballSource> {
  const {signal} = options
  const label = file === '-' ? 'stdin' : file
  let spoolDir: string | undefined
  let tarball = file
  if (file === '-') {
    const stdin = options.stdin ?? process.stdin
    if (stdin === process.stdin && process.stdin.isTTY) {
      throw new UsageError('the rootfs tarball should come from stdin (-), but stdin is a terminal', {
        suggestions: ['pipe it in: `… | transship … -`, or give the file name'],
      })
    }

    spoolDir = await spool(stdin, options.tmpDir, signal, label)
    tarball = path.join(spoolDir, 'rootfs.tar')
  } else {
    const info = await stat(file).catch((error: unknown) => {
      throw fileError(error, file)
    })
    if (info.isDirectory()) {
      throw new UsageError(`${file} is a directory, not a rootfs tarball`, {
        code: 'FILE_WRONG_TYPE',
        suggestions: ['give a tar archive (uncompressed, gzip, zstd, bzip2 or xz), or use a directory rootfs source'],
      })
    }

    // a pipe (`<(…)`, /dev/stdin) can be read once only, and entries() reads the tarball more than once
    if (!info.isFile()) {
      spoolDir = await spool(createReadStream(file), options.tmpDir, signal, label)
      tarball = path.join(spoolDir, 'rootfs.tar')
    }
  }

  const close = async () => {
    const dir = spoolDir
    spoolDir = undefined
    if (dir) await rm(dir, {force: true, recursive: true})
  }

  try {
    await requireCompressor(detectCompression(await readHead(tarball, label)))
  } catch (error) {
    await close()
    throw error
  }

  return {
    async [Symbol.asyncDispose]() {
      await close()
    },
    close,
    description: file === '-' ? 'tarball (stdin)' : `tarball ${path.basename(file)}`,
    entries: (entriesSignal?: AbortSignal) => tarEntries(tarball, label, entriesSignal),
    async epochHint() {
      // a tarball says nothing about when it was made besides its mtimes: the builder uses the newest one
      // eslint-disable-next-line unicorn/no-useless-undefined -- "no hint", explicitly
      return undefined
    },
  }
}

async function spool(input: Readable, tmpDir: string | undefined, signal: AbortSignal | undefined, label: string) {
  const dir = await mkdtemp(path.join(tmpDir ?? os.tmpdir(), 'transship-rootfs-'))
  try {
    await pipeline(input, createWriteStream(path.join(dir, 'rootfs.tar'), {flags: 'wx', mode: 0o600}), {signal})
    return dir
  } catch (error) {
    await rm(dir, {force: true, recursive: true})
    if (signal?.aborted) throw signal.reason
    throw fileError(error, label)
  }
}

async function readHead(file: string, label: string): Promise<Buffer> {
  const handle = await open(file, 'r').catch((error: unknown) => {
    throw fileError(error, label)
  })
  try {
    const head = Buffer.alloc(COMPRESSION_MAGIC_LENGTH)
    const {bytesRead} = await handle.read(head, 0, head.length, 0)
    return head.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

function fileError(error: unknown, label: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new UsageError(`${label} does not exist`, {cause: error, code: 'FILE_NOT_FOUND'})
  }

  if (code === 'EACCES' || code === 'EPERM') {
    return new UsageError(`${label} cannot be read: permission denied`, {cause: error, code: 'FILE_UNREADABLE'})
  }

  if (code === 'EISDIR') {
    return new UsageError(`${label} is a directory, not a rootfs tarball`, {cause: error, code: 'FILE_WRONG_TYPE'})
  }

  return error
}

/**
 * One pass over the tarball.
 *
 * @yields its entries, in tar order
 */
async function* tarEntries(file: string, label: string, signal?: AbortSignal): AsyncGenerator<RootfsEntry> {
  signal?.throwIfAborted()
  const entries = readTar(createReadStream(file), {
    decompress: true,
    decompressed: true,
    details: {file: label},
    label,
    signal,
    suggestions: {
      ARCHIVE_CORRUPT: ['get or write the tarball again'],
      ARCHIVE_TRUNCATED: ['the tarball was cut short (an interrupted download or copy?): get or write it again'],
    },
  })
  const seen = new Map<string, EntryType>()
  try {
    for await (const {entry: framed, open: openData} of entries) {
      const entry = toEntry(framed, label, seen)
      if (!entry) continue
      if (entry.type === 'file') entry.open = openData
      yield entry
    }
  } catch (error) {
    throw fileError(error, label)
  }
}

/** Builds the RootfsEntry of a tar entry, or undefined for the root directory; refuses what is unsafe. */
function toEntry(framed: TarEntry, label: string, seen: Map<string, EntryType>): RootfsEntry | undefined {
  const name = framed.name.toString('utf8')
  const type = entryType(framed.type, framed.typeflag, name, label)
  const entryPath = normalise(name, name, label)
  if (entryPath === '') {
    if (type === 'directory') return undefined
    throw invalid(label, name, 'names the root directory but is not a directory')
  }

  if (entryPath.split('/').some((part) => part.startsWith('.wh.'))) {
    throw invalid(label, name, 'is a whiteout (a layer of an image, not a root filesystem)', [
      'give the tarball of a whole root filesystem (e.g. `docker export` of a container), not an image layer',
    ])
  }

  if (seen.has(entryPath)) throw invalid(label, name, `repeats the path ${entryPath}, which an OCI layer may hold once`)
  if (framed.sparse || (framed.pax && [...framed.pax.keys()].some((key) => key.startsWith('GNU.sparse.')))) {
    throw invalid(label, name, 'is a sparse file, which is not supported', ['write the tarball without --sparse (-S)'])
  }

  const entry: RootfsEntry = {
    gid: framed.gid,
    // eslint-disable-next-line no-bitwise -- the permission bits
    mode: framed.mode & 0o7777,
    // pax mtimes have a fraction (`1700000000.123456789`): whole seconds, rounded down
    mtime: Math.floor(Number(framed.mtime)),
    path: entryPath,
    size: type === 'file' ? framed.declaredSize : 0,
    type,
    uid: framed.uid,
    xattrs: xattrsOf(framed.pax),
  }
  addTypeFields(entry, framed, label, name, seen)
  seen.set(entryPath, type)
  return entry
}

/** The link target or device numbers of `entry`. */
function addTypeFields(
  entry: RootfsEntry,
  framed: TarEntry,
  label: string,
  name: string,
  seen: Map<string, EntryType>,
): void {
  switch (entry.type) {
    case 'block-device':
    case 'character-device': {
      entry.devmajor = framed.devmajor || 0
      entry.devminor = framed.devminor || 0
      break
    }

    case 'link': {
      const target = normalise(framed.linkname.toString('utf8'), name, label)
      const targetType = seen.get(target)
      if (targetType === undefined) {
        throw invalid(label, name, `is a hard link to ${target || '/'}, which the tarball does not hold before it`)
      }

      if (targetType === 'directory') throw invalid(label, name, `is a hard link to the directory ${target}`)
      entry.linkname = target
      break
    }

    case 'symlink': {
      // stored as it is: an absolute or `../` target is legal in a rootfs, as it resolves inside the container
      // (the layer writer never follows it)
      entry.linkname = framed.linkname.toString('utf8')
      break
    }

    default:
  }
}

function entryType(type: TarEntryType | undefined, flag: string, name: string, label: string): EntryType {
  switch (type) {
    case 'contiguous-file':
    case 'file': {
      return 'file'
    }

    case 'block-device':
    case 'character-device':
    case 'directory':
    case 'fifo':
    case 'link':
    case 'symlink': {
      return type
    }

    default: {
      const what = TYPEFLAGS[flag] ?? `of the unknown type '${flag}'`
      throw invalid(label, name, `is ${what}, which a root filesystem cannot hold`)
    }
  }
}

const TYPEFLAGS: Record<string, string> = {
  A: 'a Solaris ACL',
  D: 'a GNU dump directory (--listed-incremental)',
  E: 'a Solaris extended attribute',
  I: 'an inode metadata entry',
  M: 'a continuation of a multi-volume archive',
  V: 'a volume label',
  X: 'an extended header of Solaris',
}

/**
 * `name` as a RootfsEntry path: leading `./` and `/` dropped, `//` and `.` collapsed, `a/../b` resolved;
 * '' for the root. A `..` that climbs above the root refuses the tarball (`entry` names it).
 */
function normalise(name: string, entry: string, label: string): string {
  const parts: string[] = []
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (parts.length === 0) {
        throw new UsageError(
          `${label}: entry ${JSON.stringify(entry)} climbs out of the root filesystem (${JSON.stringify(name)})`,
          {
            code: TarballErrorCode.Unsafe,
            details: {entry, file: label},
            suggestions: [
              'the tarball may be malicious: write it again from the root of the filesystem (`tar -C DIR .`)',
            ],
          },
        )
      }

      parts.pop()
      continue
    }

    parts.push(part)
  }

  return parts.join('/')
}

function invalid(label: string, entry: string, problem: string, suggestions?: string[]): UsageError {
  return new UsageError(`${label}: entry ${JSON.stringify(entry)} ${problem}`, {
    code: TarballErrorCode.Invalid,
    details: {entry, file: label},
    suggestions: suggestions ?? ['fix the tarball, or build the rootfs from a directory instead'],
  })
}

const SCHILY_XATTR = 'SCHILY.xattr.'
const LIBARCHIVE_XATTR = 'LIBARCHIVE.xattr.'

/** Extended attributes from the pax records: GNU tar's and star's SCHILY.xattr, else bsdtar's LIBARCHIVE.xattr. */
function xattrsOf(pax: ReadonlyMap<string, Buffer> | undefined): Map<string, Buffer> {
  const xattrs = new Map<string, Buffer>()
  if (!pax) return xattrs
  for (const [key, value] of pax) {
    if (key.startsWith(SCHILY_XATTR)) xattrs.set(key.slice(SCHILY_XATTR.length), value)
  }

  for (const [key, value] of pax) {
    if (!key.startsWith(LIBARCHIVE_XATTR)) continue
    // bsdtar writes both: the name URL-encoded, the value base64
    const name = decodeURIComponent(key.slice(LIBARCHIVE_XATTR.length))
    if (!xattrs.has(name)) xattrs.set(name, Buffer.from(value.toString('latin1'), 'base64'))
  }

  return new Map([...xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}
