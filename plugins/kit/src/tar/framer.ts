/**
 * The one tar framing state machine of transship: bytes in, entries out. It follows GNU tar's reading of a
 * stream (pax local and global records, GNU long names and links, GNU.sparse.name, the sparse formats 1.0, 0.1
 * and old GNU, a directory without data whatever its size says, the end-of-archive marker of two zero blocks)
 * and refuses what it cannot frame with a TarError. Synchronous and push-driven: readTar (reader.ts) puts
 * streams and backpressure around it; a reader that only needs headers and digests drives it directly.
 */
import type {ArchiveErrorCode} from '../archive/errors.js'

import {TarError, tarErrorCode, type TarErrorReason} from './errors.js'
import {
  decodeTarHeader,
  decodeTarName,
  isZeroBlock,
  parsePaxRecords,
  parseTarNumber,
  TAR_BLOCK,
  TAR_METADATA_LIMIT,
  tarChecksumMatches,
  tarEntryType,
  type TarEntryType,
  tarFieldEnd,
  type TarHeader,
  tarPadding,
} from './header.js'

/** One run of data of a sparse file: where it lies in the file; what lies between runs are holes (zeros). */
export interface TarSparseSegment {
  offset: number
  size: number
}

/** How a sparse file is stored: only its segments of data, the holes left out. */
export interface TarSparse {
  /** GNU sparse 1.0 (the map at the start of the data), 0.1 (the map in the pax records) or old GNU (type S) */
  format: '0.1' | '1.0' | 'old'
  /** the segments, in order: checked and filled in when the data starts (for 1.0, read from it) */
  map: TarSparseSegment[]
  /** the size of the file, holes included */
  realSize: number
}

/** An entry as its headers describe it. Names and link targets are raw bytes (decode them as you need). */
export interface TarEntry {
  /** bytes of data the headers declare (the pax size, else the header's) */
  declaredSize: number
  /** where the entry's data starts in the stream */
  dataOffset: number
  /** bytes of data stored after the header: a directory has none, whatever it declares */
  dataSize: number
  devmajor: number
  devminor: number
  gid: number
  /** the global pax records in force (`g` headers) */
  globalPax: ReadonlyMap<string, Buffer> | undefined
  header: TarHeader
  /** the link target GNU tar uses: pax linkpath, else the GNU long link, else the header's (empty: none) */
  linkname: Buffer
  /** every non-empty link target given, in that order */
  links: Buffer[]
  /** the entry's own pax records (an `x` header) */
  localPax: ReadonlyMap<string, Buffer> | undefined
  /** a single zero block came before this entry: GNU tar stops reading there (`A lone zero block`) */
  loneZeroBlockBefore: boolean
  /** the header's mode field, whole */
  mode: number
  /** decimal seconds: the pax mtime with nine fraction digits when it has a fraction, else the header's */
  mtime: string
  /** the name GNU tar uses: GNU.sparse.name, else the pax path, else the GNU long name, else the header's */
  name: Buffer
  /** every name given, in that order */
  names: Buffer[]
  /** the pax records that apply: the global ones with the entry's own over them */
  pax: ReadonlyMap<string, Buffer> | undefined
  /** a sparse file: its data (dataSize) holds the map (1.0) and the segments only */
  sparse: TarSparse | undefined
  /** undefined for types other than the eight of POSIX (GNU dump directories, volume labels, ...) */
  type: TarEntryType | undefined
  typeflag: string
  uid: number
}

/** What a TarFramer tells as it reads. */
export interface TarHandler {
  /** a chunk of the current entry's data (a sparse file's segments, in order, without its map) */
  data?(chunk: Buffer, entry: TarEntry): void
  /** the current entry's data is complete */
  end?(entry: TarEntry): void
  /** an entry's headers were read: its data follows */
  entry?(entry: TarEntry): void
  /** `length` bytes of zeros in a sparse file, before its next segment or at its end */
  hole?(length: number, entry: TarEntry): void
}

