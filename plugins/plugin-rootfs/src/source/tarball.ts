import {TransshipError, UsageError} from '@transship/kit'
import {
  ArchiveError,
  type ArchiveErrorCode,
  COMPRESSION_MAGIC_LENGTH,
  decompressed,
  detectCompression,
  parsePaxRecords,
  parseTarNumber,
  parseTarOctal,
  requireCompressor,
  TAR_BLOCK,
  tarFieldEnd,
  tarPadding,
} from '@transship/kit/archive'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdtemp, open, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable, Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import tar from 'tar-stream'

import type {EntryType, RootfsEntry, RootfsSource} from './entry.js'

/** tar-stream's stream of one entry (its type is not exported) */
type TarSource = tar.Extract extends AsyncIterable<infer S> ? S : never

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
        code: 'FILE_NOT_FOUND',
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
    return new UsageError(`${label} cannot be read: permission denied`, {cause: error, code: 'FILE_NOT_READABLE'})
  }

  if (code === 'EISDIR') {
    return new UsageError(`${label} is a directory, not a rootfs tarball`, {cause: error, code: 'FILE_NOT_FOUND'})
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
  const input = createReadStream(file)
  let stream: Readable
  try {
    ;({stream} = await decompressed(input, signal))
  } catch (error) {
    input.destroy()
    throw iterationError(fileError(error, label), label, signal)
  }

  const framer = new TarFramer(label)
  const extract = tar.extract()
  // tar-stream's Writable is streamx's, which Node's pipeline drives through its events
  const piping = pipeline(stream, framer, extract as unknown as NodeJS.WritableStream, {signal})
  piping.catch(() => {
    // the error surfaces through the iteration below
  })
  const seen = new Map<string, EntryType>()
  try {
    for await (const source of extract) {
      signal?.throwIfAborted()
      const framed = framer.entries.shift()
      if (!framed) throw corrupt(label, `tar-stream and the tar framing disagree at entry ${source.header.name}`)
      const entry = toEntry(source.header, framed, label, seen)
      if (!entry) {
        source.resume()
        continue
      }

      const content = new EntryContent(source, entry.path, label, signal)
      if (entry.type === 'file') entry.open = () => content.open()
      yield entry
      content.finish()
    }

    // the iteration also ends when tar-stream is destroyed without an error: only a finished pipeline means
    // the whole tarball was read
    await piping
  } catch (error) {
    throw iterationError(error, label, signal)
  } finally {
    if (!extract.destroyed) extract.destroy()
  }
}

/**
 * The content of one entry as a Node Readable, forwarded from tar-stream's (streamx) entry stream. Destroying
 * it never destroys tar-stream's stream (that would end the whole extraction quietly): what is left is drained.
 */
class EntryContent {
  private body: Readable | undefined
  private finished = false
  private forwarding = false

  constructor(
    private readonly source: TarSource,
    private readonly entryPath: string,
    private readonly label: string,
    private readonly signal: AbortSignal | undefined,
  ) {}

  finish(): void {
    this.finished = true
    this.forwarding = false
    // without an error: a consumer that abandoned the stream may have no 'error' listener (a pipeline still
    // sees a premature close)
    if (this.body && !this.body.readableEnded && !this.body.destroyed) this.body.destroy()

    // skip what was not read (tar-stream stalls until it is consumed)
    this.source.resume()
  }

  open(): Readable {
    if (this.finished || this.body) {
      throw new Error(`the content of ${this.entryPath} can be opened only once, during its iteration step`)
    }

    const {source} = this
    this.forwarding = true
    const body = new Readable({
      destroy: (error, callback) => {
        this.forwarding = false
        source.resume()
        callback(error)
      },
      read() {
        source.resume()
      },
    })
    source.on('data', (chunk: unknown) => {
      if (this.forwarding && !body.push(chunk)) source.pause()
    })
    source.on('end', () => {
      if (this.forwarding) body.push(null)
    })
    source.on('error', (error: Error) => {
      if (this.forwarding) body.destroy(iterationError(error, this.label, this.signal) as Error)
    })
    this.body = body
    return body
  }
}

