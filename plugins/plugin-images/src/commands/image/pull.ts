import {Args, Flags} from '@oclif/core'
import {BaseCommand, coreServices, hostFlag, openHosts, recipeHostFlags, UsageError} from '@transship/kit'
import {parseImageLocation} from '@transship/kit/oci'
import {formatReference, parseReference} from '@transship/kit/reference'
import {formatBytes} from '@transship/kit/ui'
import path from 'node:path'

import {pullThroughEngine} from '../../registry/engine-registry.js'
import {pullToArchive, pullToDockerArchive, pullToLayout} from '../../registry/pull.js'
import {Registries} from '../../registry/registries.js'

export interface PullResult {
  blobs?: number
  bytes?: number
  digest?: string
  id?: string
  image: string
  into: string
  seconds: number
}

export default class ImagePull extends BaseCommand<typeof ImagePull> {
  static override args = {
    image: Args.string({description: 'The image, e.g. localhost:5000/team/app:1.', required: true}),
  }
  static override description = `Pull an image from a registry into an engine (local, a recipe host, or ssh://user@host), or with -o straight into an OCI layout directory (oci:DIR) or OCI archive (oci-archive:FILE), with no engine: blobs as the registry serves them, digests checked, the manifest byte for byte; or into a docker-archive (docker-archive:FILE, layers decompressed) that every Docker version loads, for an air-gapped host. A multi-platform image gives this machine's platform, or --platform, or every platform with --all-platforms (OCI outputs).

Credentials come from the recipe's variables or from \`docker login\` (config.json, credential helpers).`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> localhost:5000/team/app:1',
    '<%= config.bin %> <%= command.id %> registry.example.com/team/app:1 --host ssh://deploy@edge.example.com',
    '<%= config.bin %> <%= command.id %> registry.example.com/team/app:1 -o oci-archive:app-1.oci.tar',
    '<%= config.bin %> <%= command.id %> registry.example.com/team/app:1 -o docker-archive:app-1.tar',
    '<%= config.bin %> <%= command.id %> localhost:5000/base/debian:bookworm -o oci:out/debian --all-platforms',
  ]
  static override flags = {
    ...recipeHostFlags,
    'all-platforms': Flags.boolean({description: 'Every platform of a multi-platform image (OCI outputs).'}),
    host: hostFlag('pull into'),
    output: Flags.string({
      char: 'o',
      description:
        'oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE[:NAME:TAG] (what Docker 20.10 loads) instead of an engine; REF names the image in the layout (default: its tag).',
    }),
    platform: Flags.string({description: 'os/arch[/variant] of a multi-platform image, e.g. linux/arm64.'}),
  }
  static override summary = 'Pull an image into an engine, or into an OCI layout or archive.'

  async run(): Promise<PullResult> {
    const started = performance.now()
    const reference = parseReference(this.args.image)
    const services = await coreServices(this.config)
    await using registries = new Registries(await services.recipeRegistries(this.flags.recipe), this.logger())
    const client = registries.client(reference.domain)
    const image = formatReference(reference)
    let result: PullResult
    if (this.flags.output) {
      const location = parseImageLocation(this.flags.output, {code: 'FLAG_INVALID'})
      if (location.kind === 'engine') {
        throw new UsageError(`-o ${this.flags.output}: give oci:DIR, oci-archive:FILE or docker-archive:FILE`, {
          code: 'FLAG_INVALID',
        })
      }

      const target = path.resolve(location.path)
      const options = {
        allPlatforms: this.flags['all-platforms'],
        platform: this.flags.platform,
        ref: location.ref,
        signal: this.signal,
      }
      const pull = {'docker-archive': pullToDockerArchive, oci: pullToLayout, 'oci-archive': pullToArchive}[
        location.kind
      ]
      const report = await pull(client, reference, target, options)
      result = {...report, image, into: this.flags.output, seconds: (performance.now() - started) / 1000}
    } else {
      await using hosts = await openHosts(this.config, this.flags, [this.flags.host])
      const engine = await hosts.engine(this.flags.host, this.signal)
      await client.ping(this.signal)
      const pulled = await pullThroughEngine(engine, reference, await registries.credentials(reference.domain), {
        onMessage: (message) => this.logger().debug(`${message.status ?? ''} ${message.progress ?? ''}`),
        signal: this.signal,
      })
      result = {...pulled, image, into: this.flags.host, seconds: (performance.now() - started) / 1000}
    }

    this.log(
      `${image} → ${result.into}: ${result.digest ?? result.id}${result.bytes === undefined ? '' : ` (${result.blobs} blobs, ${formatBytes(result.bytes)})`}, ${result.seconds.toFixed(1)} s`,
    )
    return result
  }
}
