import {Flags} from '@oclif/core'
import {BaseCommand, InterruptedError, StepFailedError} from '@transship/kit'
import {ProgressReporter} from '@transship/kit/ui'

import {hostFlags, recipeArg} from '../flags.js'
import {applyPlan, type StepReport} from '../plan/apply.js'
import {planRecipe} from '../plan/plan-recipe.js'
import {plannedSteps, renderPlan, renderReports} from '../ui/plan-view.js'

export interface ApplyResult {
  recipe: string
  steps: StepReport[]
  upToDate: boolean
}

export default class Apply extends BaseCommand<typeof Apply> {
  static override args = {recipe: recipeArg}
  static override description = `Bring every host to what the recipe describes.

Plans first (as \`plan\` does), then runs the steps as a graph: a step starts when the steps it needs are
done, a few at a time. Progress goes to stderr: bars on a terminal, JSON lines otherwise. Ctrl-C stops
cleanly: transfers are cancelled and nothing half-done is tagged. Running apply again on an up-to-date
world does nothing.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> recipes/quickstart.yaml',
    '<%= config.bin %> <%= command.id %> recipes/fleet.yaml --concurrency 8 --json',
  ]
  static override flags = {
    ...hostFlags,
    concurrency: Flags.integer({default: 4, description: 'How many steps may run at once.', max: 64, min: 1}),
  }
  static override summary = 'Apply a recipe: move what is missing, where it is missing.'

  async run(): Promise<ApplyResult> {
    const log = this.logger()
    const {hosts, plan, recipe} = await planRecipe(this.config, this.args.recipe, {
      acceptNewHostKeys: this.flags['accept-new-host-key'],
      log,
      signal: this.signal,
    })
    try {
      if (plan.steps.length === 0) {
        this.log(renderPlan(recipe.file, [], hosts))
        return {recipe: recipe.file, steps: [], upToDate: true}
      }

      if (!this.jsonEnabled()) this.logToStderr(renderPlan(recipe.file, plannedSteps(plan.steps), hosts))
      const progress = new ProgressReporter({json: this.jsonEnabled()})
      let reports: StepReport[]
      try {
        reports = await applyPlan(
          plan,
          {hosts, log, progress, signal: this.signal},
          {
            concurrency: this.flags.concurrency,
            onStepEnd: (report) =>
              progress.event(
                'step-end',
                {error: report.error, host: report.host, id: report.id, status: report.status},
                `${report.status === 'done' ? '✓' : '✗'} ${report.host}: ${report.title}${report.error ? `: ${report.error.message}` : ''}`,
              ),
            onStepStart: (step) =>
              progress.event(
                'step-start',
                {host: step.host, id: step.id, title: step.title},
                `→ ${step.host}: ${step.title}`,
              ),
          },
        )
      } finally {
        progress.stop()
      }

      this.log(renderReports(reports))
      const result = {recipe: recipe.file, steps: reports, upToDate: false}
      if (this.signal.aborted)
        throw new InterruptedError('interrupted: the steps that had not finished were cancelled', {details: result})
      const failed = reports.filter((report) => report.status !== 'done')
      if (failed.length > 0) {
        throw new StepFailedError(`${failed.length} of ${reports.length} steps did not complete`, {
          details: result,
          suggestions: ['fix the cause shown above, then run apply again: it resumes where this run stopped'],
        })
      }

      return result
    } finally {
      await hosts.close()
    }
  }
}
