import {Args, Flags} from '@oclif/core'
import {BaseCommand, hostFlag, openHosts, recipeHostFlags} from '@transship/kit'

import {importVolume} from '../../archive.js'

export default class VolumeImport extends BaseCommand<typeof VolumeImport> {
  static override args = {
    file: Args.string({description: 'A volume archive (compressed or not), or - for stdin.', required: true}),
    name: Args.string({description: 'The volume to fill (created when missing).', required: true}),
  }
  static override description = `Fill a volume from an archive written by \`volume export\` (or any tar of a volume's content). The whole archive is checked first: a path that is absolute, climbs out with .., or goes through a symbolic link, and a corrupt or truncated archive, are refused with nothing written. The volume must be empty unless --mode replace; what landed is compared with the archive, file by file.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> pgdata.tar.zst pgdata',
    'cat uploads.tar | <%= config.bin %> <%= command.id %> - uploads --host ssh://root@web2.example.com',
  ]
  static override flags = {
    ...recipeHostFlags,
    host: hostFlag('write to'),
    mode: Flags.string({
      default: 'create',
      description: 'create: the volume must be absent or empty; replace: overwrite it.',
      options: ['create', 'replace'],
    }),
  }
  static override summary = 'Import a volume from a tar file.'

  async run(): Promise<{files: number; verified: boolean}> {
    await using hosts = await openHosts(this.config, this.flags, [this.flags.host])
    const result = await importVolume(
      {
        file: this.args.file,
        host: this.flags.host,
        hosts,
        log: this.logger(),
        mode: this.flags.mode as 'create' | 'replace',
        name: this.args.name,
      },
      this.signal,
    )
    this.log(`${this.args.file} → ${this.flags.host}:${this.args.name}: ${result.files} entries, verified equal`)
    return result
  }
}
