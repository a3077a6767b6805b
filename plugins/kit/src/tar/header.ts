/**
 * The tar header codec: ustar and GNU header fields, octal and base-256 numbers, the checksum, pax records.
 * Values stay raw bytes where tar-stream would decode them as UTF-8, which mangles binary xattr values
 * (security.capability) and names that are not UTF-8.
 */

/** The size of a tar block (headers and data padding). */
export const TAR_BLOCK = 512

/**
 * The most metadata read before one entry: its pax records, GNU long name and link, sparse map (and the global
 * pax records in force). Linux caps one xattr value and the list of xattr names of a file at 64 KiB each and a
 * path at 4 KiB, so what GNU tar writes of a real file stays far below; this bounds the memory a damaged or
 * hostile stream can claim.
 */
export const TAR_METADATA_LIMIT = 16 * 1024 * 1024

/** Padding after `size` bytes of data to the next block boundary. */
export function tarPadding(size: number): number {
  return (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK
}

/** The end of a NUL-terminated field of `length` bytes at `offset` (the field's end when it has no NUL). */
export function tarFieldEnd(buffer: Uint8Array, offset: number, length: number): number {
  const end = Math.min(offset + length, buffer.length)
  const at = buffer.indexOf(0, offset)
  return at === -1 || at > end ? end : at
}

/** An octal header field (spaces and NULs around it allowed); 0 when empty, NaN when not octal. */
export function parseTarOctal(block: Uint8Array, offset: number, length: number): number {
  let start = offset
  let end = offset + length
  while (start < end && (block[start] === 0x20 || block[start] === 0)) start++
  while (end > start && (block[end - 1] === 0x20 || block[end - 1] === 0)) end--
  let value = 0
  for (let i = start; i < end; i++) {
    const digit = block[i]! - 0x30
    if (digit < 0 || digit > 7) return Number.NaN
    value = value * 8 + digit
  }

  return value
}

/** A numeric header field: octal, or GNU's base-256 (first byte 0x80) for values octal cannot hold. */
export function parseTarNumber(block: Uint8Array, offset: number, length: number): number {
  if (block[offset]! === 0x80) {
    let value = 0
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + block[i]!
    return value
  }

  if (block[offset]! >= 0x80) return Number.NaN
  return parseTarOctal(block, offset, length)
}

/** Whether a 512-byte block is all zeros (half of the end-of-archive marker). */
export function isZeroBlock(block: Uint8Array, offset = 0): boolean {
  for (let i = offset; i < offset + TAR_BLOCK; i++) if (block[i] !== 0) return false
  return true
}

/**
 * Whether the header's stored checksum matches its bytes, summed as unsigned bytes (POSIX) or as signed ones
 * (what some old tars wrote; GNU tar accepts both).
 */
export function tarChecksumMatches(block: Uint8Array, offset = 0): boolean {
  let unsigned = 0
  let signed = 0
  for (let i = offset; i < offset + TAR_BLOCK; i++) {
    const byte = i >= offset + 148 && i < offset + 156 ? 0x20 : block[i]!
    unsigned += byte
    signed += byte >= 0x80 ? byte - 0x1_00 : byte
  }

  const stored = parseTarOctal(block, offset + 148, 8)
  return stored === unsigned || stored === signed
}

/** How a header block is laid out: POSIX ustar (with a name prefix), GNU (ustar plus GNU fields) or v7. */
export type TarHeaderFormat = 'gnu' | 'ustar' | 'v7'

/** The fields of one header block, decoded; numbers are NaN where a field does not hold one. */
export interface TarHeader {
  devmajor: number
  devminor: number
  format: TarHeaderFormat
  gid: number
  /** the link target field, raw */
  linkname: Buffer
  mode: number
  mtime: number
  /** the name field, raw, with the ustar prefix and a `/` before it when there is one */
  name: Buffer
  size: number
  /** the type flag as a character ('\0' for an old regular file) */
  typeflag: string
  uid: number
}

/** Decodes the header block at `offset` (its checksum is checked by tarChecksumMatches). */
export function decodeTarHeader(block: Buffer, offset = 0): TarHeader {
  const magic = block.toString('latin1', offset + 257, offset + 263)
  const format: TarHeaderFormat = magic === 'ustar\0' ? 'ustar' : magic === 'ustar ' ? 'gnu' : 'v7'
  let name = copyField(block, offset, 100)
  if (format === 'ustar' && block[offset + 345]) {
    name = Buffer.concat([copyField(block, offset + 345, 155), SLASH, name])
  }

  return {
    devmajor: parseTarNumber(block, offset + 329, 8),
    devminor: parseTarNumber(block, offset + 337, 8),
    format,
    gid: parseTarNumber(block, offset + 116, 8),
    linkname: copyField(block, offset + 157, 100),
    mode: parseTarOctal(block, offset + 100, 8),
    mtime: parseTarNumber(block, offset + 136, 12),
    name,
    size: parseTarNumber(block, offset + 124, 12),
    typeflag: String.fromCodePoint(block[offset + 156]!),
    uid: parseTarNumber(block, offset + 108, 8),
  }
}

const SLASH = Buffer.from('/')

/** A NUL-terminated field, copied: a slice would pin the whole chunk it came from. */
function copyField(block: Buffer, offset: number, length: number): Buffer {
  return Buffer.from(block.subarray(offset, tarFieldEnd(block, offset, length)))
}

/** tar-stream's names of the entry types (what the rest of transship calls them). */
export type TarEntryType =
  'block-device' | 'character-device' | 'contiguous-file' | 'directory' | 'fifo' | 'file' | 'link' | 'symlink'

const TYPE_NAMES: Record<string, TarEntryType> = {
  '\0': 'file',
  '0': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  '7': 'contiguous-file',
}

/** The type of an entry's type flag; undefined for the others (GNU dump directories, volume labels, ...). */
export function tarEntryType(typeflag: string): TarEntryType | undefined {
  return TYPE_NAMES[typeflag]
}

/**
 * pax records (`LENGTH KEY=VALUE\n`, LENGTH in bytes) with their values as raw bytes, keys decoded as UTF-8;
 * a repeated key keeps its last value. Undefined when the records are malformed.
 */
export function parsePaxRecords(payload: Buffer): Map<string, Buffer> | undefined {
  const records = new Map<string, Buffer>()
  let offset = 0
  while (offset < payload.length) {
    // some writers pad the records with NULs
    if (payload[offset] === 0 && payload.subarray(offset).every((byte) => byte === 0)) break
    const space = payload.indexOf(0x20, offset)
    const length = space === -1 ? Number.NaN : Number(payload.toString('latin1', offset, space))
    const end = offset + length
    const equals = space === -1 ? -1 : payload.indexOf(0x3d, space + 1)
    if (
      !Number.isSafeInteger(length) ||
      end > payload.length ||
      payload[end - 1] !== 0x0a ||
      equals === -1 ||
      equals >= end
    ) {
      return undefined
    }

    records.set(payload.toString('utf8', space + 1, equals), Buffer.from(payload.subarray(equals + 1, end - 1)))
    offset = end
  }

  return records
}

const utf8 = new TextDecoder('utf8', {fatal: true})

/** The raw bytes of a name as a string: itself when valid UTF-8, else with each bad byte escaped as `\xNN`. */
export function decodeTarName(raw: Uint8Array): string {
  try {
    return utf8.decode(raw)
  } catch {
    // decoded sequence by sequence below
  }

  let text = ''
  let i = 0
  while (i < raw.length) {
    const lead = raw[i]!
    const length =
      lead < 0x80
        ? 1
        : lead >= 0xc2 && lead <= 0xdf
          ? 2
          : lead >= 0xe0 && lead <= 0xef
            ? 3
            : lead >= 0xf0 && lead <= 0xf4
              ? 4
              : 0
    let decoded: string | undefined
    if (length > 0 && i + length <= raw.length) {
      try {
        decoded = utf8.decode(raw.subarray(i, i + length))
      } catch {
        // not a valid sequence: the lead byte is escaped
      }
    }

    if (decoded === undefined) {
      text += `\\x${lead.toString(16).toUpperCase().padStart(2, '0')}`
      i++
    } else {
      text += decoded
      i += length
    }
  }

  return text
}

/** What a ustar header block says; each value must fit its field (writers move what does not into pax records). */
export interface TarHeaderFields {
  devmajor?: number
  devminor?: number
  gid: number
  linkname?: Buffer | string
  mode: number
  mtime: number
  /** the name field (≤ 100 bytes); a longer path is split into `prefix` and name, or goes into a pax record */
  name: Buffer | string
  prefix?: Buffer | string
  size: number
  /** '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' directory, '6' fifo, 'x' pax, 'g' global... */
  typeflag: string
  uid: number
}

function writeField(block: Buffer, offset: number, length: number, value: Buffer | string): void {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value)
  // a value that does not fit is the writer's bug: truncating it would write another name or number
  if (bytes.length > length) throw new RangeError(`a tar header field of ${length} bytes cannot hold ${bytes.length}`)
  bytes.copy(block, offset)
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  writeField(block, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`)
}

/** One ustar header block, with its checksum. */
export function encodeTarHeader(fields: TarHeaderFields): Buffer {
  const block = Buffer.alloc(TAR_BLOCK)
  writeField(block, 0, 100, fields.name)
  writeOctal(block, 100, 8, fields.mode)
  writeOctal(block, 108, 8, fields.uid)
  writeOctal(block, 116, 8, fields.gid)
  writeOctal(block, 124, 12, fields.size)
  writeOctal(block, 136, 12, fields.mtime)
  writeField(block, 156, 1, fields.typeflag)
  if (fields.linkname) writeField(block, 157, 100, fields.linkname)
  writeField(block, 257, 8, 'ustar\u000000')
  writeOctal(block, 329, 8, fields.devmajor ?? 0)
  writeOctal(block, 337, 8, fields.devminor ?? 0)
  if (fields.prefix) writeField(block, 345, 155, fields.prefix)
  // the checksum is computed with its own field read as eight spaces
  block.fill(0x20, 148, 156)
  let sum = 0
  for (const byte of block) sum += byte
  writeField(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `)
  return block
}

/** One pax record: `LENGTH KEY=VALUE\n`, where LENGTH counts the whole record, its own digits included. */
export function encodePaxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')])
  let length = body.length + 1
  while (String(length).length + body.length !== length) length = String(length).length + body.length
  return Buffer.concat([Buffer.from(String(length)), body])
}
