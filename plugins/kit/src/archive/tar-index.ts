/**
 * Where each entry's content is in an uncompressed tar file, read from the headers alone (content is
 * skipped with positioned reads), so that any entry can later be streamed on its own and from any offset:
 * what pushing blobs out of an archive, with retries that resume, needs.
 */
import {open} from 'node:fs/promises'

import {ArchiveError} from './errors.js'

export interface TarIndexEntry {
  /** hard link target or symlink target, as stored */
  linkname?: string
  /** byte offset of the content in the file */
  offset: number
  size: number
  /** tar type flag: '0' file, '1' hard link, '2' symlink, '5' directory, ... */
  type: string
}

const BLOCK = 512

function field(header: Buffer, start: number, length: number): string {
  const end = header.indexOf(0, start)
  return header.toString('utf8', start, end === -1 || end > start + length ? start + length : end)
}

function octal(header: Buffer, start: number, length: number): number {
  // base-256 (GNU) for large values: the high bit of the first byte is set
  if (header[start]! >= 0x80) {
    let value = 0
    for (let i = start + 1; i < start + length; i++) value = value * 256 + header[i]!
    return value
  }

  const text = field(header, start, length).trim()
  return text === '' ? 0 : Number.parseInt(text, 8)
}

function parsePax(content: Buffer): Record<string, string> {
  const records: Record<string, string> = {}
  let position = 0
  while (position < content.length) {
    const space = content.indexOf(0x20, position)
    if (space === -1) break
    const length = Number.parseInt(content.toString('ascii', position, space), 10)
    if (!Number.isFinite(length) || length <= 0) break
    const record = content.toString('utf8', space + 1, position + length - 1)
    const equals = record.indexOf('=')
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1)
    position += length
  }

  return records
}

function normalise(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/^\/+/, '')
}

/** Every entry of the tar at `file` by normalised name (no leading `./`; directories keep their trailing `/`). */
export async function indexTarFile(file: string, signal?: AbortSignal): Promise<Map<string, TarIndexEntry>> {
  const entries = new Map<string, TarIndexEntry>()
  const handle = await open(file, 'r')
  try {
    const {size: fileSize} = await handle.stat()
    const header = Buffer.alloc(BLOCK)
    let position = 0
    let pax: Record<string, string> = {}
    let longName: string | undefined
    for (;;) {
      signal?.throwIfAborted()
      const {bytesRead} = await handle.read(header, 0, BLOCK, position)
      if (bytesRead === 0) break
      if (bytesRead < BLOCK) throw truncated(file)
      if (header.every((byte) => byte === 0)) break
      const size = octal(header, 124, 12)
      const type = String.fromCodePoint(header[156] || 0x30)
      const offset = position + BLOCK
      position = offset + Math.ceil(size / BLOCK) * BLOCK
      if (position > fileSize) throw truncated(file)
      if (type === 'x' || type === 'L') {
        const content = Buffer.alloc(size)
        await handle.read(content, 0, size, offset)
        if (type === 'x') pax = parsePax(content)
        else longName = content.toString('utf8').replace(/\0+$/, '')
        continue
      }

      if (type === 'g') continue
      const prefix = field(header, 345, 155)
      const ustarName = prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100)
      const name = normalise(pax.path ?? longName ?? ustarName)
      const linkname = pax.linkpath ?? (field(header, 157, 100) || undefined)
      entries.set(name, {linkname, offset, size: pax.size === undefined ? size : Number(pax.size), type})
      pax = {}
      longName = undefined
    }
  } finally {
    await handle.close()
  }

  return entries
}

function truncated(file: string): ArchiveError {
  return new ArchiveError('ARCHIVE_TRUNCATED', `${file} ends in the middle of an entry: the archive is truncated`, {
    details: {file},
  })
}
