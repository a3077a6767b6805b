/**
 * rsync between two hosts that need not reach each other, with nothing installed: the destination runs the rsync
 * client (the receiver) with a remote shell that is only a relay over its own exec channel, and transship runs
 * the sender the client asked for (`rsync --server --sender ...`) on the source, piping the two channels into
 * each other. rsync's delta algorithm then sends only what differs. The client's first output on the channel is
 * the server command line, NUL-framed; transship checks it is an rsync sender and builds the command itself, so
 * a host never makes transship run anything else.
 */
import type {RemoteProcess, RemoteShell} from '@transship/kit'

import {ExitCode, shellQuote, TransshipError} from '@transship/kit'
import {byteCounter} from '@transship/kit/archive'
import {decodeTarName} from '@transship/kit/tar'
import {createInterface} from 'node:readline'
import {pipeline} from 'node:stream/promises'

export interface RsyncSide {
  host: string
  /** a shell that already runs with the rights the volume needs (sudo, a container) */
  shell: RemoteShell
  /** the directory synchronised (a volume's mount point) */
  root: string
}

export interface RsyncResult {
  /** bytes from the source to the destination (rsync's protocol, deltas included) */
  bytesSent: number
  /** bytes from the destination to the source (file list acknowledgements, block checksums) */
  bytesReceived: number
  /** manifest paths created or changed (content or attributes), the root excluded */
  changed: string[]
  /** manifest paths deleted on the destination */
  deleted: string[]
  seconds: number
}

export interface RsyncOptions {
  /** compare files by content, not by size and mtime */
  checksum?: boolean
  /** say what would be sent, change nothing */
  dryRun?: boolean
  /** root-level names left alone on both sides (not sent, not deleted) */
  exclude?: string[]
  log?: {info(message: string): void; warn(message: string): void}
  signal?: AbortSignal
}

/** the oldest rsync with protocol 31 (nanosecond mtimes) */
const MIN_VERSION = [3, 1, 0]
const MIN_PROTOCOL = 31
/** rsync: "some files vanished before they could be transferred" */
const RSYNC_VANISHED = 24
/** the header (list file name, server arguments) is small; more is not a relay's output */
const HEADER_LIMIT = 64 * 1024
/** what `mktemp -t transship-rsync.XXXXXXXX` makes */
const LIST_FILE = /^\/[^\n]*\/transship-rsync\.[\dA-Za-z]{8}$/
/** how long both ends get to report their exit once the streams between them broke */
const EXIT_GRACE_MS = 5000

const RSYNC_EXIT: Record<number, string> = {
  1: 'syntax or usage error',
  2: 'protocol incompatibility',
  3: 'errors selecting input/output files, dirs',
  5: 'error starting client-server protocol',
  10: 'error in socket I/O',
  11: 'error in file I/O',
  12: 'error in rsync protocol data stream',
  13: 'errors with program diagnostics',
  14: 'error in IPC code',
  20: 'received SIGUSR1 or SIGINT',
  21: 'some error returned by waitpid()',
  22: 'error allocating core memory buffers',
  23: 'partial transfer due to error',
  24: 'some files vanished before they could be transferred',
  25: 'the --max-delete limit stopped deletions',
  30: 'timeout in data send/receive',
  35: 'timeout waiting for daemon connection',
}

/** short options the client sends a sender for -aHAXS (plus -n, -c); `e` starts the capability string */
const SENDER_SHORT = /^-[ADHSXcglnoprtv]*(?:e[.A-Za-z]*)?$/
/** long options a receiving client of ours passes on to its sender: none that names a file or a command */
const SENDER_LONG = new Set(['--numeric-ids'])

/** rsync's version and protocol from `rsync --version`, with whether it has ACLs and xattrs */
export function parseRsyncVersion(
  text: string,
): undefined | {acls: boolean; protocol: number; version: number[]; xattrs: boolean} {
  const match = /rsync\s+version\s+v?(\d+)\.(\d+)\.(\d+)\S*\s+protocol version (\d+)/.exec(text)
  if (!match) return undefined
  return {
    acls: !/\bno ACLs\b/.test(text),
    protocol: Number(match[4]),
    version: [Number(match[1]), Number(match[2]), Number(match[3])],
    xattrs: !/\bno xattrs\b/.test(text),
  }
}

function recentEnough(version: number[]): boolean {
  for (const [i, minimum] of MIN_VERSION.entries()) {
    const part = version[i] ?? 0
    if (part !== minimum) return part > minimum
  }

  return true
}

