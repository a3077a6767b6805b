/**
 * A volume's manifest computed where the volume is, with the host's own tools (GNU find, stat, getfattr,
 * sha256sum) run through its shell: only the listing crosses the link, never the content. The listing gives
 * every attribute a tar stream's manifest has (tar-manifest.ts), in the same form, except the digests: those
 * come separately (hashFiles), as plain SHA-256, and only for the files that need them.
 */
import {ExitCode, type RemoteShell, shellQuote, TransshipError} from '@transship/kit'

import type {ManifestEntry, ManifestEntryType, VolumeManifest} from './types.js'

import {decodeName, normalise, rawPath, totalsOf} from './tar-manifest.js'

export interface ListingEnd {
  /** the host as the user wrote it, for messages */
  host: string
  shell: RemoteShell
  /** the volume's directory as the shell sees it */
  root: string
  /** the host has `getfattr` (attr package): without it xattrs and ACLs are unknown */
  getfattr: boolean
  /**
   * what hashes files there: `openssl dgst -sha256` (several times faster where SHA instructions exist) or
   * coreutils' sha256sum (the default); both give the plain SHA-256 of the content, so two hosts may differ
   */
  hasher?: 'openssl' | 'sha256sum'
}

/** Files this large are piped to openssl (see sha256). */
const PIPED_FILE = 8 * 1024 * 1024
/** How many files one sha256sum is given (xargs -n). */
const BATCH = 64
/** zero bytes end every field of find's output: names may hold any other byte */
const NUL = 0
const NEWLINE = 0x0a

/**
 * find's fields for each entry, each ended by a NUL: type, device and inode and link count (hard links),
 * size, permission bits (setuid, setgid and sticky included), owner, mtime, path from the root (empty for
 * the root), symlink target
 */
const FIND_FORMAT = String.raw`%y\0%D\0%i\0%n\0%s\0%m\0%U\0%G\0%T@\0%P\0%l\0`
const FIND_FIELDS = 11

/** find's %y; sockets and doors are left out, as tar leaves them out */
const TYPES: Record<string, ManifestEntryType | undefined> = {
  b: 'block',
  c: 'char',
  d: 'directory',
  f: 'file',
  l: 'symlink',
  p: 'fifo',
}
const SKIPPED_TYPES = new Set(['D', 's'])

/**
 * The volume's entries with their metadata (no content digests), in find's order, the root `.` first: one
 * `find` over the volume (and, when there are devices, one `stat` for their numbers; when the host has it, one
 * `getfattr` for the xattrs and ACLs), its output parsed as it streams.
 *
 * Hard links: the non-directories that share an inode form a group (as GNU tar groups them); the group's first
 * path carries the content, the others are type 'hardlink'. A failing tool is VOLUME_READ_FAILED.
 */
export async function listVolume(end: ListingEnd, options: {signal?: AbortSignal} = {}): Promise<VolumeManifest> {
  const {signal} = options
  signal?.throwIfAborted()
  let listing: Listing | undefined
  let xattrs: Map<string, Record<string, string>> | undefined
  await together(signal, [
    async (both) => {
      listing = await findEntries(end, both)
    },
    async (both) => {
      if (end.getfattr) xattrs = await readXattrs(end, both)
    },
  ])
  if (!listing) throw new Error('unreachable: find gave no listing')
  if (listing.devices.length > 0) await readDevices(end, listing.devices, signal)
  const {entries} = listing
  if (xattrs) {
    for (const entry of entries) entry.xattrs = xattrs.get(entry.path) ?? {}
  }

  return {entries, totals: totalsOf(entries), xattrs: xattrs ? 'listed' : 'unknown'}
}

/**
 * The SHA-256 (what `sha256sum` prints: the logical content, holes read as zeros) of the given files
 * (manifest paths), or of every regular file with 'all' (each inode read once, its hard links given the same).
 * Returns path → hex. `parallel` sha256sum run at a time (default 2), each fed batches of files as it finishes
 * the last, so that a few large files do not hold the rest back. A path that is not a regular file, or a
 * failing tool, is VOLUME_READ_FAILED.
 */
