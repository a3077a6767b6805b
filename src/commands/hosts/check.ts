import {Flags} from '@oclif/core'
import {BaseCommand, ExitCode, type ExitOf, isTransshipError, TransshipError} from '@transship/kit'
import {formatBytes, formatTable} from '@transship/kit/ui'

import {hostFlags, recipeArg} from '../../flags.js'
import {openHosts, readRecipe} from '../../services.js'

export interface HostCheck {
  apiVersion?: string
  error?: {code: string; exit: number; message: string; suggestions: string[]}
  freeBytes?: number
  host: string
  imageStore?: string
  reachable: boolean
  storageDriver?: string
  target: string
  version?: string
}

export default class HostsCheck extends BaseCommand<typeof HostsCheck> {
  static override args = {recipe: recipeArg}
  static override description = `Reach every host of a recipe and report its engine.

Per host: reachable or why not, the engine version, the negotiated API version, the image store
(classic graph driver, or the containerd snapshotter) and the free space where the engine keeps its
data. Nothing is changed. Exits 3 when a host cannot be reached, 4 when its SSH key or host key is refused.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> recipes/fleet.yaml',
    '<%= config.bin %> <%= command.id %> recipes/fleet.yaml --host edge --json',
  ]
  static override flags = {
    ...hostFlags,
    host: Flags.string({description: 'Check only this host (repeatable).', multiple: true}),
  }
  static override summary = 'Check that the hosts of a recipe are reachable, and how.'

  async run(): Promise<HostCheck[]> {
    const log = this.logger()
    const recipe = await readRecipe(this.config, this.args.recipe, log)
    const hosts = openHosts({acceptNewHostKeys: this.flags['accept-new-host-key'], log, recipe})
    try {
      const names = this.flags.host ?? hosts.names()
      for (const name of names) hosts.describe(name) // unknown names fail before anything is reached
      const checks = await Promise.all(
        names.map(async (name): Promise<HostCheck> => {
          const {target} = hosts.describe(name)
          try {
            const host = await hosts.host(name, this.signal)
            const {facts} = host
            const freeBytes = await hosts.freeBytes(host, this.signal)
            return {
              apiVersion: facts.apiVersion,
              freeBytes,
              host: name,
              imageStore: facts.imageStore,
              reachable: true,
              storageDriver: facts.storageDriver,
              target,
              version: facts.version,
            }
          } catch (error) {
            if (!isTransshipError(error)) throw error
            return {
              error: {code: error.code, exit: error.exit, message: error.message, suggestions: error.suggestions},
              host: name,
              reachable: false,
              target,
            }
          }
        }),
      )
      this.log(render(checks))
      const failed = checks.filter((check) => !check.reachable)
      if (failed.length > 0) {
        // the most serious reason decides the exit code: a refused key (4) over an unreachable host (3)
        const exit = Math.max(
          ...failed.map((check) => check.error?.exit ?? ExitCode.Unreachable),
        ) as ExitOf<'HOSTS_UNREACHABLE'>
        const reasons = failed.map((check) => `  ${check.host}: ${check.error?.message}`).join('\n')
        throw new TransshipError(
          'HOSTS_UNREACHABLE',
          exit,
          `${failed.length} of ${checks.length} hosts cannot be used:\n${reasons}`,
          {
            details: {hosts: checks},
            suggestions: [...new Set(failed.flatMap((check) => check.error?.suggestions ?? []))],
          },
        )
      }

      return checks
    } finally {
      await hosts.close()
    }
  }
}

function render(checks: HostCheck[]): string {
  const rows = checks.map((check) =>
    check.reachable
      ? [
          check.host,
          'ok',
          check.version ?? '',
          check.apiVersion ?? '',
          `${check.imageStore === 'containerd' ? 'containerd snapshotter' : 'classic'} (${check.storageDriver})`,
          check.freeBytes === undefined ? 'unknown' : formatBytes(check.freeBytes),
          check.target,
        ]
      : [check.host, 'UNREACHABLE', '', '', '', '', `${check.target}: ${check.error?.message}`],
  )
  return formatTable(['HOST', 'STATUS', 'ENGINE', 'API', 'IMAGE STORE', 'FREE', 'WHERE'], rows)
}
