import {Args, Flags} from '@oclif/core'
import {BaseCommand, hostFlag, openHosts, recipeHostFlags} from '@transship/kit'
import {checkImageOrId} from '@transship/kit/reference'
import {formatBytes, formatTable} from '@transship/kit/ui'

import {type HistoryResult, imageHistory} from '../../image-history.js'

const CREATED_BY_WIDTH = 60

export default class ImageHistory extends BaseCommand<typeof ImageHistory> {
  static override args = {
    image: Args.string({description: 'The image (reference or ID).', required: true}),
  }
  static override description = `Show how an image was made, on any host (the local engine, a host of a recipe, or ssh://user@host[:port]): its history, newest first, with the size each step added and the command that made it, and the layer (diffID) each step with a size made, when they line up.

--json gives the full entries and the image's layers (diffIDs, bottom first).`
  static override examples = [
    '<%= config.bin %> <%= command.id %> app:1',
    '<%= config.bin %> <%= command.id %> app:1 --host ssh://deploy@edge.example.com --no-trunc',
    '<%= config.bin %> <%= command.id %> app:1 --recipe recipes/fleet.yaml --host edge --json',
  ]
  static override flags = {
    ...recipeHostFlags,
    host: hostFlag('read from'),
    'no-trunc': Flags.boolean({description: 'Show whole commands and IDs.'}),
  }
  static override summary = "Show an image's history and layers."

  async run(): Promise<HistoryResult> {
    const {image: ref} = this.args
    const {host} = this.flags
    checkImageOrId(ref)
    await using hosts = await openHosts(this.config, this.flags, [host])
    const engine = await hosts.engine(host, this.signal)
    const {lined, result} = await imageHistory(engine, ref, host, this.signal)
    const {diffIDs, history} = result

    const full = this.flags['no-trunc']
    const short = (digest: string | undefined, missing: string) =>
      digest ? (full ? digest : digest.replace(/^sha256:/, '').slice(0, 12)) : missing
    const rows = history.map((entry) => [
      short(entry.id, '<missing>'),
      entry.created,
      full ? entry.createdBy : truncate(entry.createdBy, CREATED_BY_WIDTH),
      formatBytes(entry.size),
      ...(lined ? [short(entry.diffID, '')] : []),
      entry.comment,
    ])
    const header = ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', ...(lined ? ['LAYER'] : []), 'COMMENT']
    this.log(formatTable(header, rows))
    const total = history.reduce((sum, entry) => sum + entry.size, 0)
    this.log(
      `\n${ref} on ${host}: ${result.id.slice(0, 19)}, ${diffIDs.length} layer${diffIDs.length === 1 ? '' : 's'}, ${formatBytes(total)}`,
    )
    return result
  }
}

/** One line, at most `width` characters (… marks a cut). */
function truncate(text: string, width: number): string {
  const line = text.replaceAll(/\s+/g, ' ').trim()
  return line.length > width ? `${line.slice(0, width - 1)}…` : line
}
