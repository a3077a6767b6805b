/**
 * Runs a verification config against an image on one engine: the static checks (files, through the archive API
 * of a container that is never started; the image's config), then the command tests and the wait tests. Every
 * container and image the run makes is removed, also on failure, timeout or abort.
 */
import type {EngineClient} from '@transship/kit'

import {EngineError, UsageError} from '@transship/kit'

import type {TestResult, VerifyConfig, VerifyReport} from '../config/types.js'

import {runCommandTests, type RunContext} from './command-tests.js'
import {seconds, timed} from './results.js'
import {type ImageInspect, metadataTest, runFileTests} from './static-checks.js'
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

async function run(
  engine: EngineClient,
  image: string,
  config: VerifyConfig,
  options: RunVerificationOptions,
): Promise<VerifyReport> {
  const started = performance.now()
  const {log, signal} = options
  const inspected = await inspectImage(engine, image, options)
  // every container is made from the ID: a tag moved meanwhile does not change what is checked
  const imageId = inspected.Id
  log?.debug(`verify: ${image} on host "${options.host}" is ${imageId}`)
  const context: RunContext = {
    globalEnvVars: config.globalEnvVars ?? [],
    log,
    runOptions: config.containerRunOptions ?? {},
    signal,
  }
  const results: TestResult[] = []
  if (config.metadataTest) {
    const test = config.metadataTest
    results.push(await timed('metadataTest', 'Metadata Test', signal, () => metadataTest(inspected, test)))
  }

  results.push(
    ...(await runFileTests(engine, imageId, config.fileExistenceTests ?? [], config.fileContentTests ?? [], {
      log,
      signal,
    })),
    ...(await runCommandTests(engine, imageId, config.commandTests ?? [], context)),
    ...(await runWaitTests(engine, imageId, config.waitTests ?? [], context)),
  )
  for (const [i] of (config.licenseTests ?? []).entries()) {
    results.push({
      message: 'licenseTests are not supported',
      name: `License Test ${i + 1}`,
      seconds: 0,
      status: 'skip',
      suite: 'licenseTests',
    })
  }

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
