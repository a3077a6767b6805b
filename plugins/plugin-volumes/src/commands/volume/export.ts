import {Args, Flags} from '@oclif/core'
import {BaseCommand, hostFlag, openHosts, recipeHostFlags} from '@transship/kit'
import {formatBytes} from '@transship/kit/ui'

import {exportVolume} from '../../archive.js'

export default class VolumeExport extends BaseCommand<typeof VolumeExport> {
  static override args = {
    name: Args.string({description: 'The volume.', required: true}),
  }
  static override description = `Write a volume's data to a tar file (or - for stdout), compressed by the name's suffix (.gz, .zst, .bz2, .xz), with everything \`volume copy\` keeps: hardlinks, sparse files, numeric owners, xattrs, ACLs. \`volume import\` reads it back.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> pgdata -o pgdata.tar.zst',
    '<%= config.bin %> <%= command.id %> uploads --host ssh://root@web1.example.com -o - > uploads.tar',
  ]
  static override flags = {
    ...recipeHostFlags,
    host: hostFlag('read from'),
    output: Flags.string({char: 'o', description: 'The file, or - for stdout.', required: true}),
  }
  static override summary = 'Export a volume to a tar file.'

  async run(): Promise<{bytes: number; files: number}> {
    await using hosts = await openHosts(this.config, this.flags, [this.flags.host])
    const result = await exportVolume(
      {file: this.flags.output, host: this.flags.host, hosts, name: this.args.name},
      this.signal,
    )
    if (this.flags.output !== '-')
      this.log(`${this.args.name} → ${this.flags.output}: ${result.files} entries, ${formatBytes(result.bytes)}`)
    return result
  }
}