export interface TarFramerOptions {
  /** the stream was decompressed as needed first: a stream that is not tar is no compressed tar either */
  decompressed?: boolean
  /** the details of its errors (default {stream: label}) */
  details?: Record<string, unknown>
  /**
   * `required` (default): a stream that ends without the end-of-archive marker is truncated; `optional`: it
   * may end at any entry boundary, as tar-stream and Go's archive/tar accept (an empty stream included)
   */
  endMarker?: 'optional' | 'required'
  /** names the stream in messages (default 'the tar stream') */
  label?: string
  /** what its errors suggest, by code */
  suggestions?: Partial<Record<ArchiveErrorCode, string[]>>
}

const META_TYPEFLAGS = new Set(['g', 'K', 'L', 'x'])
const DEFAULT_SUGGESTIONS: Partial<Record<ArchiveErrorCode, string[]>> = {
  ARCHIVE_CORRUPT: ['get or write the tar stream again'],
  ARCHIVE_TRUNCATED: ['the tar stream was cut short: get or write it again'],
}

/** The pieces of metadata (pax, GNU long names, sparse extension blocks) read for the next entry. */
interface Pending {
  bytes: number
  longLink?: Buffer
  longName?: Buffer
  pax?: Map<string, Buffer>
}

/** The entry whose data is being read. */
interface Current {
  entry: TarEntry
  /** stored bytes left */
  left: number
  /** sparse files: the position in the file, the segment being read and what is left of it */
  position: number
  segment: number
  segmentLeft: number
}

/** A 1.0 sparse map being read from the start of the data. */
interface MapReader {
  bytes: number
  line: string
  numbers: number[]
  /** padding after the map, to skip (undefined while the map is read) */
  skip?: number
}

type State = 'data' | 'end' | 'header' | 'meta' | 'padding' | 'sparse-ext' | 'sparse-map'

/**
 * A push parser of a tar stream. write() the bytes as they come: it returns where it stopped, which is the end
 * of the chunk or the byte after an entry's headers (so that a reader can hand the entry out before its data);
 * end() when the stream ends. Errors are TarErrors, thrown by write() and end().
 */
export class TarFramer {
  readonly label: string
  private blocks = 0
  /** what the framer failed with: it throws it again */
  private failed: unknown
  private collected = Buffer.alloc(TAR_BLOCK)
  private current: Current | undefined
  private filled = 0
  private globalBytes = 0
  private globalPax: Map<string, Buffer> | undefined
  private last: TarEntry | undefined
  private loneZeroBlock = false
  private map: MapReader | undefined
  private meta: Buffer | undefined
  private metaType = ''
  /** the map of the entry handed out, checked when its data starts (0.1 and old GNU sparse files) */
  private mapNumbers: number[] | undefined
  private need = TAR_BLOCK
  /** the old GNU sparse entry whose extension blocks are being read */
  private oldSparse: undefined | {header: TarHeader; map: TarSparseSegment[]; realSize: number}
  private pending: Pending = {bytes: 0}
  private position = 0
  private state: State = 'header'
  private zeroBlocks = 0

  constructor(
    private readonly handler: TarHandler,
    private readonly options: TarFramerOptions = {},
  ) {
    this.label = options.label ?? 'the tar stream'
  }

  /** Whether the end-of-archive marker was read (what follows is ignored). */
  get ended(): boolean {
    return this.state === 'end'
  }

  /** Bytes that skip() may pass over now: the rest of the current entry's data or padding (0 elsewhere). */
  get skippable(): number {
    return this.state === 'data' || this.state === 'padding' ? this.need : 0
  }

  /** Bytes the framer waits for in its current state (a header block, a metadata payload, data, padding). */
  get wanted(): number {
    return this.state === 'end' ? 0 : this.need
  }

