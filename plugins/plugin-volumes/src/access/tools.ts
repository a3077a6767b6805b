/** The tools found where a volume's commands run, probed with one short command. */
import {ExitCode, type RemoteShell, TransshipError} from '@transship/kit'

/** GNU tar is required; the others are optional. */
export interface VolumeTools {
  findPrintf: boolean
  getfattr: boolean
  gnuTar: boolean
  /** openssl's SHA-256 uses the CPU's SHA instructions: several times faster than sha256sum where both are */
  openssl: boolean
  rsync: boolean
  sha256sum: boolean
  zstd: boolean
}

const OPTIONAL = ['zstd', 'rsync', 'getfattr', 'sha256sum', 'openssl'] as const

/** `tar --version`'s first line, the optional tools on PATH, `find --version`'s first line: sections apart. */
export const TOOLS_PROBE = [
  'tar --version 2>/dev/null | head -n 1',
  'echo ::',
  `for t in ${OPTIONAL.join(' ')}; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done`,
  'echo ::',
  'find --version 2>/dev/null | head -n 1',
].join('; ')

/** What `shell` has; `tar` is the first line of `tar --version` (for messages). */
export async function probeTools(
  shell: RemoteShell,
  where: string,
  signal?: AbortSignal,
): Promise<{tar: string; tools: VolumeTools}> {
  return parseTools(await shell.run(TOOLS_PROBE, {signal}), where)
}

/** The tools from what TOOLS_PROBE printed. */
export function parseTools(
  {code, stderr, stdout}: {code: null | number; stderr: string; stdout: string},
  where: string,
): {tar: string; tools: VolumeTools} {
  const [tar = '', found = '', find = ''] = stdout.split('::\n').map((part) => part.trim())
  if (code !== 0 && tar === '' && found === '') {
    throw new TransshipError(
      'VOLUME_COMMAND_FAILED',
      ExitCode.Failed,
      `${where}: probing the tools failed (exit ${code}): ${stderr.trim()}`,
    )
  }

  const present = new Set(found.split('\n').map((line) => line.trim()))
  return {
    tar,
    tools: {
      findPrintf: find.includes('GNU findutils'),
      getfattr: present.has('getfattr'),
      gnuTar: tar.includes('GNU tar'),
      openssl: present.has('openssl'),
      rsync: present.has('rsync'),
      sha256sum: present.has('sha256sum'),
      zstd: present.has('zstd'),
    },
  }
}
