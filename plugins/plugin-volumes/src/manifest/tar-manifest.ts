import {
  ArchiveError,
  type ArchiveErrorCode,
  parsePaxRecords,
  parseTarNumber,
  parseTarOctal,
  TAR_BLOCK,
  tarFieldEnd,
  tarPadding,
} from '@transship/kit/archive'
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

/** tar's limit on one pax or GNU long-name header is far lower; this only bounds the memory of a bad stream */
const MAX_META_SIZE = 16 * 1024 * 1024
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

/** What the header before an entry (pax, GNU long names) said about it. */
interface Pending {
  longLink?: Buffer
  longName?: Buffer
  pax?: Map<string, Buffer>
}

/** The entry whose data is being read. */
interface Current {
  /** bytes of data stored in the tar */
  dataSize: number
  entry: ManifestEntry
  /** digests plain file data */
  hash?: ContentDigest
  /** expands sparse file data */
  sparse?: SparseExpander
}

/** A push parser of a tar stream: write() the bytes as they come, end() for the manifest. Synchronous. */
class ManifestBuilder {
  readonly label: string
  private blocks = 0
  private collected: Buffer[] = []
  private current: Current | undefined
  private readonly entries: ManifestEntry[] = []
  private globalPax: Map<string, Buffer> | undefined
  private loneZeroBlock = false
  private metaType = ''
  private need = TAR_BLOCK
  private pending: Pending = {}
  private state: 'data' | 'end' | 'header' | 'meta' | 'padding' = 'header'
  private zeroBlocks = 0

  constructor(private readonly options: ManifestOptions) {
    this.label = options.label ?? 'the tar stream'
  }

  end(): VolumeManifest {
    const last = this.entries.at(-1)
    const after = last ? `after entry ${JSON.stringify(last.path)}` : 'before its first entry'
    if (this.state !== 'end') {
      if (this.blocks === 0 && this.state === 'header' && this.need === TAR_BLOCK) {
        throw this.error('ARCHIVE_TRUNCATED', 'it is empty')
      }

      if (this.state === 'data' && this.current) {
        throw this.error(
          'ARCHIVE_TRUNCATED',
          `it ends in the middle of entry ${JSON.stringify(this.current.entry.path)}`,
        )
      }

      if (this.state !== 'header' || this.need !== TAR_BLOCK) {
        throw this.error('ARCHIVE_TRUNCATED', `it ends in the middle of a tar header, ${after}`)
      }

      // GNU tar writes two zero blocks; one is enough to know the stream was not cut at a header boundary
      if (this.zeroBlocks === 0)
        throw this.error('ARCHIVE_TRUNCATED', `it ends ${after}, without the end-of-archive marker`)
    }

    return {entries: this.entries, totals: totalsOf(this.entries)}
  }

  write(chunk: Buffer): void {
    let offset = 0
    while (offset < chunk.length) {
      if (this.state === 'end') return // what follows the end-of-archive marker is padding to tar's record size
      const take = Math.min(this.need, chunk.length - offset)
      const slice = chunk.subarray(offset, offset + take)
      if (this.state === 'header' || this.state === 'meta') this.collected.push(slice)
      else if (this.state === 'data') this.data(slice)
      offset += take
      this.need -= take
      if (this.need === 0) this.complete()
    }
  }

  private complete(): void {
    switch (this.state) {
      case 'data': {
        this.finishEntry()
        break
      }

      case 'header': {
        this.header(this.take())
        break
      }

      case 'meta': {
        const payload = this.take()
        this.meta(payload)
        this.expect('padding', tarPadding(payload.length))
        break
      }

      case 'padding': {
        this.expect('header', TAR_BLOCK)
        break
      }

      default:
    }
  }

  private data(slice: Buffer): void {
    const {current} = this
    if (current?.sparse) current.sparse.write(slice)
    else current?.hash?.data(slice)
  }