  /** The stream ended: a TarError unless it ended where a tar may end. */
  end(): void {
    if (this.failed !== undefined) throw this.failed
    if (this.state === 'end') return
    const optional = this.options.endMarker === 'optional'
    if (this.position === 0) {
      if (optional) return
      throw this.fail('empty', 'it is empty')
    }

    const after = this.last ? `after entry ${this.nameOf(this.last)}` : 'before its first entry'
    if ((this.state === 'data' || this.state === 'sparse-map') && this.current) {
      const {entry, left} = this.current
      throw this.fail(
        'truncated',
        `it ends in the middle of entry ${this.nameOf(entry)} (${entry.dataSize - left} of its ${entry.dataSize} bytes)`,
        entry,
      )
    }

    if (this.state !== 'header' || this.filled !== 0) {
      throw this.fail('truncated', `it ends in the middle of a tar header, ${after}`, this.last)
    }

    // GNU tar writes two zero blocks; one is enough to know the stream was not cut at a header boundary
    if (this.zeroBlocks === 0 && !optional) {
      throw this.fail('truncated', `it ends ${after}, without the end-of-archive marker`, this.last)
    }
  }

  /**
   * Passes over up to `limit` bytes of the current entry's data or padding without reading them (no data
   * events); returns how many.
   */
  skip(limit = Number.POSITIVE_INFINITY): number {
    if (this.failed !== undefined) throw this.failed
    const skipped = Math.min(this.skippable, limit)
    if (skipped === 0) return 0
    this.need -= skipped
    this.position += skipped
    if (this.state === 'data') this.current!.left -= skipped
    if (this.need === 0) this.complete()
    return skipped
  }

  /** Reads `chunk` from `offset`; returns where it stopped (see the class). */
  write(chunk: Buffer, offset = 0): number {
    if (this.failed !== undefined) throw this.failed
    try {
      return this.read(chunk, offset)
    } catch (error) {
      this.failed = error
      throw error
    }
  }

  private read(chunk: Buffer, offset: number): number {
    let at = offset
    while (at < chunk.length) {
      switch (this.state) {
        case 'data': {
          const take = Math.min(this.need, chunk.length - at)
          this.data(chunk, at, take)
          at += take
          this.need -= take
          this.position += take
          if (this.need === 0) this.complete()
          break
        }

        case 'end': {
          // what follows the end-of-archive marker is padding to tar's record size
          this.position += chunk.length - at
          return chunk.length
        }

        case 'header': {
          at = this.headerBlock(chunk, at)
          // an entry was handed out: its reader goes first
          if (at < 0) return -at
          break
        }

        case 'meta':
        case 'sparse-ext': {
          const take = Math.min(this.need, chunk.length - at)
          chunk.copy(this.meta!, this.meta!.length - this.need, at, at + take)
          at += take
          this.need -= take
          this.position += take
          if (this.need === 0 && this.complete()) return at
          break
        }

        case 'padding': {
          const take = Math.min(this.need, chunk.length - at)
          at += take
          this.need -= take
          this.position += take
          if (this.need === 0) this.complete()
          break
        }

        case 'sparse-map': {
          at = this.sparseMap(chunk, at)
          break
        }
      }
    }

    return at
  }

  /**
   * Reads (or collects) a header block at `at`; returns the new offset, negated when an entry was handed out.
   */
  private headerBlock(chunk: Buffer, at: number): number {
    if (this.filled === 0 && chunk.length - at >= TAR_BLOCK) {
      this.position += TAR_BLOCK
      return this.header(chunk, at) ? -(at + TAR_BLOCK) : at + TAR_BLOCK
    }

    const next = this.collect(chunk, at)
    if (this.filled < TAR_BLOCK) return next
    this.filled = 0
    return this.header(this.collected, 0) ? -next : next
  }

  /** Copies what is missing of a header block; returns the new offset. */
  private collect(chunk: Buffer, at: number): number {
    const take = Math.min(TAR_BLOCK - this.filled, chunk.length - at)
    chunk.copy(this.collected, this.filled, at, at + take)
    this.filled += take
    this.position += take
    return at + take
  }

  /** The current state's bytes are all there; returns whether an entry was handed out. */
  private complete(): boolean {
    switch (this.state) {
      case 'data': {
        this.finishData()
        return false
      }

      case 'meta': {
        const payload = this.meta!
        this.meta = undefined
        this.metaPayload(payload)
        this.expect('padding', tarPadding(payload.length))
        return false
      }

      case 'padding': {
        this.expect('header', TAR_BLOCK)
        return false
      }

      case 'sparse-ext': {
        const block = this.meta!
        this.meta = undefined
        return this.oldSparseBlock(block, 0, 21, 504)
      }

      default: {
        return false
      }
    }
  }

