import {Args, Flags} from '@oclif/core'
import {BaseCommand, ExitCode, openHosts, recipeHostFlags, TransshipError} from '@transship/kit'
import {decompressed} from '@transship/kit/archive'
import {createReadStream, existsSync} from 'node:fs'

import {INCOMPLETE_MARKER} from '../../destination.js'
import {compareManifests, formatDifferences} from '../../manifest/compare.js'
import {manifestOfTar} from '../../manifest/tar-manifest.js'
import {checkVolumeName} from '../../volume-name.js'
import {proveExisting} from '../../volume-plan.js'
import {requireVolume} from '../../volume-store.js'
import {readVolumeManifest, tarEnd} from '../../volume-tar.js'

export default class VolumeVerify extends BaseCommand<typeof VolumeVerify> {
  static override args = {
    name: Args.string({description: 'The volume.', required: true}),
  }
  static override description = `Compare a volume with the same volume on another host, or with an archive, file by file: type, size, content (digest), mode, owner, times, xattrs, ACLs, hardlink groups. Exit 5 and the differing files when they differ. Against another host, each host lists and hashes its own side (the data does not cross); against an archive, the volume is read through its host's tar.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> pgdata --on ssh://root@db2.example.com --against local',
    '<%= config.bin %> <%= command.id %> uploads --on local --against uploads.tar.zst',
  ]
  static override flags = {
    ...recipeHostFlags,
    against: Flags.string({
      description: 'Another host (same volume name, or --as), or an archive file.',
      required: true,
    }),
    as: Flags.string({description: 'The name of the volume on the other host (default: the same).'}),
    on: Flags.string({default: 'local', description: 'Host that has the volume.'}),
  }
  static override summary = 'Compare a volume with another host or an archive.'

  async run(): Promise<{differences: number; equal: boolean}> {
    const {flags} = this
    checkVolumeName(this.args.name)
    if (flags.as !== undefined) checkVolumeName(flags.as, '--as')
    const againstFile = existsSync(flags.against)
    await using hosts = await openHosts(this.config, flags, againstFile ? [flags.on] : [flags.on, flags.against])
    if (!againstFile) {
      const [on, against] = await Promise.all([
        hosts.host(flags.on, this.signal),
        hosts.host(flags.against, this.signal),
      ])
      try {
        const proof = await proveExisting({
          destination: {host: on, name: this.args.name},
          mode: 'create',
          signal: this.signal,
          source: {host: against, name: flags.as ?? this.args.name},
        })
        this.log(`${flags.on}:${this.args.name} equals ${flags.against}: ${proof.destination.entries.length} entries`)
        return {differences: 0, equal: true}
      } catch (error) {
        if (error instanceof TransshipError && error.code === 'VOLUME_VERIFY_FAILED') {
          throw new TransshipError('VOLUME_DIFFERENT', ExitCode.Verify, error.message, {details: error.details})
        }

        throw error
      }
    }

    const host = await hosts.host(flags.on, this.signal)
    const volume = await requireVolume(host.engine, this.args.name, this.signal)
    const mine = await readVolumeManifest(await tarEnd(host, this.signal), volume.Mountpoint, this.signal)
    const theirs = await manifestOfTar((await decompressed(createReadStream(flags.against), this.signal)).stream, {
      label: flags.against,
      signal: this.signal,
    })
    const comparison = compareManifests(theirs, mine, {ignore: (path) => path === INCOMPLETE_MARKER})
    if (!comparison.equal) {
      throw new TransshipError(
        'VOLUME_DIFFERENT',
        ExitCode.Verify,
        `${flags.on}:${this.args.name} differs from ${flags.against}:\n${formatDifferences(comparison).join('\n')}`,
        {details: {differences: comparison.differences}},
      )
    }

    this.log(`${flags.on}:${this.args.name} equals ${flags.against}: ${mine.entries.length} entries`)
    return {differences: 0, equal: true}
  }
}