export async function hashFiles(
  end: ListingEnd,
  files: 'all' | string[],
  options: {parallel?: number; signal?: AbortSignal; sizes?: Map<string, number>} = {},
): Promise<Map<string, string>> {
  const {signal} = options
  signal?.throwIfAborted()
  const {aliases, jobs} =
    files === 'all'
      ? await regularFiles(end, signal)
      : {aliases: new Map<string, string>(), jobs: unique(files, options.sizes)}
  const hashes = jobs.length === 0 ? new Map<string, string>() : await sha256(end, jobs, options.parallel ?? 2, signal)
  for (const [path, leader] of aliases) {
    const hash = hashes.get(leader)
    if (hash !== undefined) hashes.set(path, hash)
  }

  return hashes
}

/**
 * A manifest with the digests filled in from `hashes` (hashFiles) on its entries of type file, and marked as
 * sha256 digests. Entries without a hash are left without a digest.
 */
export function withDigests(manifest: VolumeManifest, hashes: Map<string, string>): VolumeManifest {
  const entries = manifest.entries.map((entry) => {
    const digest = entry.type === 'file' ? hashes.get(entry.path) : undefined
    return digest === undefined ? entry : {...entry, digest}
  })
  return {...manifest, digests: 'sha256', entries}
}

interface Listing {
  /** block and char devices, their numbers still to read */
  devices: Array<{entry: ManifestEntry; raw: Buffer}>
  entries: ManifestEntry[]
}

async function findEntries(end: ListingEnd, signal: AbortSignal | undefined): Promise<Listing> {
  const entries: ManifestEntry[] = []
  const devices: Listing['devices'] = []
  /** `device:inode` → the group's first path */
  const leaders = new Map<string, string>()
  const command = `cd ${shellQuote(end.root)} && LC_ALL=C find . -ignore_readdir_race -printf '${FIND_FORMAT}'`
  await runTool(end, 'find', command, {signal}, async (stdout) => {
    let fields: Buffer[] = []
    const splitter = new Splitter(NUL, (field) => {
      fields.push(field)
      if (fields.length < FIND_FIELDS) return
      const entry = entryOf(fields, leaders, end)
      if (entry && (entry.type === 'block' || entry.type === 'char')) devices.push({entry, raw: fields[9]!})
      if (entry) entries.push(entry)
      fields = []
    })
    await splitter.consume(stdout, signal)
    if (fields.length > 0 || splitter.pending)
      throw unexpected(end, 'find', 'its output ends in the middle of an entry')
  })
  return {devices, entries}
}

/** A manifest entry from find's fields (FIND_FORMAT); undefined for what tar leaves out (sockets). */
function entryOf(fields: Buffer[], leaders: Map<string, string>, end: ListingEnd): ManifestEntry | undefined {
  // the last two (path and link target) are names, raw bytes; the others are ASCII
  const [type = '', device, inode, links, size, mode, uid, gid, mtime = ''] = fields
    .slice(0, 9)
    .map((field) => field.toString('latin1'))
  const kind = TYPES[type]
  if (!kind) {
    if (SKIPPED_TYPES.has(type)) return undefined
    throw unexpected(end, 'find', `unknown file type ${JSON.stringify(type)}`)
  }

  const number = (text = '', radix = 10) => {
    const value = Number.parseInt(text, radix)
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) throw unexpected(end, 'find', `bad number ${text}`)
    return value
  }

  const name = fields[9]!
  const path = name.length === 0 ? '.' : normalise(decodeName(name))
  const entry: ManifestEntry = {
    path,
    type: kind,
    size: kind === 'file' ? number(size) : 0,
    mode: number(mode, 8),
    uid: number(uid),
    gid: number(gid),
    mtime: findTime(mtime, end),
    xattrs: {},
  }
  if (kind === 'symlink') entry.linkTarget = decodeName(fields[10]!)
  if (kind !== 'directory' && number(links) > 1) {
    const key = `${device}:${inode}`
    const leader = leaders.get(key)
    if (leader === undefined) {
      leaders.set(key, path)
    } else {
      entry.type = 'hardlink'
      entry.size = 0
      entry.hardlinkOf = leader
      delete entry.linkTarget
    }
  }

  return entry
}