/** true when both shells have rsync >= 3.1 (protocol 31, nanosecond mtimes) with ACLs and xattrs */
export async function canRsync(source: RsyncSide, destination: RsyncSide, signal?: AbortSignal): Promise<boolean> {
  const usable = async (side: RsyncSide): Promise<boolean> => {
    const result = await side.shell.run('rsync --version', {signal})
    if (result.code !== 0) return false
    const found = parseRsyncVersion(result.stdout)
    return Boolean(found && found.protocol >= MIN_PROTOCOL && recentEnough(found.version) && found.acls && found.xattrs)
  }

  const [a, b] = await Promise.all([usable(source), usable(destination)])
  return a && b
}

/** an --exclude pattern anchored at the root that matches `name` literally */
export function excludePattern(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\n')) {
    throw new TypeError(`not a root-level name to exclude: ${JSON.stringify(name)}`)
  }

  // rsync reads backslashes as escapes only in patterns with wildcards: escape them all and add none
  return /[*?[\\]/.test(name) ? `/${name.replaceAll(/[*?[\\]/g, String.raw`\$&`)}` : `/${name}`
}

/**
 * The relay rsync runs as its remote shell on the destination: `relay HOST rsync --server --sender ...`. It
 * writes its argument count and arguments (NUL-terminated) to the channel's stdout (fd 4), then copies rsync's
 * traffic to the channel's stdout and the channel's stdin (fd 3) back to rsync.
 */
const RELAY_SCRIPT = String.raw`printf "%s\0" "$#" "$@" >&4; exec 5<&0; cat <&5 >&4 & exec 5<&-; cat <&3 4>&-; kill $! 2>/dev/null`

/** The destination's command: a list file for the itemized changes, then the rsync client as receiver. */
export function destinationCommand(root: string, options: RsyncOptions = {}): string {
  const flags = ['-aHAXS', '--numeric-ids', '--delete']
  if (options.checksum) flags.push('--checksum')
  if (options.dryRun) flags.push('--dry-run')
  for (const name of options.exclude ?? []) flags.push(`--exclude=${excludePattern(name)}`)
  const rsync = [
    'rsync',
    ...flags,
    '--out-format=%i %n',
    // rsync leaves a remote shell's socket non-blocking otherwise, and cat fails on EAGAIN
    '--blocking-io',
    `--rsh=sh -c '${RELAY_SCRIPT}' relay`,
    // the sender's path is transship's to give (see senderCommand): this one is a placeholder
    'x:./',
    `${root.replace(/\/+$/, '')}/`,
  ]
  return [
    // the itemized list goes to a file: stdout is the protocol's, and stderr keeps only a tail
    't=$(mktemp -t transship-rsync.XXXXXXXX) || exit 125',
    String.raw`printf '%s\0' "$t"`,
    'exec 3<&0 4>&1',
    // C locale: every byte that is not printable ASCII is written \#ooo, whatever the host's locale
    'LC_ALL=C',
    'export LC_ALL',
    `exec ${rsync.map((word) => shellQuote(word)).join(' ')} >"$t"`,
  ].join('\n')
}

/**
 * The source's command for the arguments the destination's relay reported: an rsync sender with the client's
 * options on the source's root. Anything else is refused: a host never makes transship run its own command.
 */
export function senderCommand(args: string[], root: string, host: string): string {
  const refuse = (why: string): never => {
    throw new TransshipError(
      'VOLUME_RSYNC_REFUSED',
      ExitCode.Failed,
      `${host} asked to run something other than an rsync sender (${why}): ${JSON.stringify(args.slice(0, 12))}`,
    )
  }

  // the relay's own arguments start with the host name rsync gave it
  const [, command, server, sender, ...rest] = args
  if (command !== 'rsync' || server !== '--server' || sender !== '--sender') refuse('not `rsync --server --sender`')
  const paths = rest.slice(-2)
  const options = rest.slice(0, -2)
  if (paths.length !== 2 || paths[0] !== '.') refuse('not one path after `.`')
  for (const option of options) {
    if (!SENDER_SHORT.test(option) && !SENDER_LONG.has(option)) refuse(`option ${JSON.stringify(option)}`)
  }

  return `exec rsync --server --sender ${options.join(' ')} . ${shellQuote(`${root.replace(/\/+$/, '')}/`)}`
}

/** rsync's `\#ooo` escapes back to bytes, then a manifest path (non-UTF-8 bytes as \xNN, no trailing /) */
export function unescapeRsyncName(name: string): string {
  const bytes: number[] = []
  for (let i = 0; i < name.length; i++) {
    if (name[i] === '\\' && name[i + 1] === '#' && /^[0-7]{3}$/.test(name.slice(i + 2, i + 5))) {
      bytes.push(Number.parseInt(name.slice(i + 2, i + 5), 8))
      i += 4
    } else {
      // `name` comes from C-locale output: every character left is one ASCII byte
      bytes.push(name.codePointAt(i) ?? 0)
    }
  }

  const decoded = decodeTarName(Uint8Array.from(bytes))
  return (
    decoded
      .split('/')
      .filter((part) => part !== '' && part !== '.')
      .join('/') || '.'
  )
}

