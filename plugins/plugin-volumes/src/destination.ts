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

/** The shell words that add the marker and give the root its time back (adding it touches the root). */
function markCommand(root: string): string {
  const quoted = shellQuote(root)
  return `t=$(mktemp) && touch -r ${quoted} "$t" && touch ${quoted}/${INCOMPLETE_MARKER} && touch -r "$t" ${quoted}; s=$?; rm -f "$t"; [ $s -eq 0 ]`
}

/**
 * What the volume holds besides the marker (nothing, or something, and whether an earlier copy left it
 * unfinished), and in the same round trip the marker added, unless `create` will refuse the volume (it holds data
 * that no earlier copy left unfinished) or the marking is deferred (`deferOnData`: a sync that may find nothing to
 * write leaves a complete volume untouched).
 */
export async function inspectAndMark(
  shell: RemoteShell,
  host: string,
  root: string,
  mode: 'create' | 'replace' | 'sync',
  signal: AbortSignal,
  options: {deferOnData?: boolean} = {},
): Promise<{empty: boolean; marked: boolean; unfinished: boolean}> {
  const quoted = shellQuote(root)
  const command = [
    `first=$(find ${quoted} -mindepth 1 -maxdepth 1 ! -name ${shellQuote(INCOMPLETE_MARKER)} -print -quit) || exit 3`,
    `if [ -e ${quoted}/${INCOMPLETE_MARKER} ]; then u=unfinished; else u=finished; fi`,
    'if [ -n "$first" ]; then e=full; else e=empty; fi',
    // deferOnData: a complete volume with data is marked later, only when something is about to be written
    `if [ ${options.deferOnData ? 'yes' : 'no'} = yes ] && [ $e = full ] && [ $u = finished ]; then m=unmarked;`,
    `elif [ ${mode} != create ] || [ $e = empty ] || [ $u = unfinished ]; then ${markCommand(root)} || exit 4; m=marked; else m=unmarked; fi`,
    'echo "$e $u $m"',
  ].join('\n')
  const {code, stderr, stdout} = await shell.run(command, {signal})
  const words = stdout.trim().split('\n').at(-1)?.split(' ') ?? []
  if (code !== 0 || words.length !== 3) {
    throw new TransshipError(
      'VOLUME_COMMAND_FAILED',
      ExitCode.Failed,
      `${host}: marking ${root} unfinished failed: ${stderr.trim()}`,
    )
  }

  return {empty: words[0] === 'empty', marked: words[2] === 'marked', unfinished: words[1] === 'unfinished'}
}

/** Marks the volume unfinished (keeping its root's time). */
export async function markIncomplete(shell: RemoteShell, host: string, root: string, signal: AbortSignal) {
  await mustRun(shell, host, markCommand(root), signal)
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