/**
 * find's %T@ as a manifest mtime (`SECONDS.NANOS`, nine digits), exactly: GNU find prints the timespec as
 * `tv_sec.tv_nsec` followed by a 0, so a time before the epoch comes as e.g. `-6.7500000000` for -5.25 s.
 */
export function findTime(text: string, end?: ListingEnd): string {
  const match = /^(-?\d+)(?:\.(\d+))?$/.exec(text)
  if (!match) throw unexpected(end, 'find', `bad mtime ${JSON.stringify(text)}`)
  let seconds = BigInt(match[1]!)
  let nanos = BigInt((match[2] ?? '').slice(0, 9).padEnd(9, '0'))
  let sign = ''
  if (seconds < 0n) {
    sign = '-'
    if (nanos > 0n) {
      seconds += 1n
      nanos = 1_000_000_000n - nanos
    }

    seconds = -seconds
  }

  return `${sign}${seconds}.${String(nanos).padStart(9, '0')}`
}

/** Sets the device numbers of block and char devices: `stat` (hex major and minor) in the order given. */
async function readDevices(end: ListingEnd, devices: Listing['devices'], signal: AbortSignal | undefined) {
  const command = `cd ${shellQuote(end.root)} && LC_ALL=C xargs -0 -r stat -c '%t %T' --`
  const input = Buffer.concat(devices.flatMap(({raw}) => [Buffer.from('./'), raw, Buffer.from([NUL])]))
  let index = 0
  await runTool(end, 'stat', command, {input, signal}, async (stdout) => {
    const splitter = new Splitter(NEWLINE, (line) => {
      const match = /^([\da-f]+) ([\da-f]+)$/.exec(line.toString('latin1'))
      const device = devices[index++]
      if (!match || !device) throw unexpected(end, 'stat', `unexpected line ${JSON.stringify(line.toString())}`)
      device.entry.devmajor = Number.parseInt(match[1]!, 16)
      device.entry.devminor = Number.parseInt(match[2]!, 16)
    })
    await splitter.consume(stdout, signal)
  })
  if (index !== devices.length) throw unexpected(end, 'stat', `${index} devices of ${devices.length} described`)
}

/**
 * Every xattr of every entry (all namespaces getfattr shows: user, trusted, security, system.posix_acl_*), by
 * manifest path; base64 values sorted by name. One `getfattr -R` over the volume, symlinks not followed.
 */
async function readXattrs(
  end: ListingEnd,
  signal: AbortSignal | undefined,
): Promise<Map<string, Record<string, string>>> {
  const byPath = new Map<string, Record<string, string>>()
  const command = `cd ${shellQuote(end.root)} && LC_ALL=C getfattr -h -R -P -d -m - -e base64 .`
  await runTool(end, 'getfattr', command, {signal}, async (stdout) => {
    let current: Array<[string, string]> | undefined
    let path = ''
    const close = () => {
      if (current && current.length > 0) {
        byPath.set(path, Object.fromEntries(current.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))
      }

      current = undefined
    }

    const splitter = new Splitter(NEWLINE, (line) => {
      if (line.length === 0) {
        close()
      } else if (line.subarray(0, 8).toString('latin1') === '# file: ') {
        close()
        path = normalise(decodeName(unescapeGetfattr(line.subarray(8))))
        current = []
      } else if (current) {
        current.push(xattrOf(line, end))
      } else {
        throw unexpected(end, 'getfattr', `unexpected line ${JSON.stringify(line.toString())}`)
      }
    })
    await splitter.consume(stdout, signal)
    close()
  })
  return byPath
}

