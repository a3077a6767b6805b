/**
 * The layer tar of a rootfs, written the one way transship writes it: ustar headers with numeric owners and
 * empty user/group names, whole-second mtimes and no atime/ctime, directories with a trailing `/`, and a PAX
 * header only where ustar cannot say something (a long or non-ASCII path or link target, an xattr, an owner
 * above ustar's range). Xattrs travel as `SCHILY.xattr.NAME` records with their raw bytes, as GNU tar and
 * Docker write them, so binary values such as `security.capability` survive.
 *
 * The size of the tar is known before any content is read (measureLayer), because a docker-archive needs
 * the layer's size in the header that precedes it; writeLayer checks that every file still has that size.
 * The headers are encoded here rather than by tar-stream's packer, which can neither write a PAX record
 * with binary bytes nor a mode of 0.
 */
import {UsageError} from '@transship/kit'
import {encodePaxRecord, encodeTarHeader, TAR_BLOCK} from '@transship/kit/tar'
import {Readable} from 'node:stream'

import type {RootfsEntry} from '../source/entry.js'

/** ustar's numeric fields: 7 octal digits for ids, 11 for the size */
const MAX_ID = 0o777_7777
const MAX_SIZE = 0o777_7777_7777

export interface LayerMeasure {
  /** entries written */
  entries: number
  /** newest mtime among the entries, seconds (undefined for an empty rootfs) */
  newestMtime: number | undefined
  /** exact bytes of the tar */
  size: number
}

const TYPEFLAGS: Record<'pax-header' | RootfsEntry['type'], string> = {
  'block-device': '4',
  'character-device': '3',
  directory: '5',
  fifo: '6',
  file: '0',
  link: '1',
  'pax-header': 'x',
  symlink: '2',
}

interface HeaderFields {
  devmajor: number
  devminor: number
  gid: number
  linkname: string
  mode: number
  mtime: number
  name: string
  size: number
  type: keyof typeof TYPEFLAGS
  uid: number
}

interface EncodedEntry {
  header: Buffer
  pax: Buffer | undefined
}

function padded(size: number): number {
  return Math.ceil(size / TAR_BLOCK) * TAR_BLOCK
}

function isPlainAscii(value: string): boolean {
  // printable ASCII only: anything else goes into a PAX record, which is UTF-8 by definition
  return /^[\u0020-\u007E]*$/.test(value)
}

/** Where ustar can hold `name`: whole (≤100 bytes) or split at a `/` into a prefix (≤155) and a name (≤100). */
function ustarSplit(name: string): [prefix: string, name: string] | undefined {
  if (!isPlainAscii(name)) return undefined
  if (name.length <= 100) return ['', name]
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    if (i <= 155 && name.length - i - 1 <= 100) return [name.slice(0, i), name.slice(i + 1)]
  }

  return undefined
}

/** A ustar header block. Fields must already fit (encode() moves what does not into PAX records). */
function ustarHeader(fields: HeaderFields): Buffer {
  const [prefix, name] = ustarSplit(fields.name) ?? ['', fields.name.slice(0, 100)]
  return encodeTarHeader({...fields, mode: fields.mode % 0o1_0000, name, prefix, typeflag: TYPEFLAGS[fields.type]})
}

function sanitised(value: string, keep: 'end' | 'start'): string {
  const ascii = value.replaceAll(/[^\u0020-\u007E]/g, '_')
  return keep === 'end' ? ascii.slice(-80) : ascii.slice(0, 100)
}

