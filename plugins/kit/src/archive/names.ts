/**
 * Image names as archives carry them: `manifest.json` RepoTags hold the familiar form (`app:1`,
 * `corp/app:1`, `registry.example.com/app:1`), OCI layouts written by Docker and containerd the full one in
 * the `io.containerd.image.name` annotation (`docker.io/library/app:1`).
 */

import {referenceProblem} from '../reference.js'

const DEFAULT_DOMAIN = 'docker.io'
const LEGACY_DOMAIN = 'index.docker.io'
const OFFICIAL = 'library/'

/** Splits `name` into its domain (when it has one) and the rest. */
function splitDomain(name: string): {domain: string | undefined; rest: string} {
  const slash = name.indexOf('/')
  if (slash === -1) return {domain: undefined, rest: name}
  const first = name.slice(0, slash)
  if (first.includes('.') || first.includes(':') || first === 'localhost') {
    return {domain: first, rest: name.slice(slash + 1)}
  }

  return {domain: undefined, rest: name}
}

/** `docker.io/library/app:1` → `app:1`, `docker.io/corp/app:1` → `corp/app:1`; others unchanged. */
export function familiarName(name: string): string {
  const {domain, rest} = splitDomain(name)
  if (domain !== undefined && domain !== DEFAULT_DOMAIN && domain !== LEGACY_DOMAIN) return name
  const official = rest.startsWith(OFFICIAL) && !rest.slice(OFFICIAL.length).includes('/')
  return official ? rest.slice(OFFICIAL.length) : rest
}

/** `app:1` → `docker.io/library/app:1`, `corp/app` → `docker.io/corp/app:latest`. */
export function fullName(name: string): string {
  const {domain, rest} = splitDomain(name)
  let path = rest
  if (domain === undefined && !path.includes('/')) path = `${OFFICIAL}${path}`
  const lastSlash = path.lastIndexOf('/')
  if (!path.includes('@') && !path.slice(lastSlash + 1).includes(':')) path = `${path}:latest`
  return `${domain ?? DEFAULT_DOMAIN}/${path}`
}

/** The tag of a name (`app:1` → `1`), or undefined for a name by digest or without a tag. */
export function tagOf(name: string): string | undefined {
  if (name.includes('@')) return undefined
  const lastSlash = name.lastIndexOf('/')
  const colon = name.indexOf(':', lastSlash + 1)
  return colon === -1 ? undefined : name.slice(colon + 1)
}

/**
 * Whether an engine takes `name` as a tag when it loads an archive: a repository and a tag (`app:1`, not
 * `app` nor `app@sha256:…`). Docker 20.10 refuses the whole archive over one that is not ("invalid tag").
 */
export function isLoadableTag(name: string): boolean {
  return tagOf(name) !== undefined && referenceProblem(name) === undefined
}