/** One `name=value` line of getfattr -d -e base64: the name decoded as manifest names are, the value base64. */
function xattrOf(line: Buffer, end: ListingEnd): [string, string] {
  const equals = line.indexOf('=')
  // a name is printed with its '=' escaped; a line without one is an attribute with no value
  const name = decodeName(unescapeGetfattr(equals === -1 ? line : line.subarray(0, equals)))
  const value = equals === -1 ? '' : line.subarray(equals + 1).toString('latin1')
  if (value === '' || value === '""') return [name, '']
  if (value.startsWith('0s')) return [name, Buffer.from(value.slice(2), 'base64').toString('base64')]
  if (/^0x([\da-f]{2})*$/i.test(value)) return [name, Buffer.from(value.slice(2), 'hex').toString('base64')]
  if (value.startsWith('"') && value.endsWith('"')) {
    return [name, unescapeGetfattr(line.subarray(equals + 2, -1)).toString('base64')]
  }

  throw unexpected(end, 'getfattr', `unexpected value for ${JSON.stringify(name)}`)
}

/** getfattr's quoting undone: `\NNN` (octal) is a byte, `\\` a backslash; other bytes are as they are. */
function unescapeGetfattr(quoted: Buffer): Buffer {
  if (!quoted.includes(0x5c)) return quoted
  const bytes: number[] = []
  for (let i = 0; i < quoted.length; i++) {
    const byte = quoted[i]!
    const octal = /^[0-3][0-7]{2}$/.exec(quoted.toString('latin1', i + 1, i + 4))
    if (byte === 0x5c && octal) {
      bytes.push(Number.parseInt(octal[0], 8))
      i += 3
    } else if (byte === 0x5c && quoted[i + 1] === 0x5c) {
      bytes.push(byte)
      i++
    } else {
      bytes.push(byte)
    }
  }

  return Buffer.from(bytes)
}

interface HashJob {
  path: string
  /** the bytes given to sha256sum (`./` and the raw name), as its output names them again */
  raw: Buffer
  /** the file's size, when known */
  size?: number
}

function unique(paths: string[], sizes?: Map<string, number>): HashJob[] {
  return [...new Set(paths)].map((path) => ({
    path,
    raw: Buffer.concat([Buffer.from('./'), rawPath(path)]),
    size: sizes?.get(path),
  }))
}

/** Every regular file, one job per inode; the other paths of an inode are aliases of the first. */
async function regularFiles(
  end: ListingEnd,
  signal: AbortSignal | undefined,
): Promise<{aliases: Map<string, string>; jobs: HashJob[]}> {
  const jobs: HashJob[] = []
  const aliases = new Map<string, string>()
  const leaders = new Map<string, string>()
  const command = `cd ${shellQuote(end.root)} && LC_ALL=C find . -type f -printf '%D:%i:%n:%s\\0%P\\0'`
  await runTool(end, 'find', command, {signal}, async (stdout) => {
    let inode: string | undefined
    const splitter = new Splitter(NUL, (field) => {
      if (inode === undefined) {
        inode = field.toString('latin1')
        return
      }

      const path = normalise(decodeName(field))
      const [device, number, links, size] = inode.split(':')
      const key = `${device}:${number}`
      const leader = links === '1' ? undefined : leaders.get(key)
      if (leader === undefined) {
        leaders.set(key, path)
        jobs.push({path, raw: Buffer.concat([Buffer.from('./'), field]), size: Number(size)})
      } else {
        aliases.set(path, leader)
      }

      inode = undefined
    })
    await splitter.consume(stdout, signal)
    if (inode !== undefined || splitter.pending) throw unexpected(end, 'find', 'its output ends in the middle')
  })
  return {aliases, jobs}
}

/** Hashes the jobs: in batches, and with openssl the large files apart (see below); the first failure stops all. */
async function sha256(
  end: ListingEnd,
  jobs: HashJob[],
  parallel: number,
  signal: AbortSignal | undefined,
): Promise<Map<string, string>> {
  if (end.hasher !== 'openssl') return hashPool(end, jobs, parallel, 'batch', signal)
  // openssl reads a file it is named in small pieces, and a large file's holes cost it seconds: large files are
  // piped to it by cat, one at a time, alongside the batches of the others
  const large = jobs.filter((job) => (job.size ?? 0) >= PIPED_FILE)
  const small = jobs.filter((job) => (job.size ?? 0) < PIPED_FILE)
  const hashes = new Map<string, string>()
  const pool = (some: HashJob[], workers: number, how: 'batch' | 'piped') => async (both: AbortSignal) => {
    for (const [path, hash] of await hashPool(end, some, workers, how, both)) hashes.set(path, hash)
  }

  await together(signal, [
    ...(small.length > 0 ? [pool(small, parallel, 'batch')] : []),
    ...(large.length > 0 ? [pool(large, 1, 'piped')] : []),
  ])
  return hashes
}

