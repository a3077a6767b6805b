/**
 * A volume's data is read and written by the host's own GNU tar, run on the volume's mount point, with
 * every flag that keeps what the other ways lose (see the README): xattrs of every namespace (file
 * capabilities included), POSIX ACLs, holes of sparse files, numeric owners (never mapped by name), and the
 * POSIX format (long and non-UTF-8 names, nanosecond times). Extraction runs as root, keeps owners and modes.
 */
import type {RemoteShell} from '@transship/kit'

import {shellQuote, UsageError} from '@transship/kit'

const COMMON = "--xattrs --xattrs-include='*' --acls --numeric-owner"

/** Writes the volume at `mountpoint` as a tar on stdout (the root directory first, as `./`). */
export function createCommand(mountpoint: string, options: {files?: 'stdin'} = {}): string {
  const list = options.files === 'stdin' ? '--null --no-recursion -T -' : '.'
  return `tar -C ${shellQuote(mountpoint)} ${COMMON} --sparse --format=posix -cf - ${list}`
}

/** Reads a tar from stdin into the volume at `mountpoint`. */
export function extractCommand(mountpoint: string): string {
  return `tar -C ${shellQuote(mountpoint)} ${COMMON} --same-permissions --same-owner -xf -`
}

/** GNU tar exits 1 when a file changed while it was read: the archive is complete but may be inconsistent. */
export const TAR_FILE_CHANGED = 1

/** Refuses a host whose tar is not GNU tar, or that is not run as root (owners could not be kept). */
export async function requireGnuTar(shell: RemoteShell, host: string, signal?: AbortSignal): Promise<void> {
  const {code, stdout} = await shell.run('tar --version 2>/dev/null | head -n 1; id -u', {signal})
  const [version = '', uid = ''] = stdout.trim().split('\n')
  if (code !== 0 || !version.includes('GNU tar')) {
    throw new UsageError(`${host} has no GNU tar (found: ${version || 'no tar'})`, {
      code: 'VOLUME_TAR_MISSING',
      suggestions: [`install it on ${host} (Debian: apt-get install tar; Alpine: apk add tar)`],
    })
  }

  if (uid.trim() !== '0') {
    throw new UsageError(`${host}: volume data is read and written as root, not as uid ${uid.trim()}`, {
      code: 'VOLUME_NEEDS_ROOT',
      suggestions: ['reach the host as root (ssh://root@host), or run transship as root for the local host'],
    })
  }
}
