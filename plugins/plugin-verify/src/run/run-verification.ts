/**
 * Runs a verification config against an image on one engine, as container-structure-test's docker driver does:
 * the static checks (the image's config; files and licenses, through the archive API of a container that is never
 * started), then the command tests and the wait tests. Every container and image the run makes is removed, also
 * on failure, timeout or abort; what runs killed outright left on the engine is removed by the next run (see
 * leftovers.ts).
 */
import type {EngineClient} from '@transship/kit'

import {EngineError, UsageError} from '@transship/kit'

import type {TestResult, VerifyConfig, VerifyReport} from '../config/types.js'

import {runCommandTests} from './command-tests.js'
import {envMap} from './go-expand.js'
import {removeLeftovers} from './leftovers.js'
import {seconds, timed} from './results.js'
import {globalEnv, hostSettings, readEnvFile, type RunContext} from './run-options.js'
import {type ImageInspect, isMetadataEmpty, metadataTest, runFileTests} from './static-checks.js'
import {runWaitTests} from './wait-tests.js'

export interface RunVerificationOptions {
  /** the engine's host name, for the report and messages */
  host: string
  log?: {debug(m: string): void}
  /** cancels the run: what it created is still removed, then the abort's reason is thrown */
  signal: AbortSignal
}

export async function runVerification(
  engine: EngineClient,
  image: string,
  config: VerifyConfig,
  options: RunVerificationOptions,
): Promise<VerifyReport> {
  try {
    return await run(engine, image, config, options)
  } catch (error) {
    // whatever broke first when the run was cancelled (a request, a stream), the reason is the abort's
    if (options.signal.aborted) throw options.signal.reason
    throw error
  }
}

/** Engines whose leftovers this process already removed (once per engine and process is enough). */
const swept = new WeakSet<EngineClient>()

async function run(
  engine: EngineClient,
  image: string,
  config: VerifyConfig,
  options: RunVerificationOptions,
): Promise<VerifyReport> {
  const started = performance.now()
  const {log, signal} = options
  if (!swept.has(engine)) {
    swept.add(engine)
    await removeLeftovers(engine, signal, log)
  }

  const runOptions = config.containerRunOptions ?? {}
  const envFileVars = await readEnvFile(runOptions.envFile, signal)
  const inspected = await inspectImage(engine, image, options)
  // every container is made from the ID: a tag moved meanwhile does not change what is checked
  const imageId = inspected.Id
  log?.debug(`verify: ${image} on host "${options.host}" is ${imageId}`)
  const imageEnv = envMap(inspected.Config?.Env)
  const context: RunContext = {
    envFileVars,
    globalEnvVars: config.globalEnvVars ?? [],
    imageEnv,
    log,
    runOptions,
    signal,
  }
  const results: TestResult[] = []
  if (config.metadataTest && !isMetadataEmpty(config.metadataTest)) {
    const test = config.metadataTest
    results.push(await timed('metadataTest', 'Metadata Test', signal, () => metadataTest(inspected, test)))
  }

  results.push(
    ...(await runFileTests(
      engine,
      imageId,
      {
        content: config.fileContentTests ?? [],
        existence: config.fileExistenceTests ?? [],
        license: config.licenseTests ?? [],
      },
      {binds: hostSettings(runOptions).binds, env: new Map([...imageEnv, ...globalEnv(context)]), log, signal},
    )),
    ...(await runCommandTests(engine, imageId, config.commandTests ?? [], context)),
    ...(await runWaitTests(engine, imageId, config.waitTests ?? [], context)),
  )

  return {
    host: options.host,
    image,
    imageId,
    repoDigests: inspected.RepoDigests ?? [],
    results,
    seconds: seconds(started),
  }
}

async function inspectImage(
  engine: EngineClient,
  image: string,
  options: RunVerificationOptions,
): Promise<ImageInspect> {
  try {
    return await engine.json<ImageInspect>({path: `/images/${encodeURIComponent(image)}/json`, signal: options.signal})
  } catch (error) {
    if (error instanceof EngineError && error.status === 404) {
      throw new UsageError(`image ${image} is not on host "${options.host}"`, {
        cause: error,
        code: 'IMAGE_NOT_FOUND',
        details: {host: options.host, image},
        suggestions: [`pull or copy it there first, e.g. transship image copy ${image} --to ${options.host}`],
      })
    }

    throw error
  }
}