/**
 * Hashes the jobs with `parallel` processes (sha256sum, or openssl given the files as `how` says), each its own
 * process (their outputs never interleave), fed BATCH files at a time while fewer than BATCH + 1 of its files are
 * unanswered: each always has its next batch in hand, and none is given more than it can finish soon.
 */
async function hashPool(
  end: ListingEnd,
  jobs: HashJob[],
  parallel: number,
  how: 'batch' | 'piped',
  signal: AbortSignal | undefined,
): Promise<Map<string, string>> {
  const hashes = new Map<string, string>()
  const workers = Math.max(1, Math.min(Math.floor(parallel), Math.ceil(jobs.length / BATCH)))
  let next = 0
  const openssl = end.hasher === 'openssl'
  const tool = openssl ? 'openssl' : 'sha256sum'
  const hasher =
    how === 'piped'
      ? `-n 1 sh -c 'cat -- "$1" | openssl dgst -sha256 -r' sh`
      : `-n ${BATCH} ${openssl ? 'openssl dgst -sha256 -r' : 'sha256sum -z --'}`
  const command = `cd ${shellQuote(end.root)} && LC_ALL=C xargs -0 -r ${hasher}`

  const worker = async (stdout: NodeJS.ReadableStream, stdin: NodeJS.WritableStream, both: AbortSignal) => {
    /** raw name (latin1) → the job given under it and not answered (sha256sum names its answers) */
    const waiting = new Map<string, HashJob>()
    /** the jobs given, in order (openssl answers in order; it escapes some names and not others) */
    const queue: HashJob[] = []
    let ended = false
    const unanswered = () => (openssl ? queue.length : waiting.size)
    const feed = () => {
      while (unanswered() <= BATCH && next < jobs.length) {
        const batch = jobs.slice(next, next + BATCH)
        next += batch.length
        for (const job of batch) {
          if (openssl) queue.push(job)
          else waiting.set(job.raw.toString('latin1'), job)
        }

        stdin.write(Buffer.concat(batch.flatMap((job) => [job.raw, Buffer.from([NUL])])))
      }

      // the end of the list makes xargs run its last, short batch
      if (next >= jobs.length && !ended) {
        ended = true
        stdin.end()
      }
    }

    feed()
    const answer = (record: Buffer) => {
      if (openssl) {
        // `HEX *NAME`, or `\HEX *NAME` when the name was escaped: one line per file, in the order given
        const offset = record[0] === 0x5c ? 1 : 0
        const hex = record.toString('latin1', offset, offset + 64)
        const job = queue.shift()
        if (!/^[\da-f]{64}$/.test(hex) || record[offset + 64] !== 0x20 || !job) {
          throw unexpected(end, tool, `unexpected output ${JSON.stringify(record.toString())}`)
        }

        hashes.set(job.path, hex)
        feed()
        return
      }

      // `HEX  NAME` (or `HEX *NAME`): with -z the name is not escaped
      const hex = record.toString('latin1', 0, 64)
      const name = record.toString('latin1', 66)
      const job = waiting.get(name)
      if (!/^[\da-f]{64}$/.test(hex) || record[64] !== 0x20 || !job) {
        throw unexpected(end, tool, `unexpected output ${JSON.stringify(record.toString())}`)
      }

      waiting.delete(name)
      hashes.set(job.path, hex)
      feed()
    }

    const splitter = new Splitter(openssl ? 0x0a : NUL, answer)
    await splitter.consume(stdout, both)
    if (unanswered() > 0) throw unexpected(end, tool, `${unanswered()} files left without a digest`)
  }

  const run = async (both: AbortSignal) =>
    runTool(end, tool, command, {input: 'fed', signal: both}, (stdout, stdin) => worker(stdout, stdin, both))
  await together(
    signal,
    Array.from({length: workers}, () => run),
  )
  return hashes
}

