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

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^\w[\w.-]{0,127}$/
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/

export function parseReference(value: string): ImageReference {
  let rest = value
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at !== -1) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) throw invalid(value, `"${digest}" is not a digest`)
  }

  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw invalid(value, `"${tag}" is not a valid tag`)
  }

  const parts = rest.split('/')
  let domain = 'docker.io'
  const first = parts[0] ?? ''
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    domain = first
    parts.shift()
  }

  if (parts.length === 0 || parts.some((part) => !COMPONENT.test(part))) {
    throw invalid(value, 'repository names are lower-case letters, digits and separators (. _ __ -)')
  }

  if (domain === 'docker.io' && parts.length === 1) parts.unshift('library')
  if (!tag && !digest) tag = 'latest'
  return {digest, domain, path: parts.join('/'), tag}
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

function invalid(value: string, why: string): UsageError {
  return new UsageError(`"${value}" is not a valid image reference: ${why}`, {code: 'INVALID_REFERENCE'})
}
