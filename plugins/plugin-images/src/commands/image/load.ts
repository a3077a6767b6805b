import {Args} from '@oclif/core'
import {BaseCommand, hostFlag, openHosts, recipeHostFlags, UsageError} from '@transship/kit'
import {type ArchiveFormat, type Compression} from '@transship/kit/archive'
import {formatTable, ProgressReporter} from '@transship/kit/ui'

import {
  checkArchiveFile,
  loadArchiveFile,
  loadArchiveStream,
  type LoadOptions,
  type LoadResult,
} from '../../image-load.js'

export default class ImageLoad extends BaseCommand<typeof ImageLoad> {
  static override args = {
    file: Args.string({description: 'Archive to load, or - for stdin.', ignoreStdin: true, required: true}),
  }
  static override description = `Load an image archive into a host: the local engine, a recipe host, or ssh://user@host[:port].

Reads docker-archives (\`docker save\` of any Docker version, skopeo, go-containerregistry) and OCI image layout archives, uncompressed or compressed with gzip, zstd, bzip2 or xz. A file is checked completely before anything is sent: a truncated, damaged or foreign file is refused (exit 2) and the engine is not touched. It is then sent as it is when the engine reads its layout and compression, and re-encoded on the way otherwise (Docker 20.10 reads no OCI-only archive and no zstd; Docker 25+ needs an index.json that lists every image). Afterwards each image of the archive is looked up on the engine and its layers are compared with the archive's: a difference fails the load (exit 5).

From stdin (-) the archive streams straight to the engine (zstd is decompressed locally for engines older than Docker 23) and is checked on the way: a broken archive aborts the upload before its end, so the engine loads nothing.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> app-1.tar',
    '<%= config.bin %> <%= command.id %> apps.tar.zst --host ssh://deploy@edge.example.com',
    '<%= config.bin %> <%= command.id %> app-1.oci.tar.gz --recipe recipes/fleet.yaml --host edge --json',
    'ssh build transship image save app:1 -o - | <%= config.bin %> <%= command.id %> -',
  ]
  static override flags = {
    ...recipeHostFlags,
    host: hostFlag('load into'),
  }
  static override summary = 'Load an image archive into a host.'

  async run(): Promise<LoadResult> {
    const {file} = this.args
    const fromStdin = file === '-'
    if (fromStdin && process.stdin.isTTY) {
      throw new UsageError('an image archive on stdin was asked for (-), but stdin is a terminal', {
        suggestions: ['pipe the archive in (… | transship image load -), or give a file'],
      })
    }

    const progress = new ProgressReporter({json: this.jsonEnabled()})
    // a file is read and checked completely before any host is contacted
    const checked = fromStdin
      ? undefined
      : await checkArchiveFile(file, progress, this.signal).catch((error: unknown) => {
          progress.stop()
          throw error
        })
    await using hosts = await openHosts(this.config, this.flags, [this.flags.host])
    const engine = await hosts.engine(this.flags.host, this.signal)
    const facts = await engine.facts(this.signal)
    const overSsh = hosts.describe(this.flags.host).kind === 'ssh'
    const options: LoadOptions = {engine, facts, host: this.flags.host, overSsh, progress, signal: this.signal}
    let result: LoadResult
    try {
      result = checked ? await loadArchiveFile(checked, options) : await loadArchiveStream(process.stdin, options)
    } finally {
      progress.stop()
    }

    const rows = result.images.map((image) => [
      image.tags.join(', ') || '<none>',
      image.id.replace('sha256:', '').slice(0, 12),
      String(image.layers.length),
    ])
    this.log(formatTable(['IMAGE', 'ID', 'LAYERS'], rows))
    const how = result.sent.reencoded
      ? `re-encoded as ${describe(result.sent.format, result.sent.compression)}`
      : describe(result.sent.format, result.sent.compression)
    this.logger().info(
      `Loaded ${result.images.length} image${result.images.length === 1 ? '' : 's'} into ${this.flags.host} (${how}); layers checked`,
    )
    return result
  }
}

function describe(format: ArchiveFormat, compression: Compression): string {
  return compression === 'none' ? format : `${format}, ${compression}`
}
