import {BaseCommand} from '@transship/kit'

import {recipeJsonSchema} from '../../recipe/schema.js'
import {sectionProviders} from '../../sections.js'

export default class RecipeSchema extends BaseCommand<typeof RecipeSchema> {
  static override description = `Print the JSON Schema of recipes, with the sections of the installed plugins.

Editors use it for completion and checks: put
  # yaml-language-server: $schema=./schema.json
at the top of a recipe.`
  static override examples = ['<%= config.bin %> <%= command.id %> > recipes/schema.json']
  static override summary = 'Print the JSON Schema of recipe files.'

  async run(): Promise<object> {
    const schema = recipeJsonSchema(await sectionProviders(this.config, this.logger()))
    if (!this.jsonEnabled()) this.log(JSON.stringify(schema, null, 2))
    return schema
  }
}