interface FramedEntry {
  /** the entry's pax records (global ones merged in), raw: tar-stream decodes them as UTF-8 */
  pax: Map<string, Buffer> | undefined
  typeflag: number
}

/** Builds the RootfsEntry of a tar-stream header, or undefined for the root directory; refuses what is unsafe. */
function toEntry(
  header: tar.Header,
  framed: FramedEntry,
  label: string,
  seen: Map<string, EntryType>,
): RootfsEntry | undefined {
  const name = header.name ?? ''
  const type = entryType(header.type as null | string, framed.typeflag, name, label)
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
  if (framed.pax && [...framed.pax.keys()].some((key) => key.startsWith('GNU.sparse.'))) {
    throw invalid(label, name, 'is a sparse file, which is not supported', ['write the tarball without --sparse (-S)'])
  }

  const entry: RootfsEntry = {
    gid: paxInteger(framed.pax, 'gid', label, name) ?? header.gid ?? 0,
    // eslint-disable-next-line no-bitwise -- the permission bits
    mode: (header.mode ?? 0) & 0o7777,
    mtime: paxInteger(framed.pax, 'mtime', label, name) ?? Math.floor(header.mtime.getTime() / 1000),
    path: entryPath,
    size: type === 'file' ? header.size : 0,
    type,
    uid: paxInteger(framed.pax, 'uid', label, name) ?? header.uid ?? 0,
    xattrs: xattrsOf(framed.pax),
  }
  addTypeFields(entry, header, label, name, seen)
  seen.set(entryPath, type)
  return entry
}

/** The link target or device numbers of `entry`. */
function addTypeFields(
  entry: RootfsEntry,
  header: tar.Header,
  label: string,
  name: string,
  seen: Map<string, EntryType>,
): void {
  switch (entry.type) {
    case 'block-device':
    case 'character-device': {
      entry.devmajor = header.devmajor ?? 0
      entry.devminor = header.devminor ?? 0
      break
    }

    case 'link': {
      const target = normalise(header.linkname ?? '', name, label)
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
      entry.linkname = header.linkname ?? ''
      break
    }

    default:
  }
}

