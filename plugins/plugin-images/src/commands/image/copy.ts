import {Args, Flags} from '@oclif/core'
import {BaseCommand, ExitCode, openHosts, recipeHostFlags, TransshipError} from '@transship/kit'
import {parseReference} from '@transship/kit/reference'
import {formatBytes, formatDuration, formatTable, ProgressReporter} from '@transship/kit/ui'

import {copyImages, type HostCopyReport} from '../../transfer/copy.js'

export interface CopyResult {
  from: string
  hosts: HostCopyReport[]
}

export default class ImageCopy extends BaseCommand<typeof ImageCopy> {
  static override args = {refs: Args.string({description: 'Images to copy.', required: true})}
  static override description = `Copy images from one host to others over SSH, sending only the layers each destination lacks.

The source is read once, however many destinations; each destination gets, straight into its engine, an
archive without the layers it already holds, compressed for the wire (zstd where the engine takes it,
gzip otherwise; nothing on loopback). Nothing is installed on any host. Afterwards each destination's image
is checked against the source (layers and config); a difference fails the copy (exit 5). An interrupted
copy leaves no tag on an incomplete image; running it again completes it.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> app:1 --to ssh://deploy@edge.example.com',
    '<%= config.bin %> <%= command.id %> app:1 app:2 --to ssh://deploy@edge1 --to ssh://deploy@edge2',
    '<%= config.bin %> <%= command.id %> app:1 --from ssh://deploy@build.example.com --to local',
    '<%= config.bin %> <%= command.id %> app:1 --recipe recipes/fleet.yaml --from build --to edge --json',
  ]
  static override flags = {
    ...recipeHostFlags,
    compress: Flags.string({
      default: 'auto',
      description:
        'Compression on the wire: auto (zstd or gzip by what the destination engine takes; none on loopback), zstd, gzip or none.',
      options: ['auto', 'gzip', 'none', 'zstd'],
    }),
    from: Flags.string({
      default: 'local',
      description: 'Source host: a recipe host, local, or ssh://user@host[:port][/socket].',
    }),
    full: Flags.boolean({description: 'Send whole images, even the layers a destination already holds.'}),
    to: Flags.string({description: 'Destination host (repeatable).', multiple: true, required: true}),
  }
  static override strict = false
  static override summary = 'Copy images host to host, sending only what is missing.'

  async run(): Promise<CopyResult> {
    const {argv} = await this.parse(ImageCopy)
    const refs = argv as string[]
    for (const ref of refs) parseReference(ref)
    await using hosts = await openHosts(this.config, this.flags, [this.flags.from, ...this.flags.to])
    const progress = new ProgressReporter({json: this.jsonEnabled()})
    let reports: HostCopyReport[]
    try {
      reports = await copyImages({
        compression: this.flags.compress as 'auto',
        from: this.flags.from,
        full: this.flags.full,
        hosts,
        log: this.logger(),
        progress,
        refs,
        signal: this.signal,
        to: this.flags.to,
      })
    } finally {
      progress.stop()
    }

    this.log(render(reports))
    for (const report of reports) {
      for (const moved of report.movedTags) {
        this.logger().warn(`${report.host}: ${moved.tag} pointed at ${moved.previous}; that image is kept, untagged`)
      }
    }

    const failed = reports.filter((report) => report.status === 'failed')
    if (failed.length > 0) {
      throw new TransshipError(
        'COPY_FAILED',
        ExitCode.Failed,
        failed.map((report) => `${report.host}: ${report.error?.message}`).join('\n'),
        {
          details: {hosts: reports},
          suggestions: ['run the same copy again: it sends only what has not arrived'],
        },
      )
    }

    return {from: this.flags.from, hosts: reports}
  }
}

function render(reports: HostCopyReport[]): string {
  const rows = reports.map((report) => [
    report.host,
    report.status,
    String(report.layersSent),
    String(report.layersSkipped),
    formatBytes(report.bytesOnWire),
    report.compression,
    formatDuration(report.durationMs),
  ])
  return formatTable(['HOST', 'STATUS', 'LAYERS SENT', 'SKIPPED', 'ON THE WIRE', 'COMPRESSION', 'TIME'], rows)
}
