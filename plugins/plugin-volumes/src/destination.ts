/**
 * The destination volume's lifecycle around a copy: refused when it would lose data, marked unfinished with a
 * `.transship-incomplete` file until the copy is proven (so a cut copy never looks finished, and the next run
 * knows to finish it), emptied for `replace`, and finished by removing the marker and giving the volume's root
 * its source time back.
 */
import type {RemoteShell} from '@transship/kit'

import {ExitCode, shellQuote, TransshipError} from '@transship/kit'

export const INCOMPLETE_MARKER = '.transship-incomplete'

/** Runs a command on a host's shell; a non-zero exit is VOLUME_COMMAND_FAILED with its stderr. */
export async function mustRun(shell: RemoteShell, host: string, command: string, signal: AbortSignal): Promise<void> {
  const result = await shell.run(command, {signal})
  if (result.code !== 0) {
    throw new TransshipError(
      'VOLUME_COMMAND_FAILED',
      ExitCode.Failed,
      `${host}: ${command} failed: ${result.stderr.trim()}`,
    )
  }
}

/** What the volume holds besides the marker: nothing, or something (and whether an earlier copy left it unfinished). */
export async function destinationState(
  shell: RemoteShell,
  root: string,
  signal: AbortSignal,
): Promise<{empty: boolean; unfinished: boolean}> {
  const {stdout} = await shell.run(
    `find ${shellQuote(root)} -mindepth 1 -maxdepth 1 ! -name ${shellQuote(INCOMPLETE_MARKER)} -print -quit; test -e ${shellQuote(`${root}/${INCOMPLETE_MARKER}`)} && echo unfinished-marker`,
    {signal},
  )
  const lines = stdout.split('\n').filter((line) => line !== '')
  const unfinished = lines.at(-1) === 'unfinished-marker'
  return {empty: lines.length === (unfinished ? 1 : 0), unfinished}
}

export async function markIncomplete(shell: RemoteShell, host: string, root: string, signal: AbortSignal) {
  await mustRun(shell, host, `touch ${shellQuote(root)}/${INCOMPLETE_MARKER}`, signal)
}

/** Removes everything in a volume but the unfinished marker. */
export async function emptyVolume(shell: RemoteShell, host: string, root: string, signal: AbortSignal): Promise<void> {
  const empty = `find ${shellQuote(root)} -mindepth 1 -maxdepth 1 ! -name ${shellQuote(INCOMPLETE_MARKER)} -exec rm -rf -- {} +`
  // a writer that is just ending (an interrupted copy's tar) may add a file while the directory is emptied
  const first = await shell.run(empty, {signal})
  if (first.code !== 0) {
    await new Promise((resolve) => {
      setTimeout(resolve, 1000)
    })
    await mustRun(shell, host, empty, signal)
  }
}

/** Removes the marker; removing it touches the volume's root, so the root gets `mtime` (the source's) back. */
export async function finishDestination(
  shell: RemoteShell,
  host: string,
  root: string,
  mtime: string | undefined,
  signal: AbortSignal,
): Promise<void> {
  const quoted = shellQuote(root)
  await mustRun(
    shell,
    host,
    `rm -f ${quoted}/${INCOMPLETE_MARKER}${mtime ? ` && touch -m -d @${mtime} ${quoted}` : ''}`,
    signal,
  )
}
