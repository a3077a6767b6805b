import {type ChildProcessByStdio, spawn} from 'node:child_process'
import {access, constants} from 'node:fs/promises'
import path from 'node:path'
import {Duplex, PassThrough, type Readable, type Writable} from 'node:stream'
import {pipeline} from 'node:stream'
import zlib from 'node:zlib'

import {UsageError} from '../errors.js'
import {ArchiveError} from './errors.js'
import {destroyOnAbort, peek} from './streams.js'

export type Compression = 'bzip2' | 'gzip' | 'none' | 'xz' | 'zstd'

/** The Debian package that provides each external compressor (Node 20's zlib has no zstd, bzip2 or xz). */
const TOOLS = {
  bzip2: {command: 'bzip2', package: 'bzip2'},
  xz: {command: 'xz', package: 'xz-utils'},
  zstd: {command: 'zstd', package: 'zstd'},
} as const

/** How many bytes detectCompression looks at. */
export const COMPRESSION_MAGIC_LENGTH = 10

/** The compression of a stream, from its first bytes (see COMPRESSION_MAGIC_LENGTH); 'none' when unknown. */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip'
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd_2f_b5_28) return 'zstd'
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz'
  if (
    head.length >= 10 &&
    head.toString('latin1', 0, 3) === 'BZh' &&
    head[3]! >= 0x31 &&
    head[3]! <= 0x39 &&
    // a compressed block, or the end of stream marker of an empty one
    (head.subarray(4, 10).equals(Buffer.from([0x31, 0x41, 0x59, 0x26, 0x53, 0x59])) ||
      head.subarray(4, 10).equals(Buffer.from([0x17, 0x72, 0x45, 0x38, 0x50, 0x90])))
  ) {
    return 'bzip2'
  }

  return 'none'
}

/**
 * Peeks at the first bytes of `input` and returns it decompressed: gzip with node:zlib, bzip2, xz and zstd with
 * the `bzip2`, `xz` and `zstd` commands. A stream that is not compressed is returned as it is. Errors of the
 * decompressor surface on the returned stream as ArchiveError (ARCHIVE_TRUNCATED when the input ends early,
 * ARCHIVE_CORRUPT otherwise); `signal` destroys everything.
 */
export async function decompressed(
  input: Readable,
  signal?: AbortSignal,
): Promise<{compression: Compression; stream: Readable}> {
  const {head, stream} = await peek(input, COMPRESSION_MAGIC_LENGTH, signal)
  const compression = detectCompression(head)
  if (compression === 'none') return {compression, stream}
  const output = new PassThrough()
  destroyOnAbort(output, signal)
  pipeline(stream, decompressor(compression, {signal}), output, () => {})
  return {compression, stream: output}
}

/**
 * A decompressing Duplex for `kind`. Its errors are ArchiveErrors: ARCHIVE_TRUNCATED when the compressed data
 * ends early, ARCHIVE_CORRUPT when it is not valid.
 */
export function decompressor(kind: Exclude<Compression, 'none'>, options: {signal?: AbortSignal} = {}): Duplex {
  if (kind === 'gzip') {
    const gunzip = zlib.createGunzip()
    const wrapped = new ErrorMappingStream(gunzip, (error) => zlibError(error))
    destroyOnAbort(wrapped, options.signal)
    return wrapped
  }

  const args = {
    bzip2: ['-d', '-c'],
    xz: ['-d', '-c', '-q', '-T0'],
    zstd: ['-d', '-c', '-q', '--long=31'],
  }[kind]
  return new CommandStream(kind, args, 'decompress', options.signal)
}

/**
 * A compressing Duplex: gzip with node:zlib (`level` 1–9, default 6), zstd (`-T0 -LEVEL`, default 3), bzip2 and
 * xz (default 9 and 6) with their commands. A failing command surfaces as a stream error carrying its stderr;
 * a missing one as a UsageError that names the Debian package to install.
 */
export function compressor(
  kind: Exclude<Compression, 'none'>,
  options: {level?: number; longWindowLog?: number; signal?: AbortSignal} = {},
): Duplex {
  const {level} = options
  if (kind === 'gzip') {
    const gzip = zlib.createGzip(level === undefined ? {} : {level})
    destroyOnAbort(gzip, options.signal)
    return gzip
  }

  const args: string[] = ['-c', '-q']
  if (kind === 'zstd') {
    args.push('-T0')
    if (level !== undefined && level > 19) args.push('--ultra')
    // long-distance matching finds repeats far apart (the same files in two layers); the reader needs
    // the same window: `zstd -d --long=N`
    if (options.longWindowLog !== undefined) args.push(`--long=${options.longWindowLog}`)
  }

  if (kind === 'xz') args.push('-T0')
  if (level !== undefined) args.push(`-${level}`)
  return new CommandStream(kind, args, 'compress', options.signal)
}

const commandCache = new Map<string, Promise<boolean>>()

/** Whether an executable `name` is on PATH (looked up once per process). */
export async function hasCommand(name: string): Promise<boolean> {
  let found = commandCache.get(name)
  if (!found) {
    found = lookUp(name)
    commandCache.set(name, found)
  }

  return found
}

async function lookUp(name: string): Promise<boolean> {
  const directories = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)
  for (const directory of directories) {
    try {
      await access(path.join(directory, name), constants.X_OK)
      return true
    } catch {
      // not here
    }
  }

  return false
}