/** One line of `--out-format='%i %n'`: a changed or deleted manifest path; undefined for the root and noise. */
export function parseItemizedLine(line: string): undefined | {kind: 'changed' | 'deleted'; path: string} {
  const match = /^(\*deleting|[<>ch.][fdLDSp][^ ]{9}) +(.+)$/.exec(line)
  if (!match) return undefined
  const path = unescapeRsyncName(match[2] ?? '')
  if (path === '.') return undefined
  return {kind: match[1] === '*deleting' ? 'deleted' : 'changed', path}
}

/** The header the destination writes first: the list file's path, then the relay's argument count and arguments. */
async function readHeader(stdout: NodeJS.ReadableStream): Promise<{args: string[]; listFile: string}> {
  const readable = stdout as NodeJS.ReadableStream & {unshift(chunk: Buffer): void}
  let buffered = Buffer.alloc(0)
  const fields = (): string[] | undefined => {
    const parts: string[] = []
    let start = 0
    for (;;) {
      const end = buffered.indexOf(0, start)
      if (end === -1) return undefined
      parts.push(buffered.subarray(start, end).toString('utf8'))
      start = end + 1
      const count = Number(parts[1])
      if (parts.length >= 2 && !/^\d{1,4}$/.test(parts[1] ?? '')) throw new Error('the relay sent no argument count')
      if (parts.length === 2 + count) {
        if (start < buffered.length) readable.unshift(buffered.subarray(start))
        return parts
      }
    }
  }

  return new Promise((resolve, reject) => {
    const done = (error?: Error, parts?: string[]): void => {
      readable.removeListener('readable', onReadable)
      readable.removeListener('end', onEnd)
      readable.removeListener('error', onError)
      if (error) reject(error)
      else resolve({args: parts!.slice(2), listFile: parts![0] ?? ''})
    }

    const onReadable = (): void => {
      let chunk: Buffer | null
      while ((chunk = readable.read() as Buffer | null) !== null) {
        buffered = Buffer.concat([buffered, chunk])
        try {
          const parts = fields()
          if (parts) {
            done(undefined, parts)
            return
          }
        } catch (error) {
          done(error as Error)
          return
        }

        if (buffered.length > HEADER_LIMIT) {
          done(new Error('the relay sent no command line'))
          return
        }
      }
    }

    const onEnd = (): void => done(new Error('the destination ended before its rsync started'))
    const onError = (error: Error): void => done(error)
    readable.on('readable', onReadable)
    readable.on('end', onEnd)
    readable.on('error', onError)
  })
}

interface Exit {
  code: null | number
  signal?: string
  stderr: string
}

async function settle(process: RemoteProcess): Promise<Exit | {error: Error}> {
  try {
    return await process.exit
  } catch (error) {
    return {error: error as Error}
  }
}

function describeExit(exit: Exit | {error: Error}): string {
  if ('error' in exit) return exit.error.message
  if (exit.code === null) return `killed by ${exit.signal ?? 'a signal'}`
  const meaning = RSYNC_EXIT[exit.code]
  return `exit ${exit.code}${meaning ? ` (${meaning})` : ''}`
}

function stderrOf(exit: Exit | {error: Error}): string {
  return 'error' in exit ? '' : exit.stderr.trim()
}

/** The list file's lines, streamed (it may name every file of a volume), then the file removed. */
async function readList(
  destination: RsyncSide,
  listFile: string,
  signal: AbortSignal | undefined,
): Promise<{changed: string[]; deleted: string[]}> {
  const quoted = shellQuote(listFile)
  const reader = destination.shell.exec(`cat -- ${quoted} && rm -f -- ${quoted}`, {signal})
  reader.stdin.end()
  const changed: string[] = []
  const deleted: string[] = []
  const lines = createInterface({crlfDelay: Infinity, input: reader.stdout})
  for await (const line of lines) {
    const item = parseItemizedLine(line)
    if (item?.kind === 'changed') changed.push(item.path)
    else if (item) deleted.push(item.path)
  }

  const exit = await reader.exit
  if (exit.code !== 0) {
    throw new TransshipError(
      'VOLUME_COMMAND_FAILED',
      ExitCode.Failed,
      `reading rsync's list of changes on ${destination.host} failed: ${describeExit(exit)} ${exit.stderr.trim()}`,
    )
  }

  return {changed, deleted}
}

