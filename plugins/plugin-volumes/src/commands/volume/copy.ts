import {Args, Flags} from '@oclif/core'
import {BaseCommand, HOST_ACCESSES, type HostAccess, openHosts, recipeHostFlags} from '@transship/kit'
import {formatBytes} from '@transship/kit/ui'

import {copyVolume, type VolumeCopyReport} from '../../copy.js'
import {METHOD_WORDS} from '../../volume-transfer.js'


function restarted(report: VolumeCopyReport): string {
  const all = [...report.stopped, ...report.stoppedAtDestination]
  if (all.length === 0) return ''
  const window = report.downtimeSeconds === undefined ? '' : ` (stopped for ${report.downtimeSeconds.toFixed(1)} s)`
  return `; ${all.join(', ')} stopped and started again${window}`
}

function passes(report: VolumeCopyReport): string {
  const last = `${formatBytes(report.bytes - (report.presync?.bytes ?? 0))} by ${METHOD_WORDS[report.method]}`
  if (!report.presync) return `${last} sent`
  return `${formatBytes(report.presync.bytes)} by ${METHOD_WORDS[report.presync.method]} while running, then ${last}`
}

export default class VolumeCopy extends BaseCommand<typeof VolumeCopy> {
  static override args = {
    name: Args.string({description: 'The volume.', required: true}),
  }
  static override description = `Copy a named volume from one host to another with its data intact: regular files, empty directories, symlinks, hardlinks (as hardlinks), sparse files (kept sparse), FIFOs, numeric owners, modes (setuid, setgid, sticky), times to the nanosecond, xattrs (file capabilities included) and POSIX ACLs, non-UTF-8 names. Each host's own GNU tar reads and writes the data; the stream passes through transship unopened (zstd on the wire between hosts that have it). The proof costs no second transfer: each host lists and hashes its own side (find, getfattr, sha256sum) and transship compares the listings; any difference fails the copy (exit 5) and names the files.

--mode sync sends only what differs, decided from the two listings (size and mtime, as rsync; contents with --checksum): through the hosts' own rsync when both have it (relayed by transship: only changed blocks cross), else the changed files whole; what the source no longer has is removed.

--access (per host: --from-access, --to-access, or access: in the recipe's host) says how the data is reached: root (the SSH user is root), sudo (sudo -n: refused up front when it would ask for a password), engine (a helper container on the host's engine, for users of the docker group, from --helper-image, default debian:bookworm-slim; what it cannot keep is printed), or auto (the first that works).

The destination is created like the source (driver, options, labels, the root's owner and mode). It must be absent or empty unless --mode replace or sync; until the comparison passes it holds a .transship-incomplete marker. A destination volume that containers use is refused (exit 2, nothing changed) unless --quiesce stop: with replace or sync any container that uses it, with create a running one. --quiesce stop stops the running containers that use the volume, on the source for the copy and on the destination until the copy is proven, and starts exactly those again, even when the copy fails or is interrupted (Ctrl-C, SIGTERM: exit 130); if transship is killed, the next run on that engine starts them first, however its host is written.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> pgdata --from local --to ssh://root@db2.example.com --quiesce stop',
    '<%= config.bin %> <%= command.id %> uploads --recipe recipes/volumes.yaml --from web1 --to web2 --as uploads-2024 --mode replace',
    '<%= config.bin %> <%= command.id %> pgdata --from local --to ssh://deploy@db2.example.com --quiesce stop --presync --mode sync',
    '<%= config.bin %> <%= command.id %> media --from ssh://deploy@web1 --from-access engine --to local',
  ]
  static override flags = {
    ...recipeHostFlags,
    as: Flags.string({description: 'Name of the volume at the destination (default: the same).'}),
    checksum: Flags.boolean({
      description: 'With --mode sync: compare contents (hashed on each host), not only size and mtime.',
    }),
    'from-access': Flags.string({
      description: "How the source's data is reached (default: the host's access, else auto).",
      options: [...HOST_ACCESSES],
    }),
    from: Flags.string({default: 'local', description: 'Host that has the volume.'}),
    grace: Flags.integer({default: 10, description: 'Seconds containers get to stop (--quiesce stop).', min: 0}),
    'helper-image': Flags.string({
      description: 'Image of the helper container for engine access (needs GNU tar; default debian:bookworm-slim).',
    }),
    mode: Flags.string({
      default: 'create',
      description:
        'create: the destination must be absent or empty; replace: overwrite it; sync: send only what differs.',
      options: ['create', 'replace', 'sync'],
    }),
    presync: Flags.boolean({
      description:
        'With --quiesce stop: copy while the containers run, then stop them only for the final delta and its proof.',
    }),
    quiesce: Flags.string({
      default: 'none',
      description:
        'stop: stop the running containers that use the volume (source and destination) for the copy, and start them again after.',
      options: ['none', 'stop'],
    }),
    strict: Flags.boolean({description: 'Refuse to copy a volume in use without --quiesce stop (default: warn).'}),
    to: Flags.string({description: 'Host to copy it to.', required: true}),
    'to-access': Flags.string({
      description: "How the destination's data is reached (default: the host's access, else auto).",
      options: [...HOST_ACCESSES],
    }),
  }
  static override summary = 'Copy a volume host to host, verified file by file.'

  async run(): Promise<VolumeCopyReport> {
    const {flags} = this
    await using hosts = await openHosts(this.config, flags, [flags.from, flags.to])
    const report = await copyVolume(
      {
        access: {
          from: flags['from-access'] as HostAccess | undefined,
          to: flags['to-access'] as HostAccess | undefined,
        },
        as: flags.as,
        checksum: flags.checksum,
        from: flags.from,
        grace: flags.grace,
        mode: flags.mode as 'create' | 'replace' | 'sync',
        helperImage: flags['helper-image'],
        name: this.args.name,
        presync: flags.presync,
        quiesce: flags.quiesce as 'none' | 'stop',
        strict: flags.strict,
        to: flags.to,
      },
      {hosts, log: this.logger(), signal: this.signal},
    )
    this.log(
      `${report.source} → ${report.destination}: ${report.files} entries, ${passes(report)}, ${report.verified ? `verified equal (${report.hashed} files hashed on both hosts)` : `not verified: ${report.changedDuringCopy.length} entries changed at the source while copied`}, ${report.seconds.toFixed(1)} s${restarted(report)}`,
    )
    return report
  }
}
