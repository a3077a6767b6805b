import {ArchiveError, type ArchiveErrorCode} from '@transship/kit/archive'
import {decodeTarName, type TarEntry, TarFramer} from '@transship/kit/tar'
import {addAbortSignal, Readable, Transform, type TransformCallback} from 'node:stream'

import type {ManifestEntry, ManifestEntryType, ManifestTotals, VolumeManifest} from './types.js'

import {ContentDigest} from './content-digest.js'

export type * from './types.js'

/**
 * What the headers of an entry said, before it became a manifest path: for checking an archive that is not
 * trusted (every name it could be extracted under, what it declares), as `onEntry` gets it.
 */
export interface RawEntry {
  /** bytes of data the entry declares (a directory's are skipped whatever it says) */
  declaredSize: number
  /** the global pax records in force (`g` headers) */
  globalPax?: ReadonlyMap<string, Buffer>
  /**
   * every target a link is given (pax linkpath, GNU long link, the header's field), decoded as names are; the
   * one the manifest uses first
   */
  links: string[]
  /** a single zero block came before this entry: GNU tar stops reading there (`A lone zero block`) */
  loneZeroBlockBefore: boolean
  /**
   * every name the entry is given (GNU.sparse.name, pax path, GNU long name, the ustar prefix and name), decoded
   * as ManifestEntry names are, before any normalising; the one the manifest uses first
   */
  names: string[]
  /** the entry's own pax records */
  pax?: ReadonlyMap<string, Buffer>
  /** the header's type flag */
  typeflag: string
}

export interface ManifestOptions {
  /** names the stream in error messages (default 'the tar stream') */
  label?: string
  /**
   * called for each entry once its headers are read, before its data; what it throws ends the reading (and,
   * for manifestTap, stops the stream before any byte of that entry's header is passed on)
   */
  onEntry?: (entry: ManifestEntry, raw: RawEntry) => void
}

/**
 * The manifest of a tar stream, as GNU tar writes it for a volume (`--xattrs --acls --sparse --numeric-owner
 * --format=posix`). The content is hashed as it streams: memory stays small whatever the size of the files
 * (a sparse file's map is kept, its holes are hashed from a shared buffer of zeros).
 *
 * A damaged stream is an ArchiveError ARCHIVE_CORRUPT; one that ends in the middle of an entry or without the
 * end-of-archive marker is ARCHIVE_TRUNCATED; entries transship cannot describe (GNU sparse 0.0, old GNU
 * sparse, multi-volume, incremental dumps) are ARCHIVE_UNSUPPORTED. An abort rejects with the signal's reason
 * (a Readable input is destroyed at once; another async iterable is checked between chunks).
 */
export async function manifestOfTar(
  input: AsyncIterable<Buffer | string | Uint8Array> | NodeJS.ReadableStream | Readable,
  options: ManifestOptions & {signal?: AbortSignal} = {},
): Promise<VolumeManifest> {
  const {signal} = options
  signal?.throwIfAborted()
  if (signal && input instanceof Readable) addAbortSignal(signal, input)
  const builder = new ManifestBuilder(options)
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string | Uint8Array>) {
      signal?.throwIfAborted()
      builder.write(
        typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk),
      )
    }
  } catch (error) {
    if (signal?.aborted) throw signal.reason
    throw error
  }

  return builder.end()
}

/**
 * A pass-through for a tar stream on its way elsewhere (the source volume's tar piped to the destination):
 * `stream` forwards every byte unchanged, with backpressure, and `manifest` settles when it ends. A damaged or
 * truncated tar errors both (the copy should not go on); a stream destroyed before its end rejects `manifest`.
 * `manifest` never causes an unhandled rejection on its own: await it, or watch the stream.
 */