/** Best effort: the list file of a run that did not finish. */
async function removeList(destination: RsyncSide, listFile: string): Promise<void> {
  try {
    await destination.shell.run(`rm -f -- ${shellQuote(listFile)}`, {signal: AbortSignal.timeout(EXIT_GRACE_MS)})
  } catch {
    // a leftover in the host's temporary directory: nothing depends on it
  }
}

/**
 * Makes destination.root equal to source.root with rsync (-aHAXS --numeric-ids --delete), rsync's protocol
 * relayed by transship. Exit 24 (files vanished on the source while it was read) is a warning.
 */
export async function rsyncRelay(
  source: RsyncSide,
  destination: RsyncSide,
  options: RsyncOptions = {},
): Promise<RsyncResult> {
  const started = performance.now()
  const {signal} = options
  signal?.throwIfAborted()
  // ends both commands when the caller aborts or when one side has to be stopped
  const stop = new AbortController()
  const both = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal
  const receiver = destination.shell.exec(destinationCommand(destination.root, options), {signal: both})
  let header: {args: string[]; listFile: string}
  try {
    header = await readHeader(receiver.stdout)
  } catch (error) {
    stop.abort(error)
    const exit = await settle(receiver)
    signal?.throwIfAborted()
    throw new TransshipError(
      'VOLUME_TRANSFER_FAILED',
      ExitCode.Failed,
      `rsync did not start on ${destination.host}: ${(error as Error).message}; ${describeExit(exit)} ${stderrOf(exit)}`.trim(),
      {cause: error},
    )
  }

  let sender: RemoteProcess
  try {
    // the list file is read and removed later: only one that mktemp made
    if (!LIST_FILE.test(header.listFile)) {
      throw new TransshipError(
        'VOLUME_RSYNC_REFUSED',
        ExitCode.Failed,
        `${destination.host} named ${JSON.stringify(header.listFile)} as its list of changes: not a file of mktemp -t`,
      )
    }

    sender = source.shell.exec(senderCommand(header.args, source.root, destination.host), {signal: both})
  } catch (error) {
    stop.abort(error)
    await settle(receiver)
    if (LIST_FILE.test(header.listFile)) await removeList(destination, header.listFile)
    throw error
  }

  let bytesSent = 0
  let bytesReceived = 0
  let broken: Error | undefined
  let stopping: NodeJS.Timeout | undefined
  // a stream breaks when one side exits while the other still writes (the sender's stdin after its exit): the
  // exit codes tell whether that matters; a side that does not exit on its own once the other is gone is stopped
  const onBroken = (error: Error): void => {
    broken ??= error
    stopping ??= setTimeout(() => stop.abort(error), EXIT_GRACE_MS)
  }

  const streams = Promise.all([
    pipeline(
      sender.stdout,
      byteCounter((n) => {
        bytesSent += n
      }),
      receiver.stdin,
      {signal: both},
    ).catch(onBroken),
    pipeline(
      receiver.stdout,
      byteCounter((n) => {
        bytesReceived += n
      }),
      sender.stdin,
      {signal: both},
    ).catch(onBroken),
  ])
  const [sent, received] = await Promise.all([settle(sender), settle(receiver), streams])
  clearTimeout(stopping)
  if (signal?.aborted) {
    await removeList(destination, header.listFile)
    throw signal.reason
  }

  const succeeded = (exit: typeof sent): boolean =>
    !('error' in exit) && (exit.code === 0 || exit.code === RSYNC_VANISHED)
  if (!succeeded(sent) || !succeeded(received)) {
    await removeList(destination, header.listFile)
    const parts = [
      `rsync from ${source.host} to ${destination.host} failed: receiver ${describeExit(received)}, sender ${describeExit(sent)}`,
      stderrOf(received) && `${destination.host}: ${stderrOf(received)}`,
      stderrOf(sent) && `${source.host}: ${stderrOf(sent)}`,
      broken && `stream: ${broken.message}`,
    ]
    throw new TransshipError('VOLUME_TRANSFER_FAILED', ExitCode.Failed, parts.filter(Boolean).join('\n'), {
      cause: broken,
      details: {receiver: received, sender: sent},
    })
  }

  if ([sent, received].some((exit) => !('error' in exit) && exit.code === RSYNC_VANISHED)) {
    options.log?.warn(`rsync: some files on ${source.host} vanished while they were read: ${stderrOf(received)}`)
  }

  const list = await readList(destination, header.listFile, signal)
  const seconds = (performance.now() - started) / 1000
  options.log?.info(
    `rsync ${source.host} → ${destination.host}: ${list.changed.length} changed, ${list.deleted.length} deleted, ${bytesSent} bytes sent in ${seconds.toFixed(1)} s`,
  )
  return {bytesReceived, bytesSent, ...list, seconds}
}
