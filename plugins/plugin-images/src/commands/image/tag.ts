import {Args} from '@oclif/core'
import {BaseCommand, hostFlag, openHosts, recipeHostFlags} from '@transship/kit'
import {checkImageOrId, formatReference, parseReference} from '@transship/kit/reference'

import {requireImage, tagImage} from '../../image-store.js'

export interface TagResult {
  host: string
  image: string
  tags: string[]
}

export default class ImageTag extends BaseCommand<typeof ImageTag> {
  static override args = {
    source: Args.string({description: 'The image to name.', required: true}),
    target: Args.string({description: 'New names for it.', required: true}),
  }
  static override description = `Give an image more names, on any host: the local engine, a host of a recipe, or
ssh://user@host[:port]. The new names point at exactly the image the source names now (by ID).`
  static override examples = [
    '<%= config.bin %> <%= command.id %> app:1 app:latest registry.example.com/team/app:1',
    '<%= config.bin %> <%= command.id %> app:1 app:stable --host ssh://deploy@edge.example.com',
    '<%= config.bin %> <%= command.id %> app:1 app:stable --recipe recipes/fleet.yaml --host edge',
  ]
  static override flags = {
    ...recipeHostFlags,
    host: hostFlag('tag on'),
  }
  static override strict = false
  static override summary = 'Tag an image on a host.'

  async run(): Promise<TagResult> {
    const {argv} = await this.parse(ImageTag)
    const [source, ...targets] = argv as string[]
    checkImageOrId(source!)
    const names = targets.map((target) => formatReference(parseReference(target)))
    await using hosts = await openHosts(this.config, this.flags, [this.flags.host])
    const engine = await hosts.engine(this.flags.host, this.signal)
    const image = await requireImage(engine, source!, this.signal)
    for (const target of targets) {
      await tagImage(engine, image.Id, target, this.signal)
    }

    this.log(`${this.flags.host}: ${names.join(', ')} → ${source} (${image.Id.slice(0, 19)})`)
    return {host: this.flags.host, image: image.Id, tags: names}
  }
}
