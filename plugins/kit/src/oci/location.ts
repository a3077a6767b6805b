/**
 * Where an image is, written as skopeo writes its transports: `oci:DIR[:REF]` (an OCI image layout directory),
 * `oci-archive:FILE[:REF]` (the same layout in a tar), `docker-archive:FILE[:REF]` (what `docker save` writes),
 * `docker-daemon:REF` or a plain reference (an image on an engine). As in skopeo, the path ends at the first
 * colon and what follows selects an image: a path with a colon in it cannot be named this way.
 */
import path from 'node:path'

import {UsageError} from '../errors.js'

export const FILE_TRANSPORTS = ['docker-archive', 'oci', 'oci-archive'] as const
export type FileTransport = (typeof FILE_TRANSPORTS)[number]

export type ImageLocation =
  | {kind: 'engine'; ref: string}
  | {
      kind: FileTransport
      /** as written (relative paths are relative to where the user is; see resolveImageLocation) */
      path: string
      /** oci: the ref name (org.opencontainers.image.ref.name) or full name; archives: an image's name */
      ref?: string
    }

export type FileLocation = Extract<ImageLocation, {kind: FileTransport}>

const PREFIX = /^(docker-archive|docker-daemon|oci-archive|oci):/

/** Whether `value` names an image in a file or directory (`oci:`, `oci-archive:`, `docker-archive:`). */
export function isFileLocation(value: string): boolean {
  const transport = PREFIX.exec(value)?.[1]
  return transport !== undefined && transport !== 'docker-daemon'
}

/**
 * Parses an image location. Anything without a transport prefix is an engine reference (checked by whoever
 * asks the engine); a prefix without a path or reference is a UsageError with `code` (default IMAGE_INPUT).
 */
export function parseImageLocation(value: string, options: {code?: string} = {}): ImageLocation {
  const transport = PREFIX.exec(value)?.[1]
  if (transport === undefined) return {kind: 'engine', ref: value}
  const rest = value.slice(transport.length + 1)
  if (transport === 'docker-daemon') {
    if (rest === '') throw missing(value, 'docker-daemon:REF', options.code)
    return {kind: 'engine', ref: rest}
  }

  const kind = transport as FileTransport
  const colon = rest.indexOf(':')
  const location = colon === -1 ? rest : rest.slice(0, colon)
  const ref = colon === -1 ? '' : rest.slice(colon + 1)
  if (location === '') throw missing(value, `${kind}:${kind === 'oci' ? 'DIR' : 'FILE'}[:REF]`, options.code)
  return ref === '' ? {kind, path: location} : {kind, path: location, ref}
}

function missing(value: string, form: string, code = 'IMAGE_INPUT'): UsageError {
  return new UsageError(`"${value}" names no ${form.startsWith('docker-daemon') ? 'image' : 'path'}`, {
    code,
    details: {input: value},
    suggestions: [`write it as ${form}`],
  })
}

/** The location as the user would write it (parseImageLocation reads it back, unless its path has a colon). */
export function formatImageLocation(location: ImageLocation): string {
  if (location.kind === 'engine') return PREFIX.test(location.ref) ? `docker-daemon:${location.ref}` : location.ref
  return `${location.kind}:${location.path}${location.ref === undefined ? '' : `:${location.ref}`}`
}

/** The location with its path made absolute against `baseDir` (a recipe's directory, or the working one). */
export function resolveImageLocation<T extends ImageLocation>(location: T, baseDir = process.cwd()): T {
  return location.kind === 'engine' ? location : {...location, path: path.resolve(baseDir, location.path)}
}