  /** Gives `take` bytes of data at `at`, splitting a sparse file's at its segments and telling its holes. */
  private data(chunk: Buffer, at: number, take: number): void {
    const current = this.current!
    current.left -= take
    const {entry} = current
    if (!entry.sparse) {
      this.handler.data?.(chunk.subarray(at, at + take), entry)
      return
    }

    let offset = at
    let left = take
    const {map} = entry.sparse
    while (left > 0) {
      while (current.segmentLeft === 0) {
        current.segment++
        const segment = map[current.segment]!
        if (segment.offset > current.position) this.handler.hole?.(segment.offset - current.position, entry)
        current.position = segment.offset
        current.segmentLeft = segment.size
      }

      const size = Math.min(current.segmentLeft, left)
      this.handler.data?.(chunk.subarray(offset, offset + size), entry)
      offset += size
      left -= size
      current.segmentLeft -= size
      current.position += size
    }
  }

  /** Starts reading the entry's data (its map first for sparse 1.0). */
  private startData(entry: TarEntry): void {
    this.current = {entry, left: entry.dataSize, position: 0, segment: -1, segmentLeft: 0}
    if (this.mapNumbers) {
      const numbers = this.mapNumbers
      this.mapNumbers = undefined
      if (!(entry.sparse!.realSize >= 0)) throw this.sparseError(entry, 'has no real size')
      this.setMap(entry, entry.sparse!, numbers, 0)
    }

    if (entry.sparse?.format === '1.0') {
      if (entry.dataSize === 0) throw this.sparseError(entry, 'ends before the end of its map')
      this.map = {bytes: 0, line: '', numbers: []}
      this.state = 'sparse-map'
      this.need = entry.dataSize
      return
    }

    this.expect('data', entry.dataSize)
  }

  private emit(entry: TarEntry): boolean {
    this.last = entry
    this.handler.entry?.(entry)
    try {
      this.startData(entry)
    } catch (error) {
      // the entry is handed out first (its reader may refuse it for a better reason): the next call throws
      this.failed = error
    }

    return true
  }

  /** Waits for `need` bytes in `state`; with none to wait for, completes it at once. */
  private expect(state: State, need: number): void {
    this.state = state
    this.need = need
    if (need === 0) this.complete()
  }

  private fail(reason: TarErrorReason, problem: string, entry?: TarEntry): TarError {
    const code = tarErrorCode(reason)
    const verb = {ARCHIVE_TRUNCATED: 'is truncated', ARCHIVE_UNSUPPORTED: 'cannot be read'}[code as string]
    return new TarError(reason, `${this.label} ${verb ?? 'is damaged'}: ${problem}`, {
      details: this.options.details ?? {stream: this.label},
      entry: entry ? decodeTarName(entry.name) : undefined,
      suggestions: this.options.suggestions?.[code] ?? DEFAULT_SUGGESTIONS[code] ?? [],
    })
  }

  private finishData(): void {
    const current = this.current!
    const {entry} = current
    if (entry.sparse && entry.sparse.realSize > current.position) {
      this.handler.hole?.(entry.sparse.realSize - current.position, entry)
    }

    this.handler.end?.(entry)
    this.current = undefined
    this.expect('padding', tarPadding(entry.dataSize))
  }

