/**
 * commandTests, as container-structure-test's docker driver runs them: each command in its own container with the
 * entrypoint cleared (CST's `Entrypoint: [""]`), on the engine's default network unless a network is given, after
 * the test's setup commands were run and committed one by one (their exit codes are not checked, as in CST: a
 * non-zero one is a warning); its exit code, stdout and stderr are checked; then its teardown commands run (CST's
 * docker driver skips them; a failing one is a warning here). Every container and committed image is removed.
 */
import type {EngineClient} from '@transship/kit'

import {EngineError} from '@transship/kit'

import type {CommandTest, TestResult} from '../config/types.js'

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
import {commandEnvironment, hostSettings, networkOf, type RunContext} from './run-options.js'
import {compileAll, matchAll} from './static-checks.js'

export type {RunContext} from './run-options.js'

export const DEFAULT_TIMEOUT_SECONDS = 60

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

  const output = await containerLogs(engine, id, signal, spec.tty)
  return {exitCode, id, ...output, timedOut}
}

async function commandTest(
  engine: EngineClient,
  imageId: string,
  test: CommandTest,
  context: RunContext,
): Promise<Outcome> {
  const {runOptions, signal} = context
  // CST's validation: such a test fails before anything runs
  if ((test.envVars ?? []).some((item) => item.key === '' || item.value === '')) {
    return {
      message: 'every env var of a command test needs a non-empty key and value (as CST requires)',
      status: 'error',
    }
  }

  const compiled = compileAll([
    ...(test.expectedOutput ?? []),
    ...(test.excludedOutput ?? []),
    ...(test.expectedError ?? []),
    ...(test.excludedError ?? []),
  ])
  if ('error' in compiled) return compiled.error
  const timeout = test.timeout ?? DEFAULT_TIMEOUT_SECONDS
  const {command, commandEnv, setupEnv} = commandEnvironment(context, test)
  const base = {...hostSettings(runOptions), entrypoint: [], networkMode: networkOf(runOptions, test.network)}
  const warnings: string[] = []
  const resources = new Resources(engine, context.log)
  try {
    let image = imageId
    for (const setup of test.setup ?? []) {
      const step = await attempt(signal, () =>
        runOnce(engine, resources, {...base, cmd: setup, env: setupEnv, image}, timeout, signal),
      )
      if ('error' in step) return {message: `setup ${JSON.stringify(setup)}: ${step.error}`, status: 'error'}
      if (step.timedOut) return stepFailed('setup', setup, step, timeout)
      if (step.exitCode !== 0) {
        warnings.push(
          `setup command ${JSON.stringify(setup)} exited with ${step.exitCode} (${excerpt(step.stderr.trim())})`,
        )
      }

      image = await commitContainer(engine, step.id, signal)
      resources.addImage(image)

      await resources.remove(step.id)
    }

    const tty = runOptions.allocateTty ?? false
    const run = await attempt(signal, () =>
      runOnce(engine, resources, {...base, cmd: command, env: commandEnv, image, tty}, timeout, signal),
    )
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
        runOnce(engine, resources, {...base, cmd: teardown, env: setupEnv, image}, timeout, signal),
      )
      if ('error' in step) warnings.push(`teardown ${JSON.stringify(teardown)}: ${step.error}`)
      else if (step.timedOut || step.exitCode !== 0) {
        const how = step.timedOut ? `timed out after ${timeout}s` : `exited with ${step.exitCode}`
        warnings.push(`teardown command ${JSON.stringify(teardown)} ${how} (${excerpt(step.stderr.trim())})`)
      }
    }

    return warnings.length > 0 ? {...result, warnings} : result
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
  return {
    diff: [`stdout: ${excerpt(step.stdout)}`, `stderr: ${excerpt(step.stderr)}`],
    message: `${kind} command ${JSON.stringify(command)} timed out after ${timeout}s`,
    status: 'error',
  }
}
