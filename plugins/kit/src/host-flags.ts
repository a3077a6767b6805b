import type {Interfaces} from '@oclif/core'

import {Flags} from '@oclif/core'

import {coreServices, type Hosts} from './plugin-api.js'

/** The flags of the image commands that reach hosts: which host, through which recipe, and the host key. */
export const recipeHostFlags = {
  'accept-new-host-key': Flags.boolean({description: 'Accept and record an SSH host key not yet in known_hosts.'}),
  recipe: Flags.string({description: 'Recipe whose hosts the host flags may name.'}),
}

export function hostFlag(verb: string) {
  return Flags.string({
    default: 'local',
    description: `Host to ${verb}: a recipe host, local, ssh://user@host[:port][/socket] or unix:///path.`,
  })
}

/** The hosts a command named, from the core (one SSH connection per host, closed on dispose). */
export async function openHosts(
  config: Interfaces.Config,
  flags: {'accept-new-host-key'?: boolean; recipe?: string},
  hosts: string[],
): Promise<AsyncDisposable & Hosts> {
  const services = await coreServices(config)
  return services.openHosts({acceptNewHostKeys: flags['accept-new-host-key'], hosts, recipe: flags.recipe})
}