  /** A header block; returns whether an entry was handed out. */
  private header(block: Buffer, at: number): boolean {
    this.blocks++
    if (isZeroBlock(block, at)) {
      this.zeroBlocks++
      this.expect(this.zeroBlocks >= 2 ? 'end' : 'header', TAR_BLOCK)
      return false
    }

    // a lone zero block: GNU tar warns and stops there; this reads on (entries say so)
    if (this.zeroBlocks === 1) this.loneZeroBlock = true
    this.zeroBlocks = 0
    const after = this.last ? `after entry ${this.nameOf(this.last)}` : 'at its start'
    if (!tarChecksumMatches(block, at)) {
      if (this.blocks === 1) {
        const compressed = this.options.decompressed ? ', nor a gzip, zstd, bzip2 or xz compressed one' : ''
        throw this.fail('not-tar', `it is not a tar archive${compressed}`)
      }

      throw this.fail('checksum', `the tar header ${after} has a bad checksum`, this.last)
    }

    const typeflag = String.fromCodePoint(block[at + 156]!)
    if (META_TYPEFLAGS.has(typeflag)) {
      const size = parseTarNumber(block, at + 124, 12)
      if (!(size >= 0)) throw this.fail('bad-header', `the tar header ${after} is not valid`, this.last)
      this.reserve(size, after, typeflag === 'g')
      this.metaType = typeflag
      this.meta = Buffer.alloc(size)
      this.expect('meta', size)
      return false
    }

    const header = decodeTarHeader(block, at)
    if (typeflag === 'S') return this.oldSparseHeader(header, block, at)
    return this.entryHeader(header)
  }

  /** The header of an entry (not of its metadata): builds the entry and hands it out. */
  private entryHeader(header: TarHeader, old?: {map: TarSparseSegment[]; realSize: number}): boolean {
    const local = this.pending.pax
    const global = this.globalPax
    const pax = local && global ? new Map([...global, ...local]) : (local ?? global)
    const {longLink, longName} = this.pending
    this.pending = {bytes: 0}
    const names = [record(pax, 'GNU.sparse.name'), record(pax, 'path'), longName, header.name].filter(
      (item) => item !== undefined,
    )
    const links = [record(pax, 'linkpath'), longLink, header.linkname].filter(
      (item): item is Buffer => item !== undefined && item.length > 0,
    )
    const type = old ? 'file' : tarEntryType(header.typeflag)
    const entry: TarEntry = {
      dataOffset: this.position,
      dataSize: 0,
      declaredSize: header.size,
      devmajor: header.devmajor,
      devminor: header.devminor,
      gid: header.gid,
      globalPax: global,
      header,
      linkname: links[0] ?? Buffer.alloc(0),
      links,
      localPax: local,
      loneZeroBlockBefore: this.loneZeroBlock,
      mode: header.mode,
      mtime: String(header.mtime),
      name: names[0]!,
      names,
      pax,
      sparse: undefined,
      type,
      typeflag: header.typeflag,
      uid: header.uid,
    }
    if (pax) this.applyPax(entry, pax)
    if ([entry.declaredSize, entry.mode, entry.uid, entry.gid].some((n) => Number.isNaN(n)) || entry.mtime === 'NaN') {
      throw this.fail('bad-header', `the tar header of entry ${this.nameOf(entry)} is not valid`, entry)
    }

    // like GNU tar and tar-stream: a directory has no data, whatever its size says
    entry.dataSize = type === 'directory' ? 0 : entry.declaredSize
    if (old) {
      entry.sparse = {format: 'old', map: [], realSize: old.realSize}
      this.mapNumbers = old.map.flatMap(({offset, size}) => [offset, size])
    } else if (type === 'file' || type === 'contiguous-file') {
      entry.sparse = this.paxSparse(entry)
    }

    return this.emit(entry)
  }

  /** The pax records that override header fields: size, uid, gid, mtime. */
  private applyPax(entry: TarEntry, pax: ReadonlyMap<string, Buffer>): void {
    const size = record(pax, 'size')
    if (size) entry.declaredSize = this.paxNumber(entry, 'size', size)
    const uid = record(pax, 'uid')
    if (uid) entry.uid = this.paxNumber(entry, 'uid', uid)
    const gid = record(pax, 'gid')
    if (gid) entry.gid = this.paxNumber(entry, 'gid', gid)
    const mtime = record(pax, 'mtime')
    if (mtime) {
      const match = /^(-?\d+)(?:\.(\d*))?$/.exec(mtime.toString('latin1'))
      if (!match) throw this.fail('bad-pax', `the pax mtime of entry ${this.nameOf(entry)} is not valid`, entry)
      const [, seconds, fraction] = match
      // nine digits, so that equal times are equal strings whatever precision the writer used
      entry.mtime = fraction ? `${seconds}.${fraction.slice(0, 9).padEnd(9, '0')}` : seconds!
    }
  }