function entryType(type: null | string, typeflag: number, name: string, label: string): EntryType {
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
      const flag = String.fromCodePoint(typeflag)
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
  S: 'a GNU sparse file',
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

function paxInteger(
  pax: Map<string, Buffer> | undefined,
  key: 'gid' | 'mtime' | 'uid',
  label: string,
  entry: string,
): number | undefined {
  const raw = pax?.get(key)?.toString('utf8')
  if (raw === undefined) return undefined
  // pax mtimes have a fraction (`1700000000.123456789`): whole seconds, rounded down
  const value = key === 'mtime' ? Math.floor(Number(raw)) : Number(raw)
  if (!/^-?\d+(\.\d*)?$/.test(raw) || !Number.isSafeInteger(value) || (key !== 'mtime' && value < 0)) {
    throw corrupt(label, `the pax header of entry ${JSON.stringify(entry)} has an invalid ${key} (${raw})`)
  }

  return value
}

const SCHILY_XATTR = 'SCHILY.xattr.'
const LIBARCHIVE_XATTR = 'LIBARCHIVE.xattr.'

/** Extended attributes from the pax records: GNU tar's and star's SCHILY.xattr, else bsdtar's LIBARCHIVE.xattr. */
function xattrsOf(pax: Map<string, Buffer> | undefined): Map<string, Buffer> {
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

function corrupt(label: string, problem: string, cause?: unknown): ArchiveError {
  return new ArchiveError('ARCHIVE_CORRUPT', `${label} is damaged: ${problem}`, {
    cause,
    details: {file: label},
    suggestions: ['get or write the tarball again'],
  })
}

function truncated(label: string, problem: string): ArchiveError {
  return new ArchiveError('ARCHIVE_TRUNCATED', `${label} is truncated: ${problem}`, {
    details: {file: label},
    suggestions: ['the tarball was cut short (an interrupted download or copy?): get or write it again'],
  })
}

/** The error a pass ends with: kit errors named after the tarball; anything tar-stream throws is ARCHIVE_CORRUPT. */
function iterationError(error: unknown, label: string, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return signal.reason
  if (error instanceof ArchiveError) {
    if (error.message.startsWith(label)) return error
    return new ArchiveError(error.code as ArchiveErrorCode, `${label}: ${error.message}`, {
      cause: error,
      details: {...error.details, file: label},
      suggestions: error.suggestions.length > 0 ? error.suggestions : ['get or write the tarball again'],
    })
  }

  if (error instanceof TransshipError) return error
  if (error instanceof Error && error.name === 'AbortError') return error
  if (error instanceof Error && 'code' in error && typeof error.code === 'string' && error.code.startsWith('E')) {
    // an I/O error of the file (errno codes), not of its content
    return error
  }

  // tar-stream's own errors carry no code; the framer catches truncation and bad checksums before it
  return corrupt(
    label,
    `it is not a valid tar archive (${error instanceof Error ? error.message : String(error)})`,
    error,
  )
}

/** tar-stream's limit on a pax or GNU long-name header */
const MAX_META_SIZE = 4 * 1024 * 1024
const META_TYPEFLAGS = new Set([...'xgLKN'].map((flag) => flag.codePointAt(0)!))

/**
 * Follows the block structure of the tar stream on its way to tar-stream, passing it on unchanged, for what
 * tar-stream does not tell:
 * - the raw bytes of the pax records: tar-stream decodes them as UTF-8, which mangles binary xattr values
 *   such as security.capability (and it ignores pax uid, gid and mtime);
 * - a tarball that ends in the middle of an entry, or without its end-of-archive marker (tar-stream accepts a
 *   stream cut at a header boundary), as ARCHIVE_TRUNCATED, and a header with a bad checksum as ARCHIVE_CORRUPT,
 *   classified here by what the framing saw rather than by tar-stream's messages.
 * It mirrors tar-stream's framing (a directory has no data whatever its size; a pax `size` overrides the header)
 * so that `entries` holds one item per entry tar-stream emits, in order, and is filled before it emits it.
 */
class TarFramer extends Transform {
  readonly entries: FramedEntry[] = []
  private blocks = 0
  private collected: Buffer[] = []
  private current: undefined | {name: string; read: number; size: number}
  private globalPax: Map<string, Buffer> | undefined
  private lastWasZero = false
  private localPax: Map<string, Buffer> | undefined
  private longName: string | undefined
  private metaType = 0
  private need = TAR_BLOCK
  private state: 'data' | 'header' | 'meta' | 'padding' = 'header'

  constructor(private readonly label: string) {
    super()
  }

  override _flush(callback: TransformCallback): void {
    const after = this.current ? `after entry ${JSON.stringify(this.current.name)}` : 'before its first entry'
    if (this.blocks === 0 && this.state === 'header' && this.need === TAR_BLOCK) {
      callback(truncated(this.label, 'it is empty'))
    } else if (this.state === 'data' && this.current) {
      const {name, read, size} = this.current
      callback(
        truncated(this.label, `it ends in the middle of entry ${JSON.stringify(name)} (${read} of ${size} bytes)`),
      )
    } else if (this.state !== 'header' || this.need !== TAR_BLOCK) {
      callback(truncated(this.label, `it ends in the middle of a tar header, ${after}`))
    } else if (this.lastWasZero) {
      callback()
    } else {
      callback(truncated(this.label, `it ends ${after}, without the end-of-archive marker`))
    }
  }

  override _transform(chunk: Buffer, _encoding: NodeJS.BufferEncoding, callback: TransformCallback): void {
    try {
      let offset = 0
      while (offset < chunk.length) {
        const take = Math.min(this.need, chunk.length - offset)
        if (this.state === 'header' || this.state === 'meta') this.collected.push(chunk.subarray(offset, offset + take))
        if (this.state === 'data' && this.current) this.current.read += take
        offset += take
        this.need -= take
        if (this.need === 0) this.complete()
      }
    } catch (error) {
      callback(error as Error)
      return
    }

    callback(null, chunk)
  }

  private complete(): void {
    const bytes = Buffer.concat(this.collected)
    this.collected = []
    switch (this.state) {
      case 'data': {
        this.expect('padding', tarPadding(this.current?.size ?? 0))
        break
      }

      case 'header': {
        this.blocks++
        this.header(bytes)
        break
      }

      case 'meta': {
        this.meta(bytes)
        this.expect('padding', tarPadding(bytes.length))
        break
      }

      case 'padding': {
        this.expect('header', TAR_BLOCK)
        break
      }
    }
  }

  /** Waits for `need` bytes in `state` (straight to the next header when there are none). */
  private expect(state: TarFramer['state'], need: number): void {
    if (need === 0 && state !== 'meta') {
      this.state = 'header'
      this.need = TAR_BLOCK
    } else if (need === 0) {
      this.state = 'meta'
      this.need = 0
      this.complete()
    } else {
      this.state = state
      this.need = need
    }
  }

  private header(block: Buffer): void {
    let sum = 0
    for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0 : block[i]!
    if (sum === 0) {
      // an end-of-archive block (tar-stream reads on after it, and so does this)
      this.lastWasZero = true
      this.expect('header', TAR_BLOCK)
      return
    }

    this.lastWasZero = false
    const after = this.current ? `after entry ${JSON.stringify(this.current.name)}` : 'at its start'
    const stored = parseTarOctal(block, 148, 8)
    if (stored !== sum + 8 * 0x20) {
      throw corrupt(
        this.label,
        this.current || this.entries.length > 0
          ? `the tar header ${after} has a bad checksum`
          : 'it is not a tar archive, nor a gzip, zstd, bzip2 or xz compressed one',
      )
    }

    const typeflag = block[156]!
    const size = parseTarNumber(block, 124, 12)
    if (META_TYPEFLAGS.has(typeflag)) {
      if (!(size >= 0 && size <= MAX_META_SIZE)) throw corrupt(this.label, `the tar header ${after} is not valid`)
      this.metaType = typeflag
      this.expect('meta', size)
      return
    }

    this.entryHeader(block, typeflag, size)
  }

  /** The header of an entry tar-stream emits (not a pax or long-name header). */
  private entryHeader(block: Buffer, typeflag: number, headerSize: number): void {
    let size = headerSize
    let name = block.toString('utf8', 0, tarFieldEnd(block, 0, 100))
    if (block.toString('latin1', 257, 263) === 'ustar\0' && block[345]) {
      name = `${block.toString('utf8', 345, tarFieldEnd(block, 345, 155))}/${name}`
    }

    const pax = this.localPax && this.globalPax ? new Map([...this.globalPax, ...this.localPax]) : this.localPax
    const paxSize = pax?.get('size')
    if (paxSize && paxSize.length > 0) size = Number.parseInt(paxSize.toString('latin1'), 10)
    name = pax?.get('path')?.toString('utf8') ?? this.longName ?? name
    this.localPax = undefined
    this.longName = undefined
    if (!(size >= 0)) throw corrupt(this.label, `the tar header of entry ${JSON.stringify(name)} is not valid`)
    if (typeflag === 0x53) {
      // an old GNU sparse file: extension blocks may follow its header, which tar-stream cannot frame
      throw invalid(this.label, name, 'is a GNU sparse file, which is not supported', [
        'write the tarball without --sparse (-S)',
      ])
    }

    // like tar-stream: a directory has no data, whatever its size says (tar-stream v3 ignores the old rule that
    // a file whose name ends in / is a directory, which matters: GNU tar cuts long names to 100 bytes, ending in /)
    if (typeflag === 0x35) size = 0
    this.entries.push({pax, typeflag})
    this.current = {name, read: 0, size}
    this.expect('data', size)
  }

  private pax(payload: Buffer): Map<string, Buffer> {
    const records = parsePaxRecords(payload)
    if (!records) throw corrupt(this.label, 'a pax extended header is malformed')
    return records
  }

  private meta(payload: Buffer): void {
    // (a GNU long link name, 'K', is left to tar-stream)
    const type = String.fromCodePoint(this.metaType)
    switch (type) {
      case 'g': {
        this.globalPax = this.pax(payload)
        break
      }

      case 'x': {
        this.localPax = this.pax(payload)
        break
      }

      case 'L':
      case 'N': {
        this.longName = payload.toString('utf8', 0, tarFieldEnd(payload, 0, payload.length))
        break
      }
      // No default
    }
  }
}
