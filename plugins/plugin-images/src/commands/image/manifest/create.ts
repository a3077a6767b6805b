import {Args} from '@oclif/core'
import {BaseCommand, coreServices, recipeHostFlags} from '@transship/kit'
import {parseReference} from '@transship/kit/reference'

import {createList, type ManifestListDraft} from '../../../registry/manifest-list.js'
import {Registries} from '../../../registry/registries.js'

export default class ImageManifestCreate extends BaseCommand<typeof ImageManifestCreate> {
  static override args = {
    list: Args.string({description: 'The multi-platform image to make, e.g. localhost:5000/app:1.', required: true}),
    images: Args.string({description: 'Its per-platform images, already in the same registry.', required: true}),
  }
  static override description = `Start a multi-platform image (an OCI image index, what \`docker manifest create\` makes) from per-platform images already pushed to the same registry. Each image's platform is read from its config; change it with \`image manifest annotate\`, then \`image manifest push\`. An image that is not in the registry is an error.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> localhost:5000/app:1 localhost:5000/app:1-amd64 localhost:5000/app:1-arm64',
  ]
  static override flags = {recipe: recipeHostFlags.recipe}
  static override strict = false
  static override summary = 'Create a multi-platform image list from images in a registry.'

  async run(): Promise<ManifestListDraft> {
    const {argv} = await this.parse(ImageManifestCreate)
    const [list, ...images] = argv as string[]
    for (const name of [list!, ...images]) parseReference(name)
    const services = await coreServices(this.config)
    await using registries = new Registries(await services.recipeRegistries(this.flags.recipe), this.logger())
    const draft = await createList(registries, list!, images, this.signal)
    for (const entry of draft.manifests) {
      const {platform} = entry.descriptor
      this.log(
        `${entry.image}: ${[platform.os, platform.architecture, platform.variant].filter(Boolean).join('/')} ${entry.descriptor.digest}`,
      )
    }

    return draft
  }
}
