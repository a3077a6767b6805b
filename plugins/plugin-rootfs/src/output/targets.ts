/**
 * Where a built image goes: `engine` (the local engine), `engine:HOST` (a host of the recipe, or
 * ssh://user@host), or an image location of the kit's (`oci:DIR`, `oci-archive:FILE`, `docker-archive:FILE`,
 * skopeo's syntax). Files and directories need no engine.
 */
import {UsageError} from '@transship/kit'
import {type FileTransport, formatImageLocation, isFileLocation, parseImageLocation} from '@transship/kit/oci'
import path from 'node:path'

export type OutputTarget = {host: string; kind: 'engine'} | {kind: FileTransport; path: string}

/** Parses an output; relative paths are resolved against `baseDir`. */
export function parseOutput(value: string, baseDir = process.cwd()): OutputTarget {
  if (value === 'engine') return {host: 'local', kind: 'engine'}
  if (value.startsWith('engine:') && value.length > 'engine:'.length) {
    return {host: value.slice('engine:'.length), kind: 'engine'}
  }

  const location = isFileLocation(value) ? fileLocation(value) : undefined
  if (location?.kind === 'engine' || location === undefined) throw invalid(value)
  if (location.ref !== undefined) {
    // as in skopeo, what follows the path's colon would name the image: here the tag does
    throw new UsageError(`"${value}" is not an output: the image is named by its tag, not by the output`, {
      code: 'ROOTFS_OUTPUT_INVALID',
      suggestions: [`write ${location.kind}:${location.path} and name the image with --tag (or the recipe's image)`],
    })
  }

  return {kind: location.kind, path: path.resolve(baseDir, location.path)}
}

function fileLocation(value: string): ReturnType<typeof parseImageLocation> | undefined {
  try {
    return parseImageLocation(value, {code: 'ROOTFS_OUTPUT_INVALID'})
  } catch (error) {
    if (error instanceof UsageError) return undefined
    throw error
  }
}

function invalid(value: string): UsageError {
  return new UsageError(`"${value}" is not an output`, {
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
    : formatImageLocation({kind: target.kind, path: shortPath(target.path)})
}

/** A path relative to the working directory when it is under it, else absolute. */
function shortPath(file: string): string {
  const relative = path.relative(process.cwd(), file)
  return relative === '' ? '.' : relative.startsWith('..') || path.isAbsolute(relative) ? file : relative
}
