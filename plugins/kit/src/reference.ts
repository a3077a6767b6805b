/**
 * Image references, in Docker's grammar (github.com/distribution/reference) and with its limits: every
 * command argument, flag and recipe key that names an image is checked here, so that a name an engine or a
 * registry would refuse (or one of 50 MB) is a usage error that says which rule it breaks, before anything
 * is asked of a host.
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] path-component [ "/" path-component ]*     (at most 255 characters)
 *   domain     := host [ ":" port ]   host: dot-separated [a-zA-Z0-9-] parts, or [IPv6]
 *   path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [\w][\w.-]{0,127}
 *   digest     := algorithm ":" hex   (sha256: 64, sha384: 96, sha512: 128 lower-case hex digits)
 */
import {UsageError} from './errors.js'

/** A parsed image reference, normalised as Docker does (`busybox` is `docker.io/library/busybox:latest`). */
export interface ImageReference {
  digest?: string
  /** registry host, e.g. `docker.io`, `localhost:5000` */
  domain: string
  /** repository path inside the registry, e.g. `library/busybox` */
  path: string
  tag?: string
}

/** Longest name (registry host and path), as distribution/reference's NameTotalLengthMax. */
const NAME_MAX_LENGTH = 255
/** Longest tag. */
const TAG_MAX_LENGTH = 128
/** Longest reference: a longest name, tag and (sha512) digest. */
const REFERENCE_MAX_LENGTH = NAME_MAX_LENGTH + 1 + TAG_MAX_LENGTH + 1 + 'sha512:'.length + 128

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const DOMAIN_PART = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN = new RegExp(`^(?:${DOMAIN_PART}(?:\\.${DOMAIN_PART})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`)
const TAG = /^\w[\w.-]{0,127}$/
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/
const DIGEST_HEX_LENGTHS: Record<string, number> = {sha256: 64, sha384: 96, sha512: 128}
const IMAGE_ID = /^(?:sha256:)?[a-f0-9]{64}$/
// eslint-disable-next-line no-control-regex
const SPACE_OR_CONTROL = /[\s\u0000-\u001F\u007F]/

const COMPONENT_RULE = 'lower-case letters and digits, separated by ".", "_", "__" or "-"'
const TAG_RULE = 'letters, digits, "_", "." and "-", not starting with "." or "-", at most 128 characters'

/** Parses and checks a reference; a UsageError (exit 2, REFERENCE_INVALID) that names the rule it breaks. */
export function parseReference(value: string): ImageReference {
  const result = analyse(value)
  if (typeof result === 'string') throw invalidReference(value, result)
  return result
}

/** The rule `value` breaks, or undefined when it is a valid reference (for schemas, which report it their way). */
export function referenceProblem(value: string): string | undefined {
  const result = analyse(value)
  return typeof result === 'string' ? result : undefined
}

/**
 * Checks an argument that names an image of an engine: a reference, or an image ID (`sha256:<64 hex>`, the
 * 64 hex digits alone, or a prefix of them, which is also a valid name).
 */
export function checkImageOrId(value: string): void {
  if (IMAGE_ID.test(value)) return
  parseReference(value)
}

/** A value as messages show it: quoted, and cut short when it is long (with its length). */
export function showReference(value: string): string {
  if (value.length <= 100) return JSON.stringify(value)
  return `${JSON.stringify(value.slice(0, 60)).slice(0, -1)}…" (${value.length} characters)`
}

function invalidReference(value: string, why: string): UsageError {
  return new UsageError(`${showReference(value)} is not a valid image reference: ${why}`, {
    code: 'REFERENCE_INVALID',
    details: {reference: value.length <= 100 ? value : `${value.slice(0, 60)}…`, why},
    suggestions: [
      'write it as [registry[:port]/]repository[:tag][@digest], e.g. app:1 or registry.example.com/team/app:1.4',
    ],
  })
}

