/**
 * Commands in a running container through the Engine API's exec, shaped like a RemoteProcess: stdin goes
 * over the hijacked connection of `POST /exec/ID/start` (its end half-closes it, so the command reads EOF),
 * stdout comes back demultiplexed with backpressure, stderr is drained (its tail kept), and the exit code is
 * read from `GET /exec/ID/json` once the stream has ended.
 */
import type {Duplex} from 'node:stream'

import {PassThrough} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'

import type {EngineClient} from '../engine.js'
import type {RemoteProcess, RemoteShell} from '../plugin-api.js'

/** stderr kept for messages: the end of it */
const STDERR_LIMIT = 64 * 1024
/** a short command's output, collected by `run` */
const RUN_STDOUT_LIMIT = 32 * 1024 * 1024
/** after its stream ended, how long a command may take to be seen as exited */
const EXIT_WAIT_MS = 10_000

/** One frame of a multiplexed (non-TTY) attach stream: 1 is stdout, 2 is stderr. */
export interface OutputFrame {
  data: Buffer
  stream: number
}

/**
 * The frames of a multiplexed attach or exec stream: each is an 8-byte header `[stream, 0, 0, 0, size (u32
 * BE)]` and `size` bytes. A frame split across chunks is put back together.
 * @yields each frame
 */
export async function* demuxFrames(source: AsyncIterable<Buffer | string | Uint8Array>): AsyncGenerator<OutputFrame> {
  let pending = Buffer.alloc(0)
  for await (const chunk of source) {
    const bytes = Buffer.from(chunk)
    pending = pending.length === 0 ? bytes : Buffer.concat([pending, bytes])
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4)
      if (pending.length < 8 + size) break
      const stream = pending[0] ?? 1
      const data = pending.subarray(8, 8 + size)
      pending = pending.subarray(8 + size)
      yield {data, stream}
    }
  }
}

/**
 * Runs `cmd` (no shell, no TTY, as the container's user) in running container `containerId`. Write its input to
 * `stdin` and end it; read `stdout` to the end (not reading holds the command back). `exit` settles once the
 * command has exited and its output was handed to `stdout`; aborting `signal` drops the connection and rejects
 * `exit` with the signal's reason (the command itself stops with its container).
 */
export function execProcess(
  engine: EngineClient,
  containerId: string,
  cmd: string[],
  options: {signal?: AbortSignal} = {},
): RemoteProcess {
  const {signal} = options
  const stdin = new PassThrough()
  const stdout = new PassThrough()
  let stderr = Buffer.alloc(0)
  let connection: Duplex | undefined
  let readerGone = false
  stdin.on('error', () => {})

  const exit = (async () => {
    const {Id: execId} = await engine.json<{Id: string}>({
      body: {AttachStderr: true, AttachStdin: true, AttachStdout: true, Cmd: cmd, Tty: false},
      method: 'POST',
      path: `/containers/${containerId}/exec`,
      signal,
    })
    const socket = await engine.upgrade({
      body: {Detach: false, Tty: false},
      method: 'POST',
      path: `/exec/${execId}/start`,
      signal,
    })
    connection = socket
    // stdin's end becomes the socket's end: a half-close, the command reads EOF and the output still flows back
    socket.on('error', () => {})
    stdin.pipe(socket)
    stdout.once('close', () => {
      if (stdout.readableEnded) return
      // the reader gave up: drop the stream (the command's next write fails, as with a closed pipe)
      readerGone = true
      socket.destroy()
    })

    try {
      for await (const frame of demuxFrames(socket)) {
        if (frame.stream === 2) {
          stderr = Buffer.concat([stderr, frame.data]).subarray(-STDERR_LIMIT)
        } else if (frame.stream === 1 && !readerGone && !stdout.write(frame.data)) {
          await drainedOrClosed(stdout)
        }
      }
    } catch (error) {
      if (!readerGone) throw error
    }

    signal?.throwIfAborted()
    // input the command did not read has nowhere to go: fail its writer rather than leave it waiting
    if (!stdin.writableFinished) stdin.destroy()
    const code = await exitCode(engine, execId, signal)
    stdout.end()
    return {code, stderr: stderr.toString('utf8')}
  })()
  exit.catch((error: unknown) => {
    connection?.destroy()
    stdin.unpipe()
    stdout.destroy(error instanceof Error ? error : new Error(String(error)))
  })
  return {exit, stdin, stdout}
}

/**
 * Resolves when `stream` drains or closes, and leaves no listener behind: a long output waits for drain many
 * times, and listeners left by each wait would pile up.
 */
async function drainedOrClosed(stream: NodeJS.EventEmitter): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('close', done)
      resolve()
    }

    stream.on('drain', done)
    stream.on('close', done)
  })
}

/** The exec's exit code, once the engine sees it exited (null when it does not within EXIT_WAIT_MS). */
async function exitCode(engine: EngineClient, execId: string, signal?: AbortSignal): Promise<null | number> {
  const deadline = Date.now() + EXIT_WAIT_MS
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    const state = await engine.json<{ExitCode: null | number; Running: boolean}>({path: `/exec/${execId}/json`, signal})
    if (!state.Running) return state.ExitCode
    if (Date.now() > deadline) return null
    await sleep(delay, undefined, {signal})
  }
}

/**
 * A RemoteShell whose commands run in a running container: `exec(command)` runs `sh -c command` there.
 * `engineSocket` is the socket of the engine on the container's host, for commands that want it ('' if none).
 */
export function engineShell(engine: EngineClient, containerId: string, engineSocket = ''): RemoteShell {
  const exec: RemoteShell['exec'] = (command, options) =>
    execProcess(engine, containerId, ['sh', '-c', command], options)
  return {
    engineSocket,
    exec,
    async run(command, options) {
      const process = exec(command, options)
      process.stdin.end()
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of process.stdout) {
        const buffer = Buffer.from(chunk as Buffer)
        size += buffer.length
        if (size > RUN_STDOUT_LIMIT) {
          ;(process.stdout as PassThrough).destroy()
          throw new Error(`\`${command}\` wrote more than ${RUN_STDOUT_LIMIT} bytes`)
        }

        chunks.push(buffer)
      }

      const {code, stderr} = await process.exit
      return {code, stderr, stdout: Buffer.concat(chunks).toString('utf8')}
    },
  }
}
