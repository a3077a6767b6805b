/**
 * waitTests (extension): the image runs with its own entrypoint and command (args replace the command), with the
 * containerRunOptions and on the engine's default network unless a network is given, and the test waits, up to its timeout, for a log line, a healthy state, or a listening TCP port.
 */
import type {EngineClient} from '@transship/kit'

import {EngineError} from '@transship/kit'
import {setTimeout as sleep} from 'node:timers/promises'

import type {TestResult, WaitTest} from '../config/types.js'

import {DEFAULT_TIMEOUT_SECONDS} from './command-tests.js'
import {
  containerLogs,
  execCapture,
  followLogs,
  inspectContainer,
  outputFrames,
  readPath,
  Resources,
  startContainer,
} from './containers.js'
import {compileRegex, excerpt, type Outcome, timed} from './results.js'
import {hostSettings, networkOf, type RunContext, waitEnvironment} from './run-options.js'

const POLL_MS = 500

export async function runWaitTests(
  engine: EngineClient,
  imageId: string,
  tests: WaitTest[],
  context: RunContext,
): Promise<TestResult[]> {
  const results: TestResult[] = []
  for (const test of tests) {
    results.push(await timed('waitTests', test.name, context.signal, () => waitTest(engine, imageId, test, context)))
  }

  return results
}

async function waitTest(engine: EngineClient, imageId: string, test: WaitTest, context: RunContext): Promise<Outcome> {
  const {runOptions, signal} = context
  const tty = runOptions.allocateTty ?? false
  if (test.log === undefined && !test.healthy && test.port === undefined) {
    return {message: 'nothing to wait for: give log, healthy or port', status: 'error'}
  }

  let regex: RegExp | undefined
  if (test.log !== undefined) {
    const compiled = compileRegex(test.log)
    if ('error' in compiled) return {message: compiled.error, status: 'error'}
    regex = compiled.regex
  }

  const timeout = test.timeout ?? DEFAULT_TIMEOUT_SECONDS
  const resources = new Resources(engine, context.log)
  let waitingFor = ''
  try {
    const id = await resources.create(
      {
        ...hostSettings(runOptions),
        cmd: test.args,
        env: waitEnvironment(context, test.envVars),
        image: imageId,
        networkMode: networkOf(runOptions, test.network),
        tty,
      },
      signal,
    )
    if (test.healthy) {
      const healthTest = (await inspectContainer(engine, id, signal)).Config?.Healthcheck?.Test ?? []
      if (healthTest.length === 0 || healthTest[0] === 'NONE') {
        return {message: 'the image has no HEALTHCHECK to wait for', status: 'error'}
      }
    }

    await startContainer(engine, id, signal)
    const deadline = AbortSignal.timeout(timeout * 1000)
    const until = AbortSignal.any([signal, deadline])
    try {
      if (regex) {
        waitingFor = `a log line matching /${test.log}/`
        const failed = await waitForLog(engine, id, regex, until, tty)
        if (failed) return failed
      }

      if (test.healthy) {
        waitingFor = 'the container to be healthy'
        const failed = await waitForHealthy(engine, id, until)
        if (failed) return failed
      }

      if (test.port !== undefined) {
        waitingFor = `TCP port ${test.port} to listen`
        const failed = await waitForPort(engine, id, test.port, until)
        if (failed) return failed
      }

      return {status: 'pass'}
    } catch (error) {
      if (signal.aborted || !deadline.aborted) throw error
      const logs = await containerLogs(engine, id, signal, tty)
      return {
        diff: [`stdout: ${excerpt(logs.stdout)}`, `stderr: ${excerpt(logs.stderr)}`],
        message: `timed out after ${timeout}s waiting for ${waitingFor}`,
        status: 'fail',
      }
    }
  } finally {
    await resources.dispose()
  }
}

/** Follows the logs until a line (stdout or stderr) matches; a failure when the container stops first. */
async function waitForLog(
  engine: EngineClient,
  id: string,
  regex: RegExp,
  signal: AbortSignal,
  tty: boolean,
): Promise<Outcome | undefined> {
  const reply = await followLogs(engine, id, signal)
  const partial = new Map<number, string>()
  try {
    for await (const frame of outputFrames(reply, tty)) {
      const text = (partial.get(frame.stream) ?? '') + frame.data.toString('utf8')
      const lines = text.split(/\r?\n/)
      partial.set(frame.stream, lines.pop() ?? '')
      if (lines.some((line) => regex.test(line))) return undefined
    }
  } finally {
    reply.destroy()
  }

  if ([...partial.values()].some((line) => line !== '' && regex.test(line))) return undefined
  return exited(engine, id, `before a log line matched /${regex.source}/`, signal)
}