  private error(code: ArchiveErrorCode, problem: string): ArchiveError {
    const what = {ARCHIVE_CORRUPT: 'is damaged', ARCHIVE_TRUNCATED: 'is truncated'}[code as string] ?? 'cannot be read'
    return new ArchiveError(code, `${this.label} ${what}: ${problem}`, {
      details: {stream: this.label},
      suggestions:
        code === 'ARCHIVE_TRUNCATED'
          ? ['the tar stream was cut short: did tar or the connection fail?']
          : ['the volume tar stream should come from GNU tar (--format=posix)'],
    })
  }

  /** Waits for `need` bytes in `state`; with none to wait for, completes it at once. */
  private expect(state: ManifestBuilder['state'], need: number): void {
    this.state = state
    this.need = need
    if (need === 0) this.complete()
  }

  private finishEntry(): void {
    const current = this.current!
    const {entry} = current
    if (current.sparse) entry.digest = current.sparse.end()
    else if (current.hash) entry.digest = current.hash.end()
    this.expect('padding', tarPadding(current.dataSize))
  }

  private header(block: Buffer): void {
    this.blocks++
    let sum = 0
    let signed = 0
    for (let i = 0; i < TAR_BLOCK; i++) {
      const byte = i >= 148 && i < 156 ? 0x20 : block[i]!
      sum += byte
      signed += byte >= 0x80 ? byte - 0x1_00 : byte
    }

    if (sum === 8 * 0x20 && block.every((byte) => byte === 0)) {
      this.zeroBlocks++
      this.expect(this.zeroBlocks >= 2 ? 'end' : 'header', TAR_BLOCK)
      return
    }

    // a lone zero block: GNU tar warns and stops there; transship reads on (onEntry is told)
    if (this.zeroBlocks === 1) this.loneZeroBlock = true
    this.zeroBlocks = 0
    const last = this.entries.at(-1)
    const after = last ? `after entry ${JSON.stringify(last.path)}` : 'at its start'
    const stored = parseTarOctal(block, 148, 8)
    if (stored !== sum && stored !== signed) {
      throw this.error(
        'ARCHIVE_CORRUPT',
        last || this.pending.pax ? `the tar header ${after} has a bad checksum` : 'it is not a tar archive',
      )
    }

    const typeflag = String.fromCodePoint(block[156]!)
    const size = parseTarNumber(block, 124, 12)
    if (!(size >= 0)) throw this.error('ARCHIVE_CORRUPT', `the tar header ${after} is not valid`)
    if ('xgLK'.includes(typeflag)) {
      if (size > MAX_META_SIZE) throw this.error('ARCHIVE_CORRUPT', `the tar header ${after} is not valid`)
      this.metaType = typeflag
      this.expect('meta', size)
      return
    }

    this.entryHeader(block, typeflag, size)
  }

  private entryHeader(block: Buffer, typeflag: string, headerSize: number): void {
    const local = this.pending.pax
    const pax = local && this.globalPax ? new Map([...this.globalPax, ...local]) : (local ?? this.globalPax)
    const {longLink, longName} = this.pending
    this.pending = {}
    let rawName: Buffer = block.subarray(0, tarFieldEnd(block, 0, 100))
    if (block.toString('latin1', 257, 263) === 'ustar\0' && block[345]) {
      rawName = Buffer.concat([block.subarray(345, tarFieldEnd(block, 345, 155)), Buffer.from('/'), rawName])
    }

    const sparseName = pax?.get('GNU.sparse.name')
    const nameSources = [sparseName, pax?.get('path'), longName, rawName].filter((item) => item !== undefined)
    const name = decodeName(nameSources[0]!)
    const entryPath = normalise(name)
    const type = TYPES[typeflag]
    if (!type) {
      const what = UNSUPPORTED_TYPES[typeflag] ?? `of the unknown type '${typeflag}'`
      throw this.error('ARCHIVE_UNSUPPORTED', `entry ${JSON.stringify(entryPath)} is ${what}`)
    }

    const paxSize = pax?.get('size')
    let dataSize = paxSize ? this.paxNumber(paxSize, 'size', entryPath) : headerSize
    // like tar-stream and GNU tar: a directory has no data, whatever its size says
    if (type === 'directory') dataSize = 0
    const entry: ManifestEntry = {
      path: entryPath,
      type,
      size: type === 'file' ? dataSize : 0,
      ...this.attributes(block, pax, entryPath),
      xattrs: xattrsOf(pax),
    }
    this.current = this.typeFields(entry, block, pax, longLink, dataSize)
    this.options.onEntry?.(entry, {
      declaredSize: paxSize ? this.paxNumber(paxSize, 'size', entryPath) : headerSize,
      globalPax: this.globalPax,
      links: [pax?.get('linkpath'), longLink, block.subarray(157, tarFieldEnd(block, 157, 100))]
        .filter((item) => item !== undefined && item.length > 0)
        .map((item) => decodeName(item!)),
      loneZeroBlockBefore: this.loneZeroBlock,
      names: nameSources.map((item) => decodeName(item)),
      pax: local,
      typeflag,
    })
    this.entries.push(entry)
    this.expect('data', dataSize)
  }

