import {Args} from '@oclif/core'
import {BaseCommand, coreServices, recipeHostFlags} from '@transship/kit'

import {pushList} from '../../../registry/manifest-list.js'
import {Registries} from '../../../registry/registries.js'

export default class ImageManifestPush extends BaseCommand<typeof ImageManifestPush> {
  static override args = {
    list: Args.string({description: 'The list made by `image manifest create`.', required: true}),
  }
  static override description = `Push a multi-platform list as an OCI image index, and print its digest. Images of the list kept in other repositories of the registry are brought into the list's repository first (their blobs mounted).`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %> localhost:5000/app:1']
  static override flags = {recipe: recipeHostFlags.recipe}
  static override summary = 'Push a multi-platform list to its registry.'

  async run(): Promise<{digest: string; list: string; manifests: number}> {
    const services = await coreServices(this.config)
    await using registries = new Registries(await services.recipeRegistries(this.flags.recipe), this.logger())
    const result = await pushList(registries, this.args.list, this.signal)
    this.log(`${result.list}: ${result.digest} (${result.manifests} platforms)`)
    return result
  }
}
