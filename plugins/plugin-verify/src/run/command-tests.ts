/**
 * commandTests: each command runs in its own container (the entrypoint cleared, like container-structure-test's
 * `Entrypoint: [""]`), after its setup commands were run and committed one by one; its exit code, stdout and
 * stderr are checked; then its teardown commands run. Every container and committed image is removed.
 */
import type {EngineClient} from '@transship/kit'

import {EngineError} from '@transship/kit'

import type {CommandTest, ContainerRunOptions, EnvVar, TestResult} from '../config/types.js'

import {
  commitContainer,
  containerLogs,
  type ContainerSpec,
  killContainer,
  Resources,
  startContainer,
  waitContainer,
} from './containers.js'
import {excerpt, type Outcome, outcome, timed} from './results.js'
import {compileAll, matchAll} from './static-checks.js'

export const DEFAULT_TIMEOUT_SECONDS = 60

export interface RunContext {
  globalEnvVars: EnvVar[]
  log?: {debug(m: string): void}
  runOptions: ContainerRunOptions
  signal: AbortSignal
}

export async function runCommandTests(
  engine: EngineClient,
  imageId: string,
  tests: CommandTest[],
  context: RunContext,
): Promise<TestResult[]> {
  const results: TestResult[] = []
  for (const test of tests) {
    results.push(
      await timed('commandTests', test.name, context.signal, () => commandTest(engine, imageId, test, context)),
    )
  }

  return results
}

/** `KEY=value` for the container: the global variables, the test's own, then those passed through by name. */
export function containerEnv(context: RunContext, own: EnvVar[] = []): string[] {
  const env = [...context.globalEnvVars, ...own].map((item) => `${item.key}=${item.value}`)
  for (const name of context.runOptions.envVars ?? []) {
    const value = process.env[name]
    if (value !== undefined) env.push(`${name}=${value}`)
  }

  return env
}

/** The container settings from containerRunOptions. */
export function runSpec(context: RunContext): Pick<ContainerSpec, 'capAdd' | 'privileged' | 'user'> {
  const {capabilities, privileged, user} = context.runOptions
  return {capAdd: capabilities?.length ? capabilities : undefined, privileged, user: user || undefined}
}

export interface RunOnce {
  exitCode: number
  id: string
  stderr: string
  stdout: string
  timedOut: boolean
}

/**
 * Creates and starts a container and waits for it, up to `timeoutSeconds`: then it is killed (timedOut). Its
 * logs are read either way. The container stays registered in `resources`.
 */
export async function runOnce(
  engine: EngineClient,
  resources: Resources,
  spec: ContainerSpec,
  timeoutSeconds: number,
  signal: AbortSignal,
): Promise<RunOnce> {
  const id = await resources.create(spec, signal)
  await startContainer(engine, id, signal)
  let exitCode = -1
  let timedOut = false
  const deadline = AbortSignal.timeout(timeoutSeconds * 1000)
  try {
    exitCode = await waitContainer(engine, id, AbortSignal.any([signal, deadline]))
  } catch (error) {
    if (signal.aborted || !deadline.aborted) throw error
    timedOut = true
    await killContainer(engine, id)
  }

  const output = await containerLogs(engine, id, signal)
  return {exitCode, id, ...output, timedOut}
}

async function commandTest(
  engine: EngineClient,
  imageId: string,
  test: CommandTest,
  context: RunContext,
): Promise<Outcome> {
  const {signal} = context
  const compiled = compileAll([
    ...(test.expectedOutput ?? []),
    ...(test.excludedOutput ?? []),
    ...(test.expectedError ?? []),
    ...(test.excludedError ?? []),
  ])
  if ('error' in compiled) return compiled.error
  const timeout = test.timeout ?? DEFAULT_TIMEOUT_SECONDS
  const base = {...runSpec(context), entrypoint: [], env: containerEnv(context, test.envVars), networkMode: 'none'}
  const resources = new Resources(engine, context.log)
  try {
    let image = imageId
    for (const command of test.setup ?? []) {
      const step = await attempt(signal, () =>
        runOnce(engine, resources, {...base, cmd: command, image}, timeout, signal),
      )
      if ('error' in step) return {message: `setup ${JSON.stringify(command)}: ${step.error}`, status: 'error'}
      if (step.timedOut || step.exitCode !== 0) return stepFailed('setup', command, step, timeout)

      image = await commitContainer(engine, step.id, signal)
      resources.addImage(image)

      await resources.remove(step.id)
    }

    const command = [test.command, ...(test.args ?? [])]
    const run = await attempt(signal, () => runOnce(engine, resources, {...base, cmd: command, image}, timeout, signal))
    if ('error' in run) return {message: `${JSON.stringify(command)}: ${run.error}`, status: 'error'}
    let result: Outcome
    if (run.timedOut) {
      result = {
        diff: [`stdout so far: ${excerpt(run.stdout)}`, `stderr so far: ${excerpt(run.stderr)}`],
        message: `timed out after ${timeout}s`,
        status: 'fail',
      }
    } else {
      const expectedExit = test.exitCode ?? 0
      const diff: string[] = []
      if (run.exitCode !== expectedExit) {
        diff.push(`expected exit code ${expectedExit}, got: ${run.exitCode} (stderr: ${excerpt(run.stderr)})`)
      }

      diff.push(
        ...matchAll('output', run.stdout, test.expectedOutput ?? [], test.excludedOutput ?? []),
        ...matchAll('error', run.stderr, test.expectedError ?? [], test.excludedError ?? []),
      )
      result = outcome(diff)
    }

    await resources.remove(run.id)
    for (const teardown of test.teardown ?? []) {
      const step = await attempt(signal, () =>
        runOnce(engine, resources, {...base, cmd: teardown, image}, timeout, signal),
      )
      let failed: Outcome | undefined
      if ('error' in step) failed = {message: `teardown ${JSON.stringify(teardown)}: ${step.error}`, status: 'error'}
      else if (step.timedOut || step.exitCode !== 0) failed = stepFailed('teardown', teardown, step, timeout)
      if (failed && result.status === 'pass') result = failed
      else if (failed) result = {...result, diff: [...(result.diff ?? []), failed.message ?? '']}
    }

    return result
  } finally {
    await resources.dispose()
  }
}

/** Runs `step`; an engine error that is not an abort (e.g. the command is not in the image) becomes {error}. */
async function attempt<T>(signal: AbortSignal, step: () => Promise<T>): Promise<T | {error: string}> {
  try {
    return await step()
  } catch (error) {
    if (error instanceof EngineError && !signal.aborted) return {error: `the engine refused it: ${error.message}`}
    throw error
  }
}

function stepFailed(kind: string, command: string[], step: RunOnce, timeout: number): Outcome {
  const how = step.timedOut ? `timed out after ${timeout}s` : `exited with ${step.exitCode}`
  return {
    diff: [`stdout: ${excerpt(step.stdout)}`, `stderr: ${excerpt(step.stderr)}`],
    message: `${kind} command ${JSON.stringify(command)} ${how}`,
    status: 'error',
  }
}
