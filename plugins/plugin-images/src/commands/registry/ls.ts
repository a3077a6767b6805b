import {Args} from '@oclif/core'
import {BaseCommand, coreServices, recipeHostFlags} from '@transship/kit'

import {Registries} from '../../registry/registries.js'

export interface RegistryListing {
  registry: string
  /** the repositories, or with a repository given, its tags */
  repositories?: string[]
  repository?: string
  tags?: string[]
}

export default class RegistryLs extends BaseCommand<typeof RegistryLs> {
  static override args = {
    registry: Args.string({
      description: 'A registry of the recipe (--recipe) or a registry host, e.g. localhost:5000.',
      required: true,
    }),
    repository: Args.string({description: 'A repository: list its tags instead.'}),
  }
  static override description = `List the repositories of a registry (every page of /v2/_catalog), or the tags of one repository: for private registries that have no web page. Credentials come from the recipe's variables or from \`docker login\`.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> localhost:5000',
    '<%= config.bin %> <%= command.id %> localhost:5000 team/app',
    '<%= config.bin %> <%= command.id %> corp --recipe recipes/registry.yaml --json',
  ]
  static override flags = {recipe: recipeHostFlags.recipe}
  static override summary = 'List the repositories of a registry, or the tags of a repository.'

  async run(): Promise<RegistryListing> {
    const services = await coreServices(this.config)
    await using registries = new Registries(await services.recipeRegistries(this.flags.recipe), this.logger())
    const {registry, repository} = this.args
    const host = registries.has(registry) ? registries.location(registry).host : registry
    const client = registries.client(host)
    const items: string[] = []
    for await (const item of repository ? client.tags(repository, this.signal) : client.catalog(this.signal)) {
      items.push(item)
      if (!this.jsonEnabled()) this.log(item)
    }

    return repository ? {registry, repository, tags: items} : {registry, repositories: items}
  }
}