async function waitForHealthy(engine: EngineClient, id: string, signal: AbortSignal): Promise<Outcome | undefined> {
  for (;;) {
    const {State: state} = await inspectContainer(engine, id, signal)
    const status = state?.Health?.Status
    if (status === 'healthy') return undefined
    if (status === 'unhealthy') {
      const last = state?.Health?.Log?.at(-1)
      return {
        diff: last ? [`last check: exit ${last.ExitCode}, output: ${excerpt(last.Output ?? '')}`] : undefined,
        message: 'the container became unhealthy',
        status: 'fail',
      }
    }

    if (!state?.Running) return exited(engine, id, 'before it was healthy', signal)

    await sleep(POLL_MS, undefined, {signal})
  }
}

async function waitForPort(
  engine: EngineClient,
  id: string,
  port: number,
  signal: AbortSignal,
): Promise<Outcome | undefined> {
  const reader = new ListeningPorts(engine, id)
  for (;;) {
    const {State: state} = await inspectContainer(engine, id, signal)

    if (!state?.Running) return exited(engine, id, `before TCP port ${port} listened`, signal)

    const ports = await reader.read(signal)
    if ('error' in ports) return {message: ports.error, status: 'error'}
    if (ports.listening.has(port)) return undefined

    await sleep(POLL_MS, undefined, {signal})
  }
}

async function exited(engine: EngineClient, id: string, when: string, signal: AbortSignal): Promise<Outcome> {
  const inspected = await inspectContainer(engine, id, signal)
  const logs = await containerLogs(engine, id, signal, inspected.Config?.Tty ?? false)
  return {
    diff: [`stdout: ${excerpt(logs.stdout)}`, `stderr: ${excerpt(logs.stderr)}`],
    message: `the container exited (code ${inspected.State?.ExitCode ?? '?'}) ${when}`,
    status: 'fail',
  }
}

/**
 * The TCP ports a running container listens on, from its /proc/net/tcp and tcp6 (its network namespace). Read
 * through the archive API when the engine serves procfs there (Docker does not: it reads the container's root
 * filesystem, where /proc is an empty directory), else with `cat` run by exec (no shell needed, but a `cat`).
 */
export class ListeningPorts {
  private archive = true

  constructor(
    private readonly engine: EngineClient,
    private readonly id: string,
  ) {}

  async read(signal: AbortSignal): Promise<{error: string} | {listening: Set<number>}> {
    if (this.archive) {
      const texts: string[] = []
      for (const path of ['/proc/net/tcp', '/proc/net/tcp6']) {
        const entry = await readPath(this.engine, this.id, path, {content: true}, signal).catch((error: unknown) => {
          if (error instanceof EngineError && !signal.aborted) return
          throw error
        })
        if (entry?.content?.length) texts.push(entry.content.toString('utf8'))
      }

      if (texts.length > 0) return {listening: parseProcNetTcp(texts.join('\n'))}
      this.archive = false
    }

    let run
    try {
      run = await execCapture(this.engine, this.id, ['cat', '/proc/net/tcp', '/proc/net/tcp6'], signal)
    } catch (error) {
      if (error instanceof EngineError && !signal.aborted) return {error: `cannot read /proc/net/tcp: ${error.message}`}
      throw error
    }

    if (!run.stdout.includes('local_address')) {
      return {
        error: `cannot check the port: the engine does not serve /proc through its archive API and the image has no cat to read /proc/net/tcp (${excerpt((run.stderr + run.stdout).trim())})`,
      }
    }

    return {listening: parseProcNetTcp(run.stdout)}
  }
}

/** The local ports of the LISTEN (st 0A) sockets of /proc/net/tcp and tcp6 text. */
export function parseProcNetTcp(text: string): Set<number> {
  const ports = new Set<number>()
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/)
    const local = fields[1]
    if (fields[3] !== '0A' || !local?.includes(':')) continue
    const port = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16)
    if (Number.isFinite(port)) ports.add(port)
  }

  return ports
}
