/**
 * containerRunOptions and environment variables, applied as container-structure-test's docker driver applies
 * them. CST commits globalEnvVars into the image first, their values expanded ($NAME, ${NAME}) against the
 * image's environment; each setup command runs with the test's envVars (expanded the same way) and is
 * committed; the command and its arguments are then expanded against the environment of the image that
 * results (so `$VAR` in args is replaced before the command runs, by "" when the image does not set VAR). The
 * command's container gets the test's envVars as written, the envFile's and the passed-through envVars.
 * Deviation: CST gives the command only the run options' variables once any containerRunOptions is set (the
 * test's envVars are dropped then); transship gives it both.
 */
import {UsageError} from '@transship/kit'
import {access, open} from 'node:fs/promises'
import path from 'node:path'

import type {CommandTest, ContainerRunOptions, EnvVar, VerifyConfig} from '../config/types.js'
import type {ContainerSpec} from './containers.js'

import {DotenvError, parseDotenv} from './dotenv.js'
import {expandGo, lookupIn} from './go-expand.js'

export interface RunContext {
  /** the envFile's variables, read before anything ran */
  envFileVars: Map<string, string>
  globalEnvVars: EnvVar[]
  /** the image's own environment (its config's Env) */
  imageEnv: Map<string, string>
  log?: {debug(m: string): void}
  runOptions: ContainerRunOptions
  signal: AbortSignal
}

/** The global variables as CST commits them: values expanded against the image's environment. */
export function globalEnv(context: RunContext): Map<string, string> {
  const expanded = new Map<string, string>()
  for (const item of context.globalEnvVars) expanded.set(item.key, expandGo(item.value, lookupIn(context.imageEnv)))
  return expanded
}

/** The environment a command test's setup and command see, and the command line expanded as CST expands it. */
export function commandEnvironment(
  context: RunContext,
  test: Pick<CommandTest, 'args' | 'command' | 'envVars' | 'setup'>,
): {command: string[]; commandEnv: string[]; setupEnv: string[]} {
  const globals = globalEnv(context)
  const afterGlobals = new Map([...context.imageEnv, ...globals])
  const own = new Map<string, string>()
  for (const item of test.envVars ?? []) own.set(item.key, expandGo(item.value, lookupIn(afterGlobals)))
  const committed = (test.setup?.length ?? 0) > 0 ? new Map([...afterGlobals, ...own]) : afterGlobals
  const command = [test.command, ...(test.args ?? [])].map((part) => expandGo(part, lookupIn(committed)))
  const setupEnv = new Map([...globals, ...own])
  const commandEnv = new Map([...globals, ...((test.setup?.length ?? 0) > 0 ? own : [])])
  for (const item of test.envVars ?? []) commandEnv.set(item.key, item.value)
  for (const [key, value] of runOptionsEnv(context)) commandEnv.set(key, value)
  return {command, commandEnv: entries(commandEnv), setupEnv: entries(setupEnv)}
}

/** The environment of a wait test's container (extension): globals, the test's own, the run options'. */
export function waitEnvironment(context: RunContext, own: EnvVar[] = []): string[] {
  const env = globalEnv(context)
  for (const item of own) env.set(item.key, item.value)
  for (const [key, value] of runOptionsEnv(context)) env.set(key, value)
  return entries(env)
}

/** The envFile's variables, then the passed-through ones (unset or empty ones are not passed, as CST). */
function runOptionsEnv(context: RunContext): Map<string, string> {
  const env = new Map<string, string>()
  for (const [key, value] of context.envFileVars) if (key !== '' && value !== '') env.set(key, value)
  for (const name of context.runOptions.envVars ?? []) {
    const value = process.env[name]
    if (value) env.set(name, value)
  }

  return env
}

function entries(env: Map<string, string>): string[] {
  return [...env].map(([key, value]) => `${key}=${value}`)
}

/** The container settings every container of command and wait tests gets from containerRunOptions. */
export function hostSettings(
  options: ContainerRunOptions,
): Pick<ContainerSpec, 'binds' | 'capAdd' | 'privileged' | 'user'> {
  const {bindMounts, capabilities, privileged, user} = options
  return {
    binds: bindMounts?.length ? bindMounts : undefined,
    // CST sends them as HostConfig.Capabilities, which engines since 20.10 ignore; its documentation says --cap-add
    capAdd: capabilities?.length ? capabilities : undefined,
    privileged,
    user: user || undefined,
  }
}

/** The network of a test's containers: its own, else the file's, else undefined (the engine's default). */
export function networkOf(options: ContainerRunOptions, own?: string): string | undefined {
  return own ?? options.network
}

/**
 * Resolves a relative envFile as CST would find it (relative to the working directory), else beside the test
 * file (`baseDir`): a config whose envFile is absolute. A UsageError when it is in neither place.
 */
export async function resolveEnvFile(config: VerifyConfig, baseDir: string): Promise<VerifyConfig> {
  const file = config.containerRunOptions?.envFile
  if (!file || path.isAbsolute(file)) return config
  const candidates = [...new Set([path.resolve(baseDir, file), path.resolve(file)])]
  for (const candidate of candidates) {
    if (
      await access(candidate).then(
        () => true,
        () => false,
      )
    ) {
      return {...config, containerRunOptions: {...config.containerRunOptions, envFile: candidate}}
    }
  }

  throw new UsageError(`containerRunOptions.envFile ${file} not found (looked for ${candidates.join(' and ')})`, {
    code: 'VERIFY_ENV_FILE',
    details: {envFile: file},
    suggestions: ['give its path relative to the working directory or to the test file, or an absolute one'],
  })
}

/** An env file larger than this is refused: it is read whole. */
export const MAX_ENV_FILE_BYTES = 1024 * 1024

/** Reads and parses the envFile (a UsageError when it cannot be read or parsed). */
export async function readEnvFile(file: string | undefined, signal?: AbortSignal): Promise<Map<string, string>> {
  if (!file) return new Map()
  let text: string
  try {
    signal?.throwIfAborted()
    await using handle = await open(file, 'r')
    const buffer = Buffer.alloc(MAX_ENV_FILE_BYTES + 1)
    const {bytesRead} = await handle.read(buffer, 0, buffer.length, 0)
    if (bytesRead > MAX_ENV_FILE_BYTES) {
      throw new UsageError(`containerRunOptions.envFile ${file} is larger than ${MAX_ENV_FILE_BYTES} bytes`, {
        code: 'VERIFY_ENV_FILE',
        details: {envFile: file},
      })
    }

    text = buffer.subarray(0, bytesRead).toString('utf8')
  } catch (error) {
    if (error instanceof UsageError || signal?.aborted) throw error
    throw new UsageError(`containerRunOptions.envFile ${file} cannot be read: ${(error as Error).message}`, {
      cause: error,
      code: 'VERIFY_ENV_FILE',
      details: {envFile: file},
    })
  }

  try {
    return parseDotenv(text)
  } catch (error) {
    if (!(error instanceof DotenvError)) throw error
    throw new UsageError(`containerRunOptions.envFile ${file} is not a valid env file: ${error.message}`, {
      cause: error,
      code: 'VERIFY_ENV_FILE',
      details: {envFile: file},
      suggestions: ['write one KEY=value per line'],
    })
  }
}

export {envMap} from './go-expand.js'
