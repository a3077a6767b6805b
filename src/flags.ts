import {Args, Flags} from '@oclif/core'

/** Flags and args shared by the commands that read a recipe and reach its hosts. */
export const recipeArg = Args.string({description: 'Recipe file (YAML).', required: true})

export const hostFlags = {
  'accept-new-host-key': Flags.boolean({
    description:
      'Accept and record the SSH host key of a host that is not in known_hosts yet (a changed key is always refused).',
  }),
}