  /** Mode, owner and mtime from the header, the pax records overriding it. */
  private attributes(
    block: Buffer,
    pax: Map<string, Buffer> | undefined,
    entryPath: string,
  ): Pick<ManifestEntry, 'gid' | 'mode' | 'mtime' | 'uid'> {
    const mtime = pax?.get('mtime')
    const attributes = {
      // eslint-disable-next-line no-bitwise -- the permission bits
      mode: parseTarOctal(block, 100, 8) & 0o7777,
      uid: pax?.has('uid') ? this.paxNumber(pax.get('uid')!, 'uid', entryPath) : parseTarNumber(block, 108, 8),
      gid: pax?.has('gid') ? this.paxNumber(pax.get('gid')!, 'gid', entryPath) : parseTarNumber(block, 116, 8),
      mtime: mtime ? this.paxMtime(mtime, entryPath) : String(parseTarNumber(block, 136, 12)),
    }
    if ([attributes.mode, attributes.uid, attributes.gid, Number(attributes.mtime)].some((n) => Number.isNaN(n))) {
      throw this.error('ARCHIVE_CORRUPT', `the tar header of entry ${JSON.stringify(entryPath)} is not valid`)
    }

    return attributes
  }

  /** Adds the fields of the entry's type; the reader of its data. */
  private typeFields(
    entry: ManifestEntry,
    block: Buffer,
    pax: Map<string, Buffer> | undefined,
    longLink: Buffer | undefined,
    dataSize: number,
  ): Current {
    const rawLink = pax?.get('linkpath') ?? longLink ?? block.subarray(157, tarFieldEnd(block, 157, 100))
    switch (entry.type) {
      case 'block':
      case 'char': {
        entry.devmajor = parseTarNumber(block, 329, 8)
        entry.devminor = parseTarNumber(block, 337, 8)
        return {dataSize, entry}
      }

      case 'file': {
        const sparse = this.sparseOf(pax, entry.path, dataSize)
        if (!sparse) return {dataSize, entry, hash: new ContentDigest()}
        entry.size = sparse.realSize
        entry.sparse = true
        return {dataSize, entry, sparse}
      }

      case 'hardlink': {
        entry.hardlinkOf = normalise(decodeName(rawLink))
        return {dataSize, entry}
      }

      case 'symlink': {
        entry.linkTarget = decodeName(rawLink)
        return {dataSize, entry}
      }

      default: {
        return {dataSize, entry}
      }
    }
  }

