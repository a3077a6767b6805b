import type {Interfaces} from '@oclif/core'
import type {Logger, Services} from '@transship/kit'

import type {Recipe} from './recipe/load.js'

import {type HostSpec, RunHosts} from './hosts/run-hosts.js'
import {loadRecipe, recipeRegistries} from './recipe/load.js'
import {sectionProviders} from './sections.js'

export interface OpenHostsOptions {
  acceptNewHostKeys?: boolean
  /** names of recipe hosts, or ad-hoc ones: `local`, `ssh://user@host[:port]`, `unix:///path` */
  hosts?: string[]
  log: Logger
  recipe?: Recipe
}

/**
 * The hosts of a run: those of the recipe (with the implicit `local`), plus ad-hoc ones named on the
 * command line, each under the name it was given.
 */
export function openHosts(options: OpenHostsOptions): RunHosts {
  const specs: Record<string, HostSpec> = {...(options.recipe?.hosts ?? {local: {engine: 'local'}})}
  for (const name of options.hosts ?? []) specs[name] ??= RunHosts.specFromFlag(name)
  return new RunHosts(specs, {
    acceptNewHostKeys: options.acceptNewHostKeys,
    baseDir: options.recipe?.dir,
    log: options.log,
  })
}

export async function readRecipe(
  config: Interfaces.Config,
  file: string,
  log: Logger,
  signal?: AbortSignal,
): Promise<Recipe> {
  return loadRecipe(file, await sectionProviders(config, log), {signal})
}

/** The services the core hands to plugin commands (`transship:services` hook). */
export function coreServices(config: Interfaces.Config, log: Logger): Services {
  return {
    async openHosts(options) {
      const recipe = options.recipe ? await readRecipe(config, options.recipe, log) : undefined
      return openHosts({acceptNewHostKeys: options.acceptNewHostKeys, hosts: options.hosts, log, recipe})
    },
    async recipeRegistries(file) {
      return file ? recipeRegistries(await readRecipe(config, file, log)) : {}
    },
    async recipeSection(file, section) {
      const recipe = await readRecipe(config, file, log)
      const found = recipe.sections.find((item) => item.provider.section === section)
      return found && {dir: recipe.dir, value: found.value}
    },
  }
}
