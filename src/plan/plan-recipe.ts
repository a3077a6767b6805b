import type {Interfaces} from '@oclif/core'
import type {Logger} from '@transship/kit'

import type {RunHosts} from '../hosts/run-hosts.js'

import {type Recipe, recipeContext} from '../recipe/load.js'
import {openHosts, readRecipe} from '../services.js'
import {makePlan, type Plan} from './plan.js'

export interface RecipePlan {
  hosts: RunHosts
  plan: Plan
  recipe: Recipe
}

/** Loads a recipe, opens its hosts and plans it. The caller closes `hosts`. */
export async function planRecipe(
  config: Interfaces.Config,
  file: string,
  options: {acceptNewHostKeys?: boolean; log: Logger; signal: AbortSignal},
): Promise<RecipePlan> {
  const recipe = await readRecipe(config, file, options.log)
  const hosts = openHosts({acceptNewHostKeys: options.acceptNewHostKeys, log: options.log, recipe})
  try {
    const plan = await makePlan(recipe.sections, {
      hosts,
      log: options.log,
      recipe: recipeContext(recipe),
      signal: options.signal,
    })
    return {hosts, plan, recipe}
  } catch (error) {
    await hosts.close()
    throw error
  }
}
