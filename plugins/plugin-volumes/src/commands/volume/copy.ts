import {Args, Flags} from '@oclif/core'
import {BaseCommand, openHosts, recipeHostFlags} from '@transship/kit'
import {formatBytes} from '@transship/kit/ui'

import {copyVolume, type VolumeCopyReport} from '../../copy.js'

function restarted(report: VolumeCopyReport): string {
  const all = [...report.stopped, ...report.stoppedAtDestination]
  return all.length > 0 ? `; ${all.join(', ')} stopped and started again` : ''
}

export default class VolumeCopy extends BaseCommand<typeof VolumeCopy> {
  static override args = {
    name: Args.string({description: 'The volume.', required: true}),
  }
  static override description = `Copy a named volume from one host to another with its data intact: regular files, empty directories, symlinks, hardlinks (as hardlinks), sparse files (kept sparse), FIFOs, numeric owners, modes (setuid, setgid, sticky), times, xattrs (file capabilities included) and POSIX ACLs, non-UTF-8 names. Each host's own GNU tar reads and writes the data (as root); the stream passes through transship, which then reads the destination back and compares both sides file by file: any difference fails the copy (exit 5) and names the files.

The destination is created like the source (driver, options, labels, the root's owner and mode). It must be absent or empty unless --mode replace or sync; until the comparison passes it holds a .transship-incomplete marker. A destination volume that containers use is refused (exit 2, nothing changed) unless --quiesce stop: with replace or sync any container that uses it, with create a running one. --quiesce stop stops the running containers that use the volume, on the source for the copy and on the destination until the copy is proven, and starts exactly those again, even when the copy fails or is interrupted (Ctrl-C, SIGTERM: exit 130); if transship is killed, the next run on that engine starts them first, however its host is written.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> pgdata --from local --to ssh://root@db2.example.com --quiesce stop',
    '<%= config.bin %> <%= command.id %> uploads --recipe recipes/volumes.yaml --from web1 --to web2 --as uploads-2024 --mode replace',
  ]
  static override flags = {
    ...recipeHostFlags,
    as: Flags.string({description: 'Name of the volume at the destination (default: the same).'}),
    from: Flags.string({default: 'local', description: 'Host that has the volume.'}),
    grace: Flags.integer({default: 10, description: 'Seconds containers get to stop (--quiesce stop).', min: 0}),
    mode: Flags.string({
      default: 'create',
      description:
        'create: the destination must be absent or empty; replace: overwrite it; sync: send only what differs.',
      options: ['create', 'replace', 'sync'],
    }),
    quiesce: Flags.string({
      default: 'none',
      description:
        'stop: stop the running containers that use the volume (source and destination) for the copy, and start them again after.',
      options: ['none', 'stop'],
    }),
    strict: Flags.boolean({description: 'Refuse to copy a volume in use without --quiesce stop (default: warn).'}),
    to: Flags.string({description: 'Host to copy it to.', required: true}),
  }
  static override summary = 'Copy a volume host to host, verified file by file.'

  async run(): Promise<VolumeCopyReport> {
    const {flags} = this
    await using hosts = await openHosts(this.config, flags, [flags.from, flags.to])
    const report = await copyVolume(
      {
        as: flags.as,
        from: flags.from,
        grace: flags.grace,
        mode: flags.mode as 'create' | 'replace' | 'sync',
        name: this.args.name,
        quiesce: flags.quiesce as 'none' | 'stop',
        strict: flags.strict,
        to: flags.to,
      },
      {hosts, log: this.logger(), signal: this.signal},
    )
    this.log(
      `${report.source} → ${report.destination}: ${report.files} files, ${formatBytes(report.bytes)} sent, verified equal, ${report.seconds.toFixed(1)} s${restarted(report)}`,
    )
    return report
  }
}
