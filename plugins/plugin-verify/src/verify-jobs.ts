import path from 'node:path'

import type {VerifyConfig} from './config/types.js'
import type {VerifyEntry} from './section.js'

import {loadVerifyConfig} from './config/load.js'
import {SCHEMA_VERSION} from './config/schema.js'
import {resolveEnvFile} from './run/run-options.js'

/** One image to check on one host with one config. */
export interface VerifyJob {
  config: VerifyConfig
  host: string
  image: string
}

/** The checks of a recipe's verify entry: its test file (relative to the recipe) or the tests written in it. */
export async function entryConfig(entry: VerifyEntry, recipeDir: string): Promise<VerifyConfig> {
  const file = entry.config === undefined ? undefined : path.resolve(recipeDir, entry.config)
  return resolveEnvFile(
    file ? await loadVerifyConfig(file) : {...entry.tests!, schemaVersion: SCHEMA_VERSION},
    file ? path.dirname(file) : recipeDir,
  )
}

/** The jobs of a recipe's verify section: each entry's image on each of its hosts (default local). */
export async function recipeJobs(entries: VerifyEntry[], recipeDir: string): Promise<VerifyJob[]> {
  const jobs: VerifyJob[] = []
  for (const entry of entries) {
    const config = await entryConfig(entry, recipeDir)
    for (const host of entry.on ?? ['local']) jobs.push({config, host, image: entry.image})
  }

  return jobs
}

/** Test files (--config), read and merged into one config. */
export async function filesConfig(files: string[]): Promise<VerifyConfig> {
  const configs = await Promise.all(
    files.map(async (file) => resolveEnvFile(await loadVerifyConfig(file), path.dirname(file))),
  )
  return mergeConfigs(configs)
}

/** Several test files as one (CST accepts several --config): their tests one after the other. */
function mergeConfigs(configs: VerifyConfig[]): VerifyConfig {
  const [first, ...rest] = configs
  const merged: VerifyConfig = {...first!}
  for (const config of rest) {
    for (const key of [
      'commandTests',
      'fileExistenceTests',
      'fileContentTests',
      'globalEnvVars',
      'waitTests',
      'licenseTests',
    ] as const) {
      const items = config[key] as undefined | unknown[]
      if (items)
        (merged as unknown as Record<string, unknown[]>)[key] = [
          ...((merged[key] as undefined | unknown[]) ?? []),
          ...items,
        ]
    }

    if (config.metadataTest) merged.metadataTest = {...merged.metadataTest, ...config.metadataTest}
    if (config.containerRunOptions)
      merged.containerRunOptions = {...merged.containerRunOptions, ...config.containerRunOptions}
  }

  return merged
}
