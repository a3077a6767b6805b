/**
 * Where a built image goes, named the way skopeo names image locations: `engine` (the local engine),
 * `engine:HOST` (a host of the recipe, or ssh://user@host), `oci:DIR`, `oci-archive:FILE`,
 * `docker-archive:FILE`. Files and directories need no engine.
 */
import {UsageError} from '@transship/kit'
import path from 'node:path'

export type OutputTarget =
  {host: string; kind: 'engine'} | {kind: 'docker-archive' | 'oci' | 'oci-archive'; path: string}

const FILE_KINDS = ['docker-archive', 'oci', 'oci-archive'] as const

/** Parses an output; relative paths are resolved against `baseDir`. */
export function parseOutput(value: string, baseDir = process.cwd()): OutputTarget {
  if (value === 'engine') return {host: 'local', kind: 'engine'}
  const colon = value.indexOf(':')
  const kind = colon === -1 ? value : value.slice(0, colon)
  const rest = colon === -1 ? '' : value.slice(colon + 1)
  if (kind === 'engine' && rest) return {host: rest, kind: 'engine'}
  if ((FILE_KINDS as readonly string[]).includes(kind) && rest) {
    return {kind: kind as (typeof FILE_KINDS)[number], path: path.resolve(baseDir, rest)}
  }

  throw new UsageError(`"${value}" is not an output`, {
    code: 'ROOTFS_OUTPUT_INVALID',
    suggestions: [
      'give engine, engine:HOST, oci:DIR, oci-archive:FILE or docker-archive:FILE (e.g. oci:out/debian or docker-archive:out/debian.tar)',
    ],
  })
}

/** An output as the user would write it, for messages. */
export function formatOutput(target: OutputTarget): string {
  return target.kind === 'engine'
    ? target.host === 'local'
      ? 'engine'
      : `engine:${target.host}`
    : `${target.kind}:${shortPath(target.path)}`
}

/** A path relative to the working directory when it is under it, else absolute. */
function shortPath(file: string): string {
  const relative = path.relative(process.cwd(), file)
  return relative === '' ? '.' : relative.startsWith('..') || path.isAbsolute(relative) ? file : relative
}