  private metaPayload(payload: Buffer): void {
    switch (this.metaType) {
      case 'g':
      case 'x': {
        const records = parsePaxRecords(payload)
        if (!records) throw this.fail('bad-pax', 'a pax extended header is malformed', this.last)
        if (this.metaType === 'g') {
          this.globalPax = new Map([...(this.globalPax ?? []), ...records])
        } else {
          this.pending.pax = records
        }

        break
      }

      case 'K': {
        this.pending.longLink = payload.subarray(0, tarFieldEnd(payload, 0, payload.length))
        break
      }

      case 'L': {
        this.pending.longName = payload.subarray(0, tarFieldEnd(payload, 0, payload.length))
        break
      }

      default:
    }
  }

  private nameOf(entry: TarEntry): string {
    return JSON.stringify(decodeTarName(entry.name))
  }

  /** Old GNU sparse blocks (the header's 4 segments, or an extension block's 21); returns whether emitted. */
  private oldSparseBlock(block: Buffer, at: number, count: number, extendedAt: number): boolean {
    const sparse = this.oldSparse!
    for (let i = 0; i < count; i++) {
      const field = at + i * 24
      if (block[field] === 0) break
      sparse.map.push({offset: parseTarNumber(block, field, 12), size: parseTarNumber(block, field + 12, 12)})
    }

    if (block[at + extendedAt]) {
      this.reserve(TAR_BLOCK, 'of a GNU sparse file')
      this.meta = Buffer.alloc(TAR_BLOCK)
      this.state = 'sparse-ext'
      this.need = TAR_BLOCK
      return false
    }

    this.oldSparse = undefined
    return this.entryHeader(sparse.header, sparse)
  }

  private oldSparseHeader(header: TarHeader, block: Buffer, at: number): boolean {
    this.oldSparse = {header, map: [], realSize: parseTarNumber(block, at + 483, 12)}
    return this.oldSparseBlock(block, at + 386, 4, 96)
  }

  /** The sparse layout of a regular file from its pax records, or undefined for a plain one. */
  private paxSparse(entry: TarEntry): TarSparse | undefined {
    const {pax} = entry
    if (!pax || ![...pax.keys()].some((key) => key.startsWith('GNU.sparse.'))) return undefined
    const number = (key: string) => {
      const raw = record(pax, key)
      return raw === undefined ? undefined : this.paxNumber(entry, key, raw)
    }

    const realSize = number('GNU.sparse.realsize') ?? number('GNU.sparse.size')
    if (realSize === undefined) throw this.sparseError(entry, 'has no real size')
    const major = pax.get('GNU.sparse.major')?.toString('latin1')
    if (major === '1') return {format: '1.0', map: [], realSize}
    const map = pax.get('GNU.sparse.map')?.toString('latin1')
    if (major === undefined && map !== undefined) {
      // format 0.1: the map is in the pax header, the data holds only the segments
      const numbers = map === '' ? [] : map.split(',').map((text) => (/^\d+$/.test(text) ? Number(text) : Number.NaN))
      if (numbers.length % 2 !== 0 || numbers.some((value) => !Number.isSafeInteger(value))) {
        throw this.sparseError(entry, 'has an invalid map')
      }

      this.mapNumbers = numbers
      return {format: '0.1', map: [], realSize}
    }

    // 0.0 repeats GNU.sparse.offset / numbytes, which a map of records cannot hold in order
    throw this.fail(
      'unsupported',
      `entry ${this.nameOf(entry)} is stored in a GNU sparse format other than 1.0 or 0.1`,
      entry,
    )
  }

  private paxNumber(entry: TarEntry, key: string, raw: Buffer): number {
    const text = raw.toString('latin1')
    const value = Number(text)
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
      throw this.fail('bad-pax', `the pax ${key} of entry ${this.nameOf(entry)} is not valid (${text})`, entry)
    }