export function manifestTap(options: ManifestOptions = {}): {manifest: Promise<VolumeManifest>; stream: Transform} {
  const builder = new ManifestBuilder(options)
  let settled = false
  let resolve!: (manifest: VolumeManifest) => void
  let reject!: (error: unknown) => void
  const manifest = new Promise<VolumeManifest>((ok, fail) => {
    resolve = (value) => {
      settled = true
      ok(value)
    }

    reject = (error) => {
      settled = true
      fail(error)
    }
  })
  manifest.catch(() => {
    // marked as handled: the stream carries the same error
  })
  const stream = new Transform({
    destroy(error, callback) {
      if (!settled) {
        reject(
          error ??
            new ArchiveError('ARCHIVE_TRUNCATED', `${builder.label} was closed before its end`, {
              details: {stream: builder.label},
            }),
        )
      }

      callback(error)
    },
    flush(callback: TransformCallback) {
      try {
        resolve(builder.end())
        callback()
      } catch (error) {
        reject(error)
        callback(error as Error)
      }
    },
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      try {
        builder.write(chunk)
      } catch (error) {
        reject(error)
        callback(error as Error)
        return
      }

      callback(null, chunk)
    },
  })
  return {manifest, stream}
}

const SCHILY_XATTR = 'SCHILY.xattr.'
const ACL_RECORDS: Record<string, string> = {'SCHILY.acl.access': 'acl.access', 'SCHILY.acl.default': 'acl.default'}

const TYPES: Record<string, ManifestEntryType> = {
  '\0': 'file',
  '0': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
  '7': 'file',
}

const UNSUPPORTED_TYPES: Record<string, string> = {
  D: 'a GNU dump directory (--listed-incremental)',
  M: 'a continuation of a multi-volume archive',
  S: 'an old GNU sparse file (write it with --format=posix)',
  V: 'a volume label',
}

/** A push parser of a tar stream: write() the bytes as they come, end() for the manifest. Synchronous. */
class ManifestBuilder {
  readonly label: string
  /** digests the current file's logical content */
  private digest: ContentDigest | undefined
  private readonly entries: ManifestEntry[] = []
  private readonly framer: TarFramer

  constructor(private readonly options: ManifestOptions) {
    this.label = options.label ?? 'the tar stream'
    this.framer = new TarFramer(
      {
        data: (chunk) => this.digest?.data(chunk),
        end: () => {
          if (this.digest) this.entries.at(-1)!.digest = this.digest.end()
          this.digest = undefined
        },
        entry: (framed) => this.entry(framed),
        hole: (length) => this.digest?.zeros(length),
      },
      {
        details: {stream: this.label},
        label: this.label,
        suggestions: {
          ARCHIVE_CORRUPT: [GNU_TAR],
          ARCHIVE_TRUNCATED: ['the tar stream was cut short: did tar or the connection fail?'],
          ARCHIVE_UNSUPPORTED: [GNU_TAR],
        },
      },
    )
  }

  end(): VolumeManifest {
    this.framer.end()
    return {entries: this.entries, totals: totalsOf(this.entries)}
  }

  write(chunk: Buffer): void {
    let offset = 0
    while (offset < chunk.length) offset = this.framer.write(chunk, offset)
  }

  private entry(framed: TarEntry): void {
    const entryPath = normalise(decodeName(framed.name))
    const type = TYPES[framed.typeflag]
    if (!type || framed.sparse?.format === 'old') {
      const what = UNSUPPORTED_TYPES[framed.typeflag] ?? `of the unknown type '${framed.typeflag}'`
      throw this.error('ARCHIVE_UNSUPPORTED', `entry ${JSON.stringify(entryPath)} is ${what}`)
    }

    const entry: ManifestEntry = {
      path: entryPath,
      type,
      size: type === 'file' ? (framed.sparse?.realSize ?? framed.dataSize) : 0,
      // eslint-disable-next-line no-bitwise -- the permission bits
      mode: framed.mode & 0o7777,
      uid: framed.uid,
      gid: framed.gid,
      mtime: framed.mtime,
      xattrs: xattrsOf(framed.pax),
    }
    this.typeFields(entry, framed)
    this.options.onEntry?.(entry, {
      declaredSize: framed.declaredSize,
      globalPax: framed.globalPax,
      links: framed.links.map((item) => decodeName(item)),
      loneZeroBlockBefore: framed.loneZeroBlockBefore,
      names: framed.names.map((item) => decodeName(item)),
      pax: framed.localPax,
      typeflag: framed.typeflag,
    })
    this.entries.push(entry)
  }

