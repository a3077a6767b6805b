import {Args, Flags} from '@oclif/core'
import {BaseCommand, hostFlag, openHosts, recipeHostFlags} from '@transship/kit'

import {importVolume} from '../../archive.js'

export default class VolumeImport extends BaseCommand<typeof VolumeImport> {
  static override args = {
    file: Args.string({description: 'A volume archive (compressed or not), or - for stdin.', required: true}),
    name: Args.string({description: 'The volume to fill (created when missing).', required: true}),
  }
  static override description = `Fill a volume from an archive written by \`volume export\` (or any tar of a volume's content). The whole archive is checked first, and refused (exit 2) with nothing written, naming the entry, when an entry: is absolute or climbs out with ..; is reached through a symbolic link, or under something that is not a directory; is a hard link to anything but an earlier regular file of the archive; appears twice (a directory replaced by a link, a file that changes type); makes the volume's root anything but a directory; is named two different ways (pax path, GNU.sparse.name, GNU long names), or renamed by a global header; declares data it cannot have; comes after a lone zero block; is a device node (unless --allow-devices); and when the archive is corrupt or truncated. FIFOs are created (as GNU tar and Docker do: a FIFO gives access to nothing). The size a sparse file claims costs nothing to check.

The volume must be empty unless --mode replace; a volume that containers use is refused unless --quiesce stop (replace: any container; else running ones). What landed is compared with the archive, file by file.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> pgdata.tar.zst pgdata',
    'cat uploads.tar | <%= config.bin %> <%= command.id %> - uploads --host ssh://root@web2.example.com',
  ]
  static override flags = {
    ...recipeHostFlags,
    'allow-devices': Flags.boolean({
      description:
        'Create the character and block device nodes the archive holds (refused otherwise: a device node in a volume gives the containers that mount it that device).',
    }),
    grace: Flags.integer({default: 10, description: 'Seconds containers get to stop (--quiesce stop).', min: 0}),
    host: hostFlag('write to'),
    mode: Flags.string({
      default: 'create',
      description: 'create: the volume must be absent or empty; replace: overwrite it.',
      options: ['create', 'replace'],
    }),
    quiesce: Flags.string({
      default: 'none',
      description: 'stop: stop the containers that use the volume for the import, and start them again after.',
      options: ['none', 'stop'],
    }),
  }
  static override summary = 'Import a volume from a tar file.'

  async run(): Promise<{files: number; stopped: string[]; verified: boolean}> {
    await using hosts = await openHosts(this.config, this.flags, [this.flags.host])
    const result = await importVolume(
      {
        allowDevices: this.flags['allow-devices'],
        file: this.args.file,
        grace: this.flags.grace,
        host: this.flags.host,
        hosts,
        log: this.logger(),
        mode: this.flags.mode as 'create' | 'replace',
        name: this.args.name,
        quiesce: this.flags.quiesce as 'none' | 'stop',
      },
      this.signal,
    )
    this.log(
      `${this.args.file} → ${this.flags.host}:${this.args.name}: ${result.files} entries, verified equal${result.stopped.length > 0 ? `; ${result.stopped.join(', ')} stopped and started again` : ''}`,
    )
    return result
  }
}
