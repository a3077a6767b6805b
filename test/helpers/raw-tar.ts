// Tar archives byte by byte, for tests that need entries no well-behaved tar writes (hostile names, GNU.sparse
// records on anything, lone zero blocks, claims of sizes that are not there). Deterministic: the same call gives
// the same bytes.
import {TAR_BLOCK as BLOCK, encodePaxRecord, encodeTarHeader} from '@transship/kit/tar'

export interface RawHeader {
  devmajor?: number
  devminor?: number
  gid?: number
  linkname?: string
  mode?: number
  mtime?: number
  name: Buffer | string
  /** the ustar prefix field */
  prefix?: string
  /** bytes of data the header declares (default: the data's length) */
  size?: number
  /** the type flag: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' directory, '6' fifo, 'x', 'g', 'L', 'K' */
  type?: string
  uid?: number
}

/** One ustar header block, with its checksum. */
export function header(spec: RawHeader, dataLength = 0): Buffer {
  return encodeTarHeader({
    ...spec,
    gid: spec.gid ?? 0,
    mode: spec.mode ?? (spec.type === '5' ? 0o755 : 0o644),
    mtime: spec.mtime ?? 1_700_000_000,
    size: spec.size ?? dataLength,
    typeflag: spec.type ?? '0',
    uid: spec.uid ?? 0,
  })
}

function padded(data: Buffer): Buffer {
  const rest = data.length % BLOCK
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)])
}

/** The payload of a pax header: `LEN key=value\n` records. */
export function paxPayload(records: Record<string, Buffer | string>): Buffer {
  return Buffer.concat(Object.entries(records).map(([key, value]) => encodePaxRecord(key, value)))
}

/** An entry: its pax header (when records are given), its header and its data, padded to blocks. */
export function entry(spec: RawHeader, data = Buffer.alloc(0), pax?: Record<string, Buffer | string>): Buffer {
  const parts: Buffer[] = []
  if (pax) {
    const payload = paxPayload(pax)
    parts.push(header({name: 'PaxHeaders/x', type: 'x'}, payload.length), padded(payload))
  }

  parts.push(header(spec, data.length), padded(data))
  return Buffer.concat(parts)
}

/** A global pax header. */
export function globalPax(records: Record<string, Buffer | string>): Buffer {
  const payload = paxPayload(records)
  return Buffer.concat([header({name: 'GlobalHead/0', type: 'g'}, payload.length), padded(payload)])
}

/** A GNU long name ('L') or long link ('K') header before the next entry. */
export function gnuLong(type: 'K' | 'L', value: string): Buffer {
  const payload = Buffer.from(`${value}\0`)
  return Buffer.concat([header({name: '././@LongLink', type}, payload.length), padded(payload)])
}

/**
 * A GNU sparse 1.0 file (as `tar --sparse --format=posix` writes it): `segments` of data at their offsets in a
 * file of `realSize` bytes, the rest holes. The header claims only the stored bytes.
 */
export function sparseEntry(
  name: string,
  realSize: number,
  segments: Array<{data: Buffer; offset: number}>,
  extra: Record<string, string> = {},
  headerName = `./GNUSparseFile.0/${name}`,
): Buffer {
  const map = [String(segments.length), ...segments.flatMap((s) => [String(s.offset), String(s.data.length)])]
  const data = Buffer.concat([padded(Buffer.from(`${map.join('\n')}\n`)), ...segments.map((s) => s.data)])
  return entry({name: headerName}, data, {
    'GNU.sparse.major': '1',
    'GNU.sparse.minor': '0',
    'GNU.sparse.name': name,
    'GNU.sparse.realsize': String(realSize),
    ...extra,
  })
}

/** The entries, then the end-of-archive marker (two zero blocks). */
export function archive(...entries: Buffer[]): Buffer {
  return Buffer.concat([...entries, Buffer.alloc(2 * BLOCK)])
}

export const directory = (name: string): Buffer => entry({name, type: '5'})
export const file = (name: string, content: Buffer | string = ''): Buffer => entry({name}, Buffer.from(content))
export const symlink = (name: string, target: string): Buffer => entry({linkname: target, name, type: '2'})
export const hardlink = (name: string, target: string): Buffer => entry({linkname: target, name, type: '1'})