/** The header block (and PAX records, if any) for an entry. */
function encode(entry: RootfsEntry): EncodedEntry {
  const name = entry.type === 'directory' ? `${entry.path}/` : entry.path
  const records: Buffer[] = []
  let headerName = name
  let linkname = entry.linkname ?? ''
  if (!ustarSplit(name)) {
    records.push(encodePaxRecord('path', Buffer.from(name)))
    // the ustar field is only a fallback for readers without PAX: keep it recognisable and in range
    headerName = `PaxHeaders/${sanitised(name, 'end')}`
  }

  if (!(isPlainAscii(linkname) && linkname.length <= 100)) {
    records.push(encodePaxRecord('linkpath', Buffer.from(linkname)))
    linkname = sanitised(linkname, 'start')
  }

  if (entry.uid > MAX_ID) records.push(encodePaxRecord('uid', Buffer.from(String(entry.uid))))
  if (entry.gid > MAX_ID) records.push(encodePaxRecord('gid', Buffer.from(String(entry.gid))))
  const size = entry.type === 'file' ? entry.size : 0
  if (size > MAX_SIZE) records.push(encodePaxRecord('size', Buffer.from(String(size))))
  for (const [key, value] of entry.xattrs) records.push(encodePaxRecord(`SCHILY.xattr.${key}`, value))

  const header = ustarHeader({
    devmajor: entry.devmajor ?? 0,
    devminor: entry.devminor ?? 0,
    gid: Math.min(entry.gid, MAX_ID),
    linkname,
    mode: entry.mode,
    mtime: entry.mtime,
    name: headerName,
    size: Math.min(size, MAX_SIZE),
    type: entry.type,
    uid: Math.min(entry.uid, MAX_ID),
  })
  if (records.length === 0) return {header, pax: undefined}
  const pax = Buffer.concat(records)
  const paxHeader = ustarHeader({
    devmajor: 0,
    devminor: 0,
    gid: 0,
    linkname: '',
    mode: 0o644,
    mtime: entry.mtime,
    name: `PaxHeaders/${sanitised(entry.path, 'end')}`,
    size: pax.length,
    type: 'pax-header',
    uid: 0,
  })
  return {header, pax: Buffer.concat([paxHeader, pax, Buffer.alloc(padded(pax.length) - pax.length)])}
}

/** The bytes one entry takes in the tar: its PAX block, its header and its padded content. */
function entryBytes(entry: RootfsEntry): number {
  const {header, pax} = encode(entry)
  return (pax?.length ?? 0) + header.length + (entry.type === 'file' ? padded(entry.size) : 0)
}

/** The exact size of the layer tar of `entries` (ended by two zero blocks), reading no content. */
export async function measureLayer(entries: AsyncIterable<RootfsEntry>): Promise<LayerMeasure> {
  let size = 2 * TAR_BLOCK
  let count = 0
  let newestMtime: number | undefined
  for await (const entry of entries) {
    size += entryBytes(entry)
    count++
    newestMtime = newestMtime === undefined ? entry.mtime : Math.max(newestMtime, entry.mtime)
  }

  return {entries: count, newestMtime, size}
}

function fileChanged(entry: RootfsEntry, read: number): UsageError {
  return new UsageError(
    `${entry.path} changed while it was packed (${entry.size} bytes when listed, ${read} when read)`,
    {
      code: 'ROOTFS_CHANGED',
      details: {path: entry.path},
      suggestions: ['build from a rootfs that nothing else writes to while transship packs it'],
    },
  )
}

/** Output is gathered into chunks of about this size: thousands of small entries, few pipeline hops. */
const CHUNK = 256 * 1024

async function* layerChunks(entries: AsyncIterable<RootfsEntry>, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let pending: Buffer[] = []
  let pendingBytes = 0
  const add = (chunk: Buffer) => {
    pending.push(chunk)
    pendingBytes += chunk.length
  }

  const take = (): Buffer => {
    const chunk = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes)
    pending = []
    pendingBytes = 0
    return chunk
  }

  for await (const entry of entries) {
    signal?.throwIfAborted()
    const {header, pax} = encode(entry)
    if (pax) add(pax)
    add(header)
    if (entry.type === 'file' && entry.size > 0) {
      if (entry.readAll) {
        const content = entry.readAll()
        if (content.length !== entry.size) throw fileChanged(entry, content.length)
        add(content)
      } else {
        if (!entry.open) throw new Error(`${entry.path}: a regular file without content`)
        if (pendingBytes > 0) yield take()
        let read = 0
        for await (const chunk of entry.open() as AsyncIterable<Buffer>) {
          read += chunk.length
          if (read > entry.size) throw fileChanged(entry, read)
          yield chunk
        }

        if (read !== entry.size) throw fileChanged(entry, read)
      }

      const padding = padded(entry.size) - entry.size
      if (padding > 0) add(Buffer.alloc(padding))
    }

    if (pendingBytes >= CHUNK) yield take()
  }

  add(Buffer.alloc(2 * TAR_BLOCK))
  yield take()
}

/**
 * The layer tar of `entries`, streamed with backpressure (an entry is read when the consumer wants more).
 * The stream fails with the first error: a file that changed size, an unreadable file, an abort.
 */
export function writeLayer(entries: AsyncIterable<RootfsEntry>, signal?: AbortSignal): Readable {
  return Readable.from(layerChunks(entries, signal), {objectMode: false})
}
