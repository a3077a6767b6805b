import {BaseCommand, hostFlag, openHosts, recipeHostFlags} from '@transship/kit'
import {formatBytes, formatTable} from '@transship/kit/ui'

import {listImages} from '../../image-store.js'

export interface ListedImage {
  created: string
  id: string
  size: number
  tags: string[]
}

export default class ImageLs extends BaseCommand<typeof ImageLs> {
  static override description =
    'List the images a host holds: the local engine, a recipe host, or ssh://user@host[:port].'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --host ssh://deploy@edge.example.com --json',
  ]
  static override flags = {
    ...recipeHostFlags,
    host: hostFlag('list'),
  }
  static override summary = 'List the images of a host.'

  async run(): Promise<ListedImage[]> {
    await using hosts = await openHosts(this.config, this.flags, [this.flags.host])
    const engine = await hosts.engine(this.flags.host, this.signal)
    const images = (await listImages(engine, this.signal)).map((image) => ({
      created: new Date(image.Created * 1000).toISOString(),
      id: image.Id,
      size: image.Size,
      tags: (image.RepoTags ?? []).filter((tag) => tag !== '<none>:<none>'),
    }))
    const rows = images.flatMap((image) =>
      (image.tags.length > 0 ? image.tags : ['<none>']).map((tag) => [
        tag,
        image.id.replace('sha256:', '').slice(0, 12),
        formatBytes(image.size),
        image.created,
      ]),
    )
    this.log(formatTable(['IMAGE', 'ID', 'SIZE', 'CREATED'], rows))
    return images
  }
}