function analyse(value: string): ImageReference | string {
  if (typeof value !== 'string' || value === '') return 'it is empty'
  // before any pattern: the cost of a check never grows with what a value merely claims to be
  if (value.length > REFERENCE_MAX_LENGTH) {
    return `it is ${value.length} characters long; a reference is at most ${REFERENCE_MAX_LENGTH} (a name of at most ${NAME_MAX_LENGTH}, a tag of at most ${TAG_MAX_LENGTH}, a digest)`
  }

  if (SPACE_OR_CONTROL.test(value)) return 'it contains spaces or control characters'
  if (IMAGE_ID.test(value) && !value.includes(':')) {
    return 'a 64-character hex string is an image ID, not a repository name'
  }

  let rest = value
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at !== -1) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    const problem = digestProblem(digest)
    if (problem) return problem
  }

  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (tag.length > TAG_MAX_LENGTH) return `the tag is ${tag.length} characters long (at most ${TAG_MAX_LENGTH})`
    if (!TAG.test(tag)) return `the tag ${JSON.stringify(tag)} is not valid: ${TAG_RULE}`
  }

  const name = parseName(rest)
  if (typeof name === 'string') return name
  if (!tag && !digest) tag = 'latest'
  return {...name, digest, tag}
}

/** `[domain/]path`, as Docker splits it: the first component is a domain when it looks like a host. */
function parseName(name: string): string | {domain: string; path: string} {
  if (name === '') return 'the repository name is empty'
  if (name.length > NAME_MAX_LENGTH) {
    return `the name is ${name.length} characters long (at most ${NAME_MAX_LENGTH}, registry host included)`
  }

  const parts = name.split('/')
  let domain = 'docker.io'
  const first = parts[0]!
  if (parts.length > 1 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first)) {
    if (!DOMAIN.test(first)) {
      return `${JSON.stringify(first)} is not a registry host: dot-separated parts of letters, digits and "-" (or an [IPv6] address), then an optional :port`
    }

    domain = first === 'index.docker.io' ? 'docker.io' : first
    parts.shift()
  }

  for (const part of parts) {
    if (part === '') return 'the repository has an empty path component ("//", or a "/" at an end)'
    if (part.toLowerCase() !== part) return `repository names are lower-case: ${JSON.stringify(part)}`
    if (!PATH_COMPONENT.test(part)) return `${JSON.stringify(part)} is not a valid path component: ${COMPONENT_RULE}`
  }

  if (domain === 'docker.io' && parts.length === 1) parts.unshift('library')
  return {domain, path: parts.join('/')}
}

function digestProblem(digest: string): string | undefined {
  const example = 'algorithm:hex, e.g. sha256: and 64 hex digits'
  if (!DIGEST.test(digest)) return `${JSON.stringify(digest)} after "@" is not a digest (${example})`
  const [algorithm = '', hex = ''] = digest.split(':')
  const length = DIGEST_HEX_LENGTHS[algorithm]
  if (length === undefined) return `the digest algorithm ${JSON.stringify(algorithm)} is not sha256, sha384 or sha512`
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) {
    return `a ${algorithm} digest has ${length} lower-case hex digits, not ${JSON.stringify(hex.length > 140 ? `${hex.slice(0, 20)}…` : hex)}`
  }

  return undefined
}

/** The repository as the engine names it: `busybox`, `corp.example/team/app`. */
export function repositoryName(reference: ImageReference): string {
  if (reference.domain === 'docker.io') {
    return reference.path.startsWith('library/') ? reference.path.slice('library/'.length) : reference.path
  }

  return `${reference.domain}/${reference.path}`
}

/** The familiar form: `busybox:latest`, `localhost:5000/app:1`, `app@sha256:…`. */
export function formatReference(reference: ImageReference): string {
  const name = repositoryName(reference)
  return `${name}${reference.tag ? `:${reference.tag}` : ''}${reference.digest ? `@${reference.digest}` : ''}`
}
