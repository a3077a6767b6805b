// Runs the built CLI (bin/run.js) as a user would, in a child process with its own environment.
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {run, type RunResult, type Testbed} from './testbed.js'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const bin = path.join(repoRoot, 'bin', 'run.js')

export interface CliOptions {
  /** DOCKER_HOST for the "local" engine; default: the bed's classic engine */
  dockerHost?: string
  env?: NodeJS.ProcessEnv
  /** HOME (where ~/.ssh and ~/.docker are looked for) */
  home: string
}

export async function transship(args: string[], options: CliOptions): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_HOST: options.dockerHost,
    HOME: options.home,
    NO_COLOR: '1',
    ...options.env,
  }
  delete env.SSH_AUTH_SOCK
  delete env.DEBUG
  if (!env.DOCKER_HOST) delete env.DOCKER_HOST
  return run(process.execPath, [bin, ...args], {env})
}

/** ~/.ssh/config for the bed's sshd under the alias `edge`, as the example recipes expect. */
export function edgeSshConfig(bed: Testbed, options: {identityFile?: string} = {}): string {
  return [
    'Host edge',
    `  HostName ${bed.ssh.host}`,
    `  Port ${bed.ssh.port}`,
    `  User ${bed.ssh.user}`,
    `  IdentityFile ${options.identityFile ?? bed.ssh.identityFile}`,
    '',
  ].join('\n')
}
