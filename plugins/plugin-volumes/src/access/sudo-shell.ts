/**
 * Access `sudo`: the host's commands run as root through `sudo -n` (never a password prompt: with no
 * NOPASSWD rule, sudo refuses at once and nothing runs).
 */
import {type RemoteShell, shellQuote, UsageError} from '@transship/kit'

/** `command` as root: `sudo -n sh -c 'command'` on `shell`. */
export function sudoShell(shell: RemoteShell): RemoteShell {
  return {
    engineSocket: shell.engineSocket,
    exec: (command, options) => shell.exec(wrap(command), options),
    run: async (command, options) => shell.run(wrap(command), options),
  }
}

function wrap(command: string): string {
  return `sudo -n sh -c ${shellQuote(command)}`
}

/** What `sudo -n true` said: it works, the host has no sudo, or sudo refused (a password would be needed). */
export type SudoState = {ok: false; reason: 'missing'} | {ok: false; reason: 'refused'; said: string} | {ok: true}

/** Asks `sudo -n true` on `shell`: it changes nothing and never waits for a password. */
export async function probeSudo(shell: RemoteShell, signal?: AbortSignal): Promise<SudoState> {
  const {code, stderr} = await shell.run('command -v sudo >/dev/null 2>&1 || exit 127; sudo -n true', {signal})
  if (code === 0) return {ok: true}
  if (code === 127) return {ok: false, reason: 'missing'}
  return {ok: false, reason: 'refused', said: stderr.trim().split('\n').at(-1) ?? ''}
}

/** The refusal of access `sudo` when sudo -n does not work for `user` on `host`. */
export function sudoRefusal(host: string, user: string, state: Exclude<SudoState, {ok: true}>): UsageError {
  if (state.reason === 'missing') {
    return new UsageError(`access sudo: ${host} has no sudo`, {
      code: 'VOLUME_SUDO_MISSING',
      suggestions: [
        `install sudo on ${host} with a NOPASSWD rule for ${user}, or`,
        'use access: engine (a helper container on the engine reads and writes the volume)',
      ],
    })
  }

  return new UsageError(
    `access sudo: \`sudo -n true\` is refused for ${user} on ${host}${state.said ? ` (${state.said})` : ''}: transship never types a password`,
    {
      code: 'VOLUME_SUDO_PASSWORD',
      suggestions: [
        `allow it without a password, e.g. in /etc/sudoers.d/transship: ${user} ALL=(root) NOPASSWD: ALL`,
        'or use access: engine (a helper container on the engine reads and writes the volume)',
      ],
    },
  )
}
