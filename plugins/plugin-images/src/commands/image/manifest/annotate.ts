import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '@transship/kit'

import {annotateList, type ManifestListDraft} from '../../../registry/manifest-list.js'

export default class ImageManifestAnnotate extends BaseCommand<typeof ImageManifestAnnotate> {
  static override args = {
    list: Args.string({description: 'The list made by `image manifest create`.', required: true}),
    image: Args.string({description: 'One of its images.', required: true}),
  }
  static override description =
    'Set the platform an image of a multi-platform list is for, before `image manifest push`.'
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> localhost:5000/app:1 localhost:5000/app:1-arm64 --arch arm64 --variant v8',
  ]
  static override flags = {
    arch: Flags.string({description: 'Architecture, e.g. arm64.'}),
    os: Flags.string({description: 'Operating system, e.g. linux.'}),
    'os-version': Flags.string({description: 'Operating system version (Windows images).'}),
    variant: Flags.string({description: 'Architecture variant, e.g. v8.'}),
  }
  static override summary = 'Set the platform of an image of a multi-platform list.'

  async run(): Promise<ManifestListDraft> {
    const {flags} = this
    const draft = await annotateList(this.args.list, this.args.image, {
      architecture: flags.arch,
      os: flags.os,
      osVersion: flags['os-version'],
      variant: flags.variant,
    })
    this.log(`${this.args.list}: ${this.args.image} annotated`)
    return draft
  }
}