  private error(code: ArchiveErrorCode, problem: string): ArchiveError {
    const what = {ARCHIVE_CORRUPT: 'is damaged', ARCHIVE_TRUNCATED: 'is truncated'}[code as string] ?? 'cannot be read'
    return new ArchiveError(code, `${this.label} ${what}: ${problem}`, {
      details: {stream: this.label},
      suggestions: [GNU_TAR],
    })
  }

  /** Adds the fields of the entry's type, and the digest of a file's content. */
  private typeFields(entry: ManifestEntry, framed: TarEntry): void {
    switch (entry.type) {
      case 'block':
      case 'char': {
        entry.devmajor = framed.devmajor
        entry.devminor = framed.devminor
        break
      }

      case 'file': {
        if (framed.sparse) entry.sparse = true
        this.digest = new ContentDigest()
        break
      }

      case 'hardlink': {
        entry.hardlinkOf = normalise(decodeName(framed.linkname))
        break
      }

      case 'symlink': {
        entry.linkTarget = decodeName(framed.linkname)
        break
      }

      default:
    }
  }
}

const GNU_TAR = 'the volume tar stream should come from GNU tar (--format=posix)'

/** `name` as a manifest path: no leading `./` or `/`, no empty or `.` parts, no trailing `/`; `.` for the root. */
export function normalise(name: string): string {
  return (
    name
      .split('/')
      .filter((part) => part !== '' && part !== '.')
      .join('/') || '.'
  )
}

/** The raw bytes of a name as a string: itself when valid UTF-8, else with each bad byte escaped as `\xNN`. */
export const decodeName = decodeTarName

/**
 * The raw bytes of a manifest name (the inverse of decodeName): each `\xNN` escape of a byte 80 to FF becomes
 * that byte again. Only those can be escapes (a byte below 80 is always valid UTF-8); a valid name spelling a
 * literal `\xE9` is the one name it gets wrong.
 */
export function rawPath(name: string): Buffer {
  if (!name.includes(String.raw`\x`)) return Buffer.from(name)
  // split with a capture group: text, hex, text, hex, …, text
  const parts = name.split(/\\x([89A-F][\dA-F])/)
  return Buffer.concat(
    parts.map((part, index) => (index % 2 === 1 ? Buffer.from([Number.parseInt(part, 16)]) : Buffer.from(part))),
  )
}

/** Extended attributes (SCHILY.xattr.*) and ACLs (SCHILY.acl.*) of the pax records, base64, sorted by name. */
function xattrsOf(pax: ReadonlyMap<string, Buffer> | undefined): Record<string, string> {
  const xattrs: Array<[string, string]> = []
  for (const [key, value] of pax ?? []) {
    if (key.startsWith(SCHILY_XATTR)) xattrs.push([key.slice(SCHILY_XATTR.length), value.toString('base64')])
    else if (ACL_RECORDS[key]) xattrs.push([ACL_RECORDS[key], value.toString('base64')])
  }

  return Object.fromEntries(xattrs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

export function totalsOf(entries: ManifestEntry[]): ManifestTotals {
  const totals: ManifestTotals = {
    bytes: 0,
    directories: 0,
    entries: entries.length,
    files: 0,
    hardlinks: 0,
    others: 0,
    sparseFiles: 0,
    symlinks: 0,
  }
  for (const entry of entries) {
    switch (entry.type) {
      case 'directory': {
        totals.directories++
        break
      }

      case 'file': {
        totals.files++
        totals.bytes += entry.size
        if (entry.sparse) totals.sparseFiles++
        break
      }

      case 'hardlink': {
        totals.hardlinks++
        break
      }

      case 'symlink': {
        totals.symlinks++
        break
      }

      default: {
        totals.others++
      }
    }
  }

  return totals
}