/** The error for a compressor that is not installed. */
function missingTool(kind: keyof typeof TOOLS): UsageError {
  const tool = TOOLS[kind]
  return new UsageError(`${kind} data needs the \`${tool.command}\` command, which is not installed`, {
    code: 'COMPRESSOR_MISSING',
    details: {command: tool.command, package: tool.package},
    suggestions: [`install it: apt-get install ${tool.package}`],
  })
}

/** Throws missingTool() when the command for `kind` is not on PATH (nothing to check for gzip and none). */
export async function requireCompressor(kind: Compression): Promise<void> {
  if (kind === 'gzip' || kind === 'none') return
  if (!(await hasCommand(TOOLS[kind].command))) throw missingTool(kind)
}

function zlibError(error: Error & {code?: string}): Error {
  if (error.code === 'Z_BUF_ERROR') {
    return new ArchiveError('ARCHIVE_TRUNCATED', 'the gzip data ends early: the file was cut short', {cause: error})
  }

  if (error.code?.startsWith('Z_') || error.code?.startsWith('ERR_ZLIB')) {
    return new ArchiveError('ARCHIVE_CORRUPT', `the gzip data is damaged (${error.message})`, {cause: error})
  }

  return error
}

const TRUNCATED_STDERR = /unexpected end|ends unexpectedly|truncated|premature end|compressed data is corrupted.*end/i
const STDERR_LIMIT = 4096

/**
 * A Duplex around a child process: what is written goes to its stdin (with backpressure), its stdout is what is
 * read. The readable side ends only after the process exited with 0, so a failure (reported with the end of
 * its stderr) is never mistaken for the end of the data. Destroying the stream kills the process.
 */
class CommandStream extends Duplex {
  private child: ChildProcessByStdio<Writable, Readable, Readable> | undefined
  private exited: undefined | {code: null | number; signal: NodeJS.Signals | null}
  private pendingWrite: ((error?: Error | null) => void) | undefined
  private stderr = ''
  private stdoutEnded = false

  constructor(
    private readonly kind: keyof typeof TOOLS,
    args: string[],
    private readonly mode: 'compress' | 'decompress',
    signal?: AbortSignal,
  ) {
    super()
    destroyOnAbort(this, signal)
    if (this.destroyed) return
    const child = spawn(TOOLS[kind].command, args, {stdio: ['pipe', 'pipe', 'pipe']})
    this.child = child
    child.on('error', (error: Error & {code?: string}) => {
      this.destroy(error.code === 'ENOENT' ? missingTool(kind) : error)
    })
    child.stdin.on('error', () => {
      // EPIPE when the process stopped reading: its exit status says why
      this.releaseWrite()
    })
    child.stdin.on('close', () => this.releaseWrite())
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-STDERR_LIMIT)
    })
    child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout.pause()
    })
    child.stdout.on('end', () => {
      this.stdoutEnded = true
      this.maybeEnd()
    })
    child.on('close', (code, exitSignal) => {
      this.exited = {code, signal: exitSignal}
      this.maybeEnd()
    })
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const {child} = this
    if (child && !this.exited && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    this.releaseWrite(error)
    callback(error)
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.child) {
      callback()
      return
    }

    this.child.stdin.end()
    callback()
  }

  override _read(): void {
    this.child?.stdout.resume()
  }

  override _write(chunk: Buffer, _encoding: NodeJS.BufferEncoding, callback: (error?: Error | null) => void): void {
    const stdin = this.child?.stdin
    if (!stdin || stdin.destroyed) {
      // the process is gone; its exit status (reported on the readable side) says why
      callback()
      return
    }

    if (stdin.write(chunk)) {
      callback()
      return
    }

    this.pendingWrite = callback
    stdin.once('drain', () => this.releaseWrite())
  }

  private failure(): Error {
    const {command} = TOOLS[this.kind]
    const how = this.exited?.signal ? `was killed by ${this.exited.signal}` : `exited with ${this.exited?.code}`
    const said = this.stderr
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .slice(0, 2)
      .join(' ')
    const message = `\`${command}\` ${how} while it ${this.mode === 'compress' ? 'compressed' : 'decompressed'} ${
      this.kind
    } data${said ? `: ${said}` : ''}`
    if (this.mode === 'compress') return new ArchiveError('ARCHIVE_COMPRESS_FAILED', message)
    return new ArchiveError(TRUNCATED_STDERR.test(this.stderr) ? 'ARCHIVE_TRUNCATED' : 'ARCHIVE_CORRUPT', message)
  }

  private maybeEnd(): void {
    if (!this.exited || this.destroyed) return
    if (this.exited.code === 0 && this.stdoutEnded) this.push(null)
    else if (this.exited.code !== 0 || this.exited.signal) this.destroy(this.failure())
  }

  private releaseWrite(error?: Error | null): void {
    const callback = this.pendingWrite
    this.pendingWrite = undefined
    callback?.(error)
  }
}

/** Wraps a Duplex so that its errors are mapped (e.g. zlib's to ArchiveErrors). */
class ErrorMappingStream extends Duplex {
  constructor(
    private readonly inner: Duplex,
    map: (error: Error) => Error,
  ) {
    super()
    inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) inner.pause()
    })
    inner.on('end', () => this.push(null))
    inner.on('error', (error: Error) => this.destroy(map(error)))
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.inner.destroy()
    callback(error)
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.inner.end(callback)
  }

  override _read(): void {
    this.inner.resume()
  }

  override _write(chunk: Buffer, encoding: NodeJS.BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.inner.write(chunk, encoding)) callback()
    else this.inner.once('drain', () => callback())
  }
}
