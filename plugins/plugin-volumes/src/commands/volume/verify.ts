import {Args, Flags} from '@oclif/core'
import {BaseCommand, ExitCode, openHosts, recipeHostFlags, TransshipError} from '@transship/kit'
import {decompressed} from '@transship/kit/archive'
import {createReadStream, existsSync} from 'node:fs'

import {INCOMPLETE_MARKER, readVolumeManifest} from '../../copy.js'
import {compareManifests, formatDifferences} from '../../manifest/compare.js'
import {manifestOfTar} from '../../manifest/tar-manifest.js'
import {checkVolumeName} from '../../volume-name.js'
import {requireVolume} from '../../volume-store.js'
import {tarEnd} from '../../volume-tar.js'

export default class VolumeVerify extends BaseCommand<typeof VolumeVerify> {
  static override args = {
    name: Args.string({description: 'The volume.', required: true}),
  }
  static override description = `Compare a volume with the same volume on another host, or with an archive, file by file: type, size, content (digest), mode, owner, times, xattrs, ACLs, hardlink groups. Exit 5 and the differing files when they differ.`
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
    const read = async (name: string, volumeName: string) => {
      const host = await hosts.host(name, this.signal)
      const volume = await requireVolume(host.engine, volumeName, this.signal)
      return readVolumeManifest(await tarEnd(host, this.signal), volume.Mountpoint, this.signal)
    }

    const mine = await read(flags.on, this.args.name)
    const theirs = againstFile
      ? await manifestOfTar((await decompressed(createReadStream(flags.against), this.signal)).stream, {
          label: flags.against,
          signal: this.signal,
        })
      : await read(flags.against, flags.as ?? this.args.name)
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
