import {BaseCommand} from '@transship/kit'

import {hostFlags, recipeArg} from '../flags.js'
import {planRecipe} from '../plan/plan-recipe.js'
import {type PlannedStep, plannedSteps, renderPlan} from '../ui/plan-view.js'

export interface PlanResult {
  recipe: string
  steps: PlannedStep[]
  upToDate: boolean
}

export default class Plan extends BaseCommand<typeof Plan> {
  static override args = {recipe: recipeArg}
  static override description = `Show what \`apply\` would do, per host, without changing anything.

Reads the recipe, asks each host's engine what it has, and lists the steps that would bring every host to
what the recipe describes. Nothing is changed on any host.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> recipes/quickstart.yaml',
    '<%= config.bin %> <%= command.id %> recipes/fleet.yaml --json',
  ]
  static override flags = {...hostFlags}
  static override summary = 'Show what apply would change, per host.'

  async run(): Promise<PlanResult> {
    const {hosts, plan, recipe} = await planRecipe(this.config, this.args.recipe, {
      acceptNewHostKeys: this.flags['accept-new-host-key'],
      log: this.logger(),
      signal: this.signal,
    })
    try {
      const steps = plannedSteps(plan.steps)
      this.log(renderPlan(recipe.file, steps, hosts))
      return {recipe: recipe.file, steps, upToDate: steps.length === 0}
    } finally {
      await hosts.close()
    }
  }
}