    return value
  }

  /** Counts `size` bytes of metadata against TAR_METADATA_LIMIT (global records count for every entry). */
  private reserve(size: number, after: string, global = false): void {
    if (this.pending.bytes + this.globalBytes + size > TAR_METADATA_LIMIT) {
      throw this.fail(
        'metadata-limit',
        `the tar headers ${after} hold more than ${TAR_METADATA_LIMIT / 1024 / 1024} MiB of metadata for one entry`,
        this.last,
      )
    }

    if (global) this.globalBytes += size
    else this.pending.bytes += size
  }

  /** Checks a sparse map against the entry's sizes and sets it. */
  private setMap(entry: TarEntry, sparse: TarSparse, numbers: number[], mapBlock: number): void {
    let end = 0
    let stored = mapBlock
    for (let i = 0; i < numbers.length; i += 2) {
      const offset = numbers[i]!
      const size = numbers[i + 1]!
      if (!(offset >= end && size >= 0 && offset + size <= sparse.realSize)) {
        throw this.sparseError(entry, 'has an invalid map')
      }

      // GNU tar reads each segment in whole blocks: one that ends mid-block, but the last, would shift what it
      // reads next from what the size says (its own archives never have one: holes are whole blocks)
      if (i + 2 < numbers.length && size % TAR_BLOCK !== 0) {
        throw this.sparseError(
          entry,
          `has a data segment of ${size} bytes before its last: GNU tar would read it differently`,
        )
      }

      sparse.map.push({offset, size})
      end = offset + size
      stored += size
    }

    if (stored !== entry.dataSize) {
      throw this.sparseError(entry, `has a map for ${stored} bytes of data, but holds ${entry.dataSize}`)
    }
  }

  private sparseError(entry: TarEntry, problem: string): TarError {
    return this.fail('bad-sparse', `the sparse file ${this.nameOf(entry)} ${problem}`, entry)
  }

  /**
   * Reads a sparse 1.0 map (decimal numbers one a line: count, then offset / size pairs, padded to a block) from
   * the start of the data; returns the new offset.
   */
  private sparseMap(chunk: Buffer, offset: number): number {
    const current = this.current!
    const reader = this.map!
    const {entry} = current
    const end = Math.min(chunk.length, offset + current.left)
    let at = offset
    if (reader.skip === undefined) {
      const newline = chunk.indexOf(0x0a, at)
      const found = newline !== -1 && newline < end
      const stop = found ? newline : end
      reader.line += chunk.toString('latin1', at, stop)
      at = found ? stop + 1 : stop
      reader.bytes += at - offset
      if (reader.line.length > 20) throw this.sparseError(entry, 'has an invalid map')
      if (found) this.mapLine(entry, reader)
    } else {
      at += Math.min(reader.skip, end - at)
      reader.skip -= at - offset
    }

    current.left -= at - offset
    this.need -= at - offset
    this.position += at - offset
    if (reader.skip === 0) {
      // the map and its padding are read: the segments follow
      this.map = undefined
      this.expect('data', current.left)
    } else if (current.left === 0) {
      throw this.sparseError(entry, 'ends before the end of its map')
    }

    return at
  }

  private mapLine(entry: TarEntry, reader: MapReader): void {
    if (reader.bytes > TAR_METADATA_LIMIT) throw this.sparseError(entry, 'has a map larger than transship reads')
    if (!/^\d+$/.test(reader.line)) throw this.sparseError(entry, 'has an invalid map')
    reader.numbers.push(Number(reader.line))
    reader.line = ''
    const count = reader.numbers[0]!
    // each pair takes at least four bytes of the stored data
    if (count * 4 > entry.dataSize) throw this.sparseError(entry, 'has an invalid map')
    if (reader.numbers.length === 1 + 2 * count) {
      const numbers = reader.numbers.slice(1)
      reader.numbers = []
      reader.skip = tarPadding(reader.bytes)
      this.setMap(entry, entry.sparse!, numbers, reader.bytes + reader.skip)
    }
  }
}

/** A pax record's value; undefined when absent or empty (an empty value cancels the record, as POSIX says). */
function record(pax: ReadonlyMap<string, Buffer> | undefined, key: string): Buffer | undefined {
  const value = pax?.get(key)
  return value && value.length > 0 ? value : undefined
}
