import {Args, Flags} from '@oclif/core'
import {BaseCommand, ExitCode, hostFlag, openHosts, recipeHostFlags, TransshipError} from '@transship/kit'

import {type DiffReport, formatReport} from '../../diff/compare.js'
import {diffImages, resolveImageSource} from '../../diff/image-files.js'

export default class RootfsDiff extends BaseCommand<typeof RootfsDiff> {
  static override args = {
    a: Args.string({
      description: 'The first image: an archive, an OCI layout or an image on the engine.',
      required: true,
    }),
    b: Args.string({description: 'The second image, in the same forms.', required: true}),
  }
  static override description = `Find out why a rebuild is not identical: compare two built images (or archives) and name the first files that differ — in content, mode, owner, mtime, xattrs, type, link target or device numbers — and the config keys that differ (created, Env, Cmd, Labels, history, rootfs.diff_ids, …).

Each image is one of:
- docker-archive:FILE[:NAME], or a bare FILE: a \`docker save\` archive (compressed or not)
- oci-archive:FILE[:NAME]: an OCI image layout in a tar
- oci:DIR[:REF], or a bare DIR: an OCI image layout; REF selects by org.opencontainers.image.ref.name
- docker-daemon:REF, or any other REF: an image (reference or ID) on the engine of --host

Images with the same layers (diffIDs) have the same files: only their configs are compared. Otherwise every layer is read, whiteouts applied, and the flattened filesystems compared path by path.

Exits with 0 when both are identical, 5 when they differ (--json: the report is the error's details), 2 for an input that cannot be read.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> build-1.tar build-2.tar',
    '<%= config.bin %> <%= command.id %> oci:out/layout:bookworm oci:rebuild/layout:bookworm --limit 50',
    '<%= config.bin %> <%= command.id %> base:bookworm docker-archive:base-bookworm.tar.zst',
    '<%= config.bin %> <%= command.id %> base:1 base:2 --host ssh://deploy@build.example.com --json',
  ]
  static override flags = {
    ...recipeHostFlags,
    host: hostFlag('read the images that are not files from'),
    limit: Flags.integer({
      default: 20,
      description: 'Most file differences to list (0: all); counts are always total.',
      min: 0,
    }),
  }
  static override summary = 'Compare two built images file by file and config key by key.'

  async run(): Promise<DiffReport> {
    const {host, limit} = this.flags
    const a = await resolveImageSource(this.args.a)
    const b = await resolveImageSource(this.args.b)
    const needsEngine = a.kind === 'engine' || b.kind === 'engine'
    await using hosts = needsEngine ? await openHosts(this.config, this.flags, [host]) : undefined
    const engine = hosts ? await hosts.engine(host, this.signal) : undefined
    const report = await diffImages(a, b, {engine, limit, signal: this.signal})
    if (!this.jsonEnabled()) this.log(formatReport(report))
    if (!report.identical) {
      const {counts} = report
      throw new TransshipError(
        'ROOTFS_DIFFERENT',
        ExitCode.Verify,
        `the images differ: ${counts.config} config key${counts.config === 1 ? '' : 's'}, ${counts.total} file${counts.total === 1 ? '' : 's'}`,
        {
          details: {...report},
          suggestions: counts.total > report.files.length ? ['list every difference with --limit 0'] : [],
        },
      )
    }

    return report
  }
}
