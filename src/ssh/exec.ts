/**
 * Commands on an SSH connection: each is an exec channel whose stdout streams with backpressure, whose stderr is
 * drained (its tail kept), and which ends with the command's exit status or signal.
 */
import type {ClientChannel} from 'ssh2'

import {TransshipError, UnreachableError} from '@transship/kit'
import createDebug from 'debug'
import {PassThrough, type Readable, type Writable} from 'node:stream'
import {finished, pipeline} from 'node:stream/promises'

import type {ChannelOwner} from './connection.js'

import {signalAfterEof} from './ssh2-internals.js'

const debug = createDebug('transship:ssh')

export interface ExecOptions {
  signal?: AbortSignal
  /** piped into the command's standard input (then closed) */
  stdin?: Readable
}

export interface ExecResult {
  /** the exit status, or null when the command was killed by a signal */
  code: null | number
  /** the signal that killed the command, e.g. `SIGTERM` */
  signal?: string
  /** the last 64 KiB of the command's standard error */
  stderr: string
}

/**
 * A command running on the remote host. Read `stdout` to the end (its backpressure holds the remote command
 * back); end `stdin` when the command reads its input. Standard error is always drained, its tail kept.
 */
export interface ExecProcess {
  /** settles when the command has exited and its output has been handed to `stdout` */
  exit: Promise<ExecResult>
  stdin: Writable
  stdout: Readable
}

export interface RunResult extends ExecResult {
  stdout: string
}

const STDERR_TAIL_BYTES = 64 * 1024
const RUN_STDOUT_LIMIT = 32 * 1024 * 1024

/**
 * Runs a command. Its stdout is a stream with backpressure; stderr is drained and its tail reported in `exit`.
 * Aborting sends the command SIGTERM, closes the channel and rejects `exit` (and errors `stdout`) with the
 * signal's reason; a lost connection does the same with UnreachableError SSH_CONNECTION_LOST.
 */
export function execCommand(owner: ChannelOwner, command: string, options: ExecOptions = {}): ExecProcess {
  const {signal} = options
  const stdout = new PassThrough()
  const stdin = new PassThrough()
  const stderr = new TailBuffer(STDERR_TAIL_BYTES)
  let channel: ClientChannel | undefined
  let settled = false
  let unwatch: () => void = ignore
  let resolveExit!: (result: ExecResult) => void
  let rejectExit!: (error: unknown) => void
  const exit = new Promise<ExecResult>((resolve, reject) => {
    resolveExit = resolve
    rejectExit = reject
  })
  // the caller may only look at stdout; a rejection nobody awaits must not crash the process
  exit.catch(() => {})

  const cleanup = (): void => {
    signal?.removeEventListener('abort', onAbort)
    unwatch()
  }

  function fail(error: unknown): void {
    if (settled) return
    settled = true
    cleanup()
    if (channel) {
      sendSignal(channel, 'TERM')
      channel.close()
    }

    stdout.destroy(error instanceof Error ? error : new Error(String(error)))
    stdin.destroy()
    rejectExit(error)
  }

  const onAbort = (): void => fail(signal?.reason)

  if (signal?.aborted) {
    fail(signal.reason)
    return {exit, stdin, stdout}
  }

  const unusable = owner.unusable('run a command')
  if (unusable) {
    fail(unusable)
    return {exit, stdin, stdout}
  }

  signal?.addEventListener('abort', onAbort, {once: true})
  unwatch = owner.watch(fail)
  if (options.stdin) pipeline(options.stdin, stdin).catch((error: Error) => debug('exec stdin: %s', error.message))

  const onChannel = (error: Error | undefined, opened: ClientChannel): void => {
    if (error) {
      fail(
        owner.endedWith() ??
          new UnreachableError('SSH_EXEC_FAILED', `${owner.label} refused to run a command: ${error.message}`, {
            cause: error,
          }),
      )
      return
    }

    if (settled) {
      opened.close()
      return
    }

    channel = opened
    let exitCode: null | number | undefined
    let exitSignal: string | undefined
    opened.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    opened.on('exit', (code: null | number, signalName?: string) => {
      exitCode = code
      if (signalName) exitSignal = signalName
    })
    opened.on('close', (code?: null | number, signalName?: string) => {
      if (settled) return
      settled = true
      cleanup()
      const result: ExecResult = {code: exitCode === undefined ? (code ?? null) : exitCode, stderr: stderr.text()}
      const killedBy = exitSignal ?? signalName
      if (killedBy) result.signal = killedBy
      debug('%s: `%s` exited with %s', owner.label, command, result.signal ?? result.code)
      resolveExit(result)
    })
    // stdout is fed by pipe(), not pipeline(): a reader that gives up early (destroys stdout) must not
    // destroy the channel, whose close carries the exit status. The channel is closed instead (as a closed
    // pipe stops a local command) and the rest drained, so that it ends and `exit` settles.
    const onReaderGone = (): void => {
      if (opened.readableEnded) return
      debug('%s: stdout of `%s` closed early', owner.label, command)
      opened.unpipe(stdout)
      opened.resume()
      opened.close()
    }

    if (stdout.destroyed) {
      onReaderGone()
    } else {
      stdout.once('close', onReaderGone)
      opened.pipe(stdout)
    }

    pipeline(stdin, opened).catch((error: Error) => debug('exec stdin: %s', error.message))
  }

  try {
    owner.client.exec(command, onChannel)
  } catch (error) {
    fail(
      owner.endedWith() ??
        new UnreachableError('SSH_CONNECTION_LOST', `the SSH connection to ${owner.label} is gone`, {cause: error}),
    )
  }

  return {exit, stdin, stdout}
}

/** Runs a command with small output and collects it (stdout is capped at 32 MiB). Stdin is closed at once. */
export async function runCommand(
  owner: ChannelOwner,
  command: string,
  options: {signal?: AbortSignal} = {},
): Promise<RunResult> {
  const child = execCommand(owner, command, options)
  child.stdin.end()
  const chunks: Buffer[] = []
  let size = 0
  child.stdout.on('data', (chunk: Buffer) => {
    size += chunk.length
    if (size > RUN_STDOUT_LIMIT) {
      child.stdout.destroy(
        new TransshipError(
          'SSH_OUTPUT_TOO_LARGE',
          1,
          `\`${command}\` on ${owner.label} wrote more than ${RUN_STDOUT_LIMIT} bytes`,
        ),
      )
      return
    }

    chunks.push(chunk)
  })
  const [result] = await Promise.all([child.exit, finished(child.stdout)])
  return {...result, stdout: Buffer.concat(chunks).toString('utf8')}
}

function ignore(): void {}

/** Keeps the last `limit` bytes written to it. */
class TailBuffer {
  private chunks: Buffer[] = []
  private size = 0

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    if (this.size > this.limit * 2) {
      const tail = Buffer.concat(this.chunks).subarray(-this.limit)
      this.chunks = [tail]
      this.size = tail.length
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).subarray(-this.limit).toString('utf8')
  }
}

/** Asks the remote side to signal the command: ssh2's `signal()` while stdin is open, the adapter after. */
function sendSignal(channel: ClientChannel, name: string): void {
  try {
    if (channel.writable) {
      channel.signal(name)
      return
    }

    if (!signalAfterEof(channel, name)) debug('cannot send %s: ssh2 is not the version the adapter knows', name)
  } catch (error) {
    debug('cannot send %s: %s', name, (error as Error).message)
  }
}
