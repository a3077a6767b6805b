import {Args, Flags} from '@oclif/core'
import {BaseCommand, coreServices, hostFlag, openHosts, recipeHostFlags} from '@transship/kit'
import {isFileLocation, parseImageLocation} from '@transship/kit/oci'
import {checkImageOrId, parseReference} from '@transship/kit/reference'
import {formatBytes, formatTable} from '@transship/kit/ui'

import {pushImage, type PushResult} from '../../registry/push-image.js'
import {Registries} from '../../registry/registries.js'

export default class ImagePush extends BaseCommand<typeof ImagePush> {
  static override args = {
    image: Args.string({
      description:
        'An image of the engine (reference or ID), or an image on disk: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF].',
      required: true,
    }),
  }
  static override description = `Push images to a registry: through an engine (its own push), or straight from an archive or OCI layout written by \`image save\` or \`rootfs build\`, with no engine involved.

Straight pushes keep the manifest and blob digests of the input exactly (nothing is recompressed); only blobs the repository lacks are sent: existing ones are skipped, ones another repository of the registry has are mounted from it, the rest are uploaded a few at a time, retried and resumed. The manifest digest is reported and checked against the registry.

--to is a registry of the recipe (--recipe), a registry host, or a full reference; --as renames the image there. Credentials come from the recipe's variables or from \`docker login\` (config.json, credential helpers).`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> app:1 --to localhost:5000',
    '<%= config.bin %> <%= command.id %> app:1 --recipe recipes/registry.yaml --to corp --as team/app:1.4',
    '<%= config.bin %> <%= command.id %> oci:out/debian --to registry.example.com/base/debian:bookworm',
    '<%= config.bin %> <%= command.id %> docker-archive:app-1.tar --to localhost:5000 --as app:1',
    '<%= config.bin %> <%= command.id %> registry.example.com/team/app:1 --host ssh://deploy@build.example.com',
  ]
  static override flags = {
    ...recipeHostFlags,
    as: Flags.string({description: 'Name (repository:tag) in the registry, e.g. team/app:1.4.'}),
    host: hostFlag('push from'),
    to: Flags.string({description: 'Registry (a recipe registry or a host) or full reference to push to.'}),
  }
  static override strict = false
  static override summary = 'Push images to a registry, through an engine or from an archive.'

  async run(): Promise<PushResult[]> {
    const {argv} = await this.parse(ImagePush)
    // every name is checked before a registry or an engine is asked anything
    if (this.flags.as !== undefined) parseReference(this.flags.as)
    if (this.flags.to?.includes('/')) parseReference(this.flags.to)
    for (const source of argv as string[]) {
      const location = parseImageLocation(source)
      if (location.kind === 'engine') checkImageOrId(location.ref)
    }

    const services = await coreServices(this.config)
    await using registries = new Registries(await services.recipeRegistries(this.flags.recipe), this.logger())
    const needsEngine = (argv as string[]).some((source) => !isFileLocation(source))
    await using hosts = needsEngine ? await openHosts(this.config, this.flags, [this.flags.host]) : undefined
    const results: PushResult[] = []
    for (const source of argv as string[]) {
      const result = await pushImage(
        {as: this.flags.as, host: this.flags.host, source, to: this.flags.to},
        {hosts, log: this.logger(), registries, signal: this.signal},
      )
      results.push(result)
    }

    if (!this.jsonEnabled()) {
      this.log(
        formatTable(
          ['IMAGE', 'PUSHED TO', 'DIGEST', 'VIA', 'BLOBS', 'TIME'],
          results.map((result) => [
            result.source,
            result.target,
            result.digest,
            result.via,
            result.blobs
              ? `${result.blobs.uploaded} uploaded (${formatBytes(result.blobs.bytes)}), ${result.blobs.skipped} present, ${result.blobs.mounted} mounted`
              : '',
            `${result.seconds.toFixed(1)} s`,
          ]),
        ),
      )
    }

    return results
  }
}