  private meta(payload: Buffer): void {
    switch (this.metaType) {
      case 'g':
      case 'x': {
        const records = parsePaxRecords(payload)
        if (!records) throw this.error('ARCHIVE_CORRUPT', 'a pax extended header is malformed')
        if (this.metaType === 'g') this.globalPax = new Map([...(this.globalPax ?? []), ...records])
        else this.pending.pax = records
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

  private paxMtime(raw: Buffer, entry: string): string {
    const match = /^(-?\d+)(?:\.(\d*))?$/.exec(raw.toString('latin1'))
    if (!match) throw this.error('ARCHIVE_CORRUPT', `the pax mtime of entry ${JSON.stringify(entry)} is not valid`)
    const [, seconds, fraction] = match
    // nine digits, so that equal times are equal strings whatever precision the writer used
    return fraction ? `${seconds}.${fraction.slice(0, 9).padEnd(9, '0')}` : seconds!
  }

  private paxNumber(raw: Buffer, key: string, entry: string): number {
    const text = raw.toString('latin1')
    const value = Number(text)
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
      throw this.error('ARCHIVE_CORRUPT', `the pax ${key} of entry ${JSON.stringify(entry)} is not valid (${text})`)
    }

    return value
  }

  /** The expander of a sparse file's data, or undefined for a plain file. */
  private sparseOf(pax: Map<string, Buffer> | undefined, entry: string, dataSize: number): SparseExpander | undefined {
    if (!pax || ![...pax.keys()].some((key) => key.startsWith('GNU.sparse.'))) return undefined
    const number = (key: string) => {
      const raw = pax.get(key)
      return raw === undefined ? undefined : this.paxNumber(raw, key, entry)
    }

    const realSize = number('GNU.sparse.realsize') ?? number('GNU.sparse.size')
    if (realSize === undefined) {
      throw this.error('ARCHIVE_CORRUPT', `the sparse file ${JSON.stringify(entry)} has no real size`)
    }

    const fail = (problem: string) =>
      this.error('ARCHIVE_CORRUPT', `the sparse file ${JSON.stringify(entry)} ${problem}`)
    const major = pax.get('GNU.sparse.major')?.toString('latin1')
    if (major === '1') return new SparseExpander(realSize, dataSize, undefined, fail)
    const map = pax.get('GNU.sparse.map')?.toString('latin1')
    if (major === undefined && map !== undefined) {
      // format 0.1: the map is in the pax header, the data holds only the segments
      const numbers = map === '' ? [] : map.split(',').map((text) => (/^\d+$/.test(text) ? Number(text) : Number.NaN))
      if (numbers.length % 2 !== 0 || numbers.some((value) => !Number.isSafeInteger(value))) {
        throw fail('has an invalid map')
      }

      return new SparseExpander(realSize, dataSize, numbers, fail)
    }

    // 0.0 repeats GNU.sparse.offset / numbytes, which a map of records cannot hold in order
    throw this.error(
      'ARCHIVE_UNSUPPORTED',
      `entry ${JSON.stringify(entry)} is stored in a GNU sparse format other than 1.0 or 0.1`,
    )
  }

  /** The collected bytes of a header or meta payload. */
  private take(): Buffer {
    const bytes = this.collected.length === 1 ? this.collected[0]! : Buffer.concat(this.collected)
    this.collected = []
    // a copy: a slice would pin the whole chunk it came from
    return Buffer.from(bytes)
  }
}

/**
 * Digests a GNU sparse file's logical content from its stored data: format 1.0 (a map at the start of the data,
 * decimal numbers one a line: count, then offset / size pairs, padded to a block) or 0.1 (the map given).
 * Holes cost the digest nothing, whatever their claimed size (see ContentDigest).
 */
class SparseExpander {
  private readonly hash = new ContentDigest()
  private line = ''
  private mapBytes = 0
  private numbers: number[] = []
  private phase: 'data' | 'map' | 'map-padding'
  private position = 0
  private segment = -1
  private segmentLeft = 0
  private segments: Array<{offset: number; size: number}> = []
  private skip = 0

  constructor(
    readonly realSize: number,
    private readonly dataSize: number,
    map: number[] | undefined,
    private readonly fail: (problem: string) => ArchiveError,
  ) {
    this.phase = map ? 'data' : 'map'
    if (map) this.setMap(map, 0)
  }

  end(): string {
    if (this.phase !== 'data') throw this.fail('ends before the end of its map')
    this.advance()
    if (this.segmentLeft > 0) throw this.fail('holds less data than its map says')
    this.hash.zeros(this.realSize - this.position)
    return this.hash.end()
  }

  write(chunk: Buffer): void {
    let offset = 0
    while (offset < chunk.length) {
      switch (this.phase) {
        case 'data': {
          this.advance()
          if (this.segmentLeft === 0) throw this.fail('holds more data than its map says')
          const take = Math.min(this.segmentLeft, chunk.length - offset)
          this.hash.data(chunk.subarray(offset, offset + take))
          offset += take
          this.segmentLeft -= take
          this.position += take
          break
        }

        case 'map': {
          const newline = chunk.indexOf(0x0a, offset)
          const end = newline === -1 ? chunk.length : newline
          this.line += chunk.toString('latin1', offset, end)
          this.mapBytes += end - offset + (newline === -1 ? 0 : 1)
          offset = newline === -1 ? chunk.length : newline + 1
          if (this.line.length > 20) throw this.fail('has an invalid map')
          if (newline !== -1) this.mapLine()
          break
        }

        case 'map-padding': {
          const take = Math.min(this.skip, chunk.length - offset)
          offset += take
          this.skip -= take
          if (this.skip === 0) this.phase = 'data'
          break
        }
      }
    }
  }

  /** Moves on to the next segment with data left (after the hole before it) while the current one is done. */
  private advance(): void {
    while (this.segmentLeft === 0 && this.segment + 1 < this.segments.length) {
      this.segment++
      const {offset, size} = this.segments[this.segment]!
      this.hash.zeros(offset - this.position)
      this.position = offset
      this.segmentLeft = size
    }
  }

  private mapLine(): void {
    if (!/^\d+$/.test(this.line)) throw this.fail('has an invalid map')
    this.numbers.push(Number(this.line))
    this.line = ''
    const count = this.numbers[0]!
    // each pair takes at least four bytes of the stored data
    if (count * 4 > this.dataSize) throw this.fail('has an invalid map')
    if (this.numbers.length === 1 + 2 * count) {
      const mapBlock = this.mapBytes + tarPadding(this.mapBytes)
      this.setMap(this.numbers.slice(1), mapBlock)
      this.numbers = []
      this.skip = tarPadding(this.mapBytes)
      this.phase = this.skip === 0 ? 'data' : 'map-padding'
    }
  }

  private setMap(numbers: number[], mapBlock: number): void {
    let end = 0
    let stored = mapBlock
    for (let i = 0; i < numbers.length; i += 2) {
      const offset = numbers[i]!
      const size = numbers[i + 1]!
      if (offset < end || offset + size > this.realSize) throw this.fail('has an invalid map')
      // GNU tar reads each segment in whole blocks: one that ends mid-block, but the last, would shift what it
      // reads next from what the size says (its own archives never have one: holes are whole blocks)
      if (i + 2 < numbers.length && size % TAR_BLOCK !== 0) {
        throw this.fail(`has a data segment of ${size} bytes before its last: GNU tar would read it differently`)
      }

      this.segments.push({offset, size})
      end = offset + size
      stored += size
    }

    if (stored !== this.dataSize) throw this.fail(`has a map for ${stored} bytes of data, but holds ${this.dataSize}`)
  }
}

/** `name` as a manifest path: no leading `./` or `/`, no empty or `.` parts, no trailing `/`; `.` for the root. */
function normalise(name: string): string {
  return (
    name
      .split('/')
      .filter((part) => part !== '' && part !== '.')
      .join('/') || '.'
  )
}

const utf8 = new TextDecoder('utf8', {fatal: true})

/** The raw bytes of a name as a string: itself when valid UTF-8, else with each bad byte escaped as `\xNN`. */
export function decodeName(raw: Uint8Array): string {
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

/** Extended attributes (SCHILY.xattr.*) and ACLs (SCHILY.acl.*) of the pax records, base64, sorted by name. */
function xattrsOf(pax: Map<string, Buffer> | undefined): Record<string, string> {
  const xattrs: Array<[string, string]> = []
  for (const [key, value] of pax ?? []) {
    if (key.startsWith(SCHILY_XATTR)) xattrs.push([key.slice(SCHILY_XATTR.length), value.toString('base64')])
    else if (ACL_RECORDS[key]) xattrs.push([ACL_RECORDS[key], value.toString('base64')])
  }

  return Object.fromEntries(xattrs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

function totalsOf(entries: ManifestEntry[]): ManifestTotals {
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
