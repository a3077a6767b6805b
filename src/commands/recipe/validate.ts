import {Args} from '@oclif/core'
import {isTransshipError, RecipeError, type RecipeIssue} from '@transship/kit'
import {BaseCommand} from '@transship/kit'

import {readRecipe} from '../../services.js'

export interface ValidateResult {
  file: string
  hosts: string[]
  sections: string[]
}

export default class RecipeValidate extends BaseCommand<typeof RecipeValidate> {
  static override args = {file: Args.string({description: 'Recipe files to check.', required: true})}
  static override description = `Check recipe files without reaching any host.

Every problem is reported on one line with its file, line, column and key path, e.g.
  recipes/x.yaml:12:7 images[0].copy[1]: unknown host "edg"
Exits 2 when a recipe is invalid.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> recipes/quickstart.yaml',
    '<%= config.bin %> <%= command.id %> recipes/*.yaml --json',
  ]
  static override strict = false
  static override summary = 'Check recipe files: schema, unknown keys, references.'

  async run(): Promise<ValidateResult[]> {
    const {argv} = await this.parse(RecipeValidate)
    const log = this.logger()
    const results: ValidateResult[] = []
    const issues: RecipeIssue[] = []
    for (const file of argv as string[]) {
      try {
        const recipe = await readRecipe(this.config, file, log, this.signal)
        const result = {
          file,
          hosts: Object.keys(recipe.hosts),
          sections: recipe.sections.map((section) => section.provider.section),
        }
        results.push(result)
        this.log(
          `${file}: valid (hosts: ${result.hosts.join(', ')}; sections: ${result.sections.join(', ') || 'none'})`,
        )
      } catch (error) {
        if (!(isTransshipError(error) && error instanceof RecipeError)) throw error
        issues.push(...error.issues)
      }
    }

    if (issues.length > 0) throw new RecipeError(issues)
    return results
  }
}