/**
 * Runs tasks side by side: the first to fail stops the others (through the signal each is given).
 */
async function together(
  signal: AbortSignal | undefined,
  tasks: Array<(signal: AbortSignal) => Promise<void>>,
): Promise<void> {
  const stop = new AbortController()
  const both = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal
  await Promise.all(
    tasks.map(async (task) =>
      task(both).catch((error: unknown) => {
        stop.abort(error)
        throw error
      }),
    ),
  )
}

/**
 * Runs a tool's command on the end's shell, its stdout handed to `consume`. Its stdin gets `input` and is
 * closed, or is left to `consume` ('fed'). The process is stopped when `consume` throws or the signal aborts
 * (then the signal's reason is thrown); an exit code other than 0 is VOLUME_READ_FAILED with the tool's stderr.
 */
async function runTool(
  end: ListingEnd,
  tool: string,
  command: string,
  options: {input?: 'fed' | Buffer; signal: AbortSignal | undefined},
  consume: (stdout: NodeJS.ReadableStream, stdin: NodeJS.WritableStream) => Promise<void>,
): Promise<void> {
  const {input, signal} = options
  const stop = new AbortController()
  const process = end.shell.exec(command, {signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal})
  // a process that ends early closes its stdin: its exit status tells why
  process.stdin.on('error', () => {})
  if (input === undefined) process.stdin.end()
  else if (input !== 'fed') process.stdin.end(input)
  const failed = (exit: {code: null | number; signal?: string; stderr: string}) =>
    new TransshipError(
      'VOLUME_READ_FAILED',
      ExitCode.Failed,
      `${end.host}: ${tool} failed reading the volume at ${end.root} (exit ${exit.code ?? exit.signal}): ${exit.stderr.trim()}`,
    )
  let exit: Awaited<typeof process.exit>
  try {
    await consume(process.stdout, process.stdin)
    exit = await process.exit
  } catch (error) {
    stop.abort(error)
    const stopped = await process.exit.catch(() => {})
    if (signal?.aborted) throw signal.reason
    // output cut short by the tool's own failure: that failure is the story
    if (stopped && stopped.code !== null && stopped.code !== 0) throw failed(stopped)
    throw error
  }

  signal?.throwIfAborted()
  if (exit.code !== 0) throw failed(exit)
}

function unexpected(end: ListingEnd | undefined, tool: string, problem: string): TransshipError {
  return new TransshipError(
    'VOLUME_READ_FAILED',
    ExitCode.Failed,
    `${end?.host ?? 'the host'}: ${tool} gave output transship cannot read: ${problem}`,
  )
}

/** Cuts a byte stream into records at a terminator byte, across chunks; each record without its terminator. */
class Splitter {
  private rest: Buffer | undefined

  constructor(
    private readonly terminator: number,
    private readonly onRecord: (record: Buffer) => void,
  ) {}

  /** bytes after the last terminator */
  get pending(): boolean {
    return this.rest !== undefined && this.rest.length > 0
  }

  async consume(stream: NodeJS.ReadableStream, signal: AbortSignal | undefined): Promise<void> {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      signal?.throwIfAborted()
      this.write(chunk)
    }
  }

  write(chunk: Buffer): void {
    let start = 0
    let end = chunk.indexOf(this.terminator)
    if (end !== -1 && this.rest) {
      this.onRecord(Buffer.concat([this.rest, chunk.subarray(0, end)]))
      this.rest = undefined
      start = end + 1
      end = chunk.indexOf(this.terminator, start)
    }

    while (end !== -1) {
      this.onRecord(chunk.subarray(start, end))
      start = end + 1
      end = chunk.indexOf(this.terminator, start)
    }

    if (start < chunk.length)
      this.rest = this.rest ? Buffer.concat([this.rest, chunk.subarray(start)]) : chunk.subarray(start)
  }
}
