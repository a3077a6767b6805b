import {UsageError} from '@transship/kit'
import {readFileSync} from 'node:fs'

import type {RegistryEndpoint} from './types.js'

/** A recipe's `registries:` entry, as far as where and how to trust the registry goes. */
interface RegistrySpec {
  /** PEM file of a CA the registry's certificate is checked against (besides the system's) */
  ca?: string
  insecure?: boolean
  /** `host[:port][/path]`, optionally with `https://` or `http://` (the latter needs `insecure: true`) */
  url: string
}

const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])
const DOCKER_HUB_URL = 'https://registry-1.docker.io'

/** Docker Hub is spelled several ways; references use `docker.io`. */
export function isDockerHub(host: string): boolean {
  return DOCKER_HUB_HOSTS.has(host.toLowerCase())
}

/** localhost, 127.0.0.0/8 and ::1 are trusted with plain HTTP / unchecked HTTPS, as Docker does. */
export function isLoopbackHost(host: string): boolean {
  let hostname: string
  try {
    hostname = new URL(`https://${host}`).hostname.toLowerCase()
  } catch {
    return false
  }

  return (
    hostname === 'localhost' ||
    hostname.endsWith('.localhost') ||
    hostname === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  )
}

/**
 * Where the registry named by `host` (as image references spell it) is, and how to trust it: from the recipe's
 * spec when it has one, else from the host itself.
 */
export function registryEndpoint(host: string, spec?: RegistrySpec, name?: string): RegistryEndpoint {
  const displayName = name ?? host
  const {explicitScheme, url} = spec
    ? specUrl(spec, displayName)
    : {explicitScheme: false, url: isDockerHub(host) ? DOCKER_HUB_URL : `https://${host}`}
  const urlHost = new URL(url).host
  const insecure = Boolean(spec?.insecure) || isLoopbackHost(urlHost)
  const endpoint: RegistryEndpoint = {host, insecure, name: displayName, url}
  // like Docker's insecure registries: HTTPS first, plain HTTP when the server does not speak TLS
  if (insecure && !explicitScheme && url.startsWith('https://')) endpoint.httpFallback = true
  if (spec?.ca) endpoint.ca = readCa(spec.ca, displayName)
  return endpoint
}

/** The API URL a recipe gives, checked: https unless it says http (which needs insecure). */
function specUrl(spec: RegistrySpec, name: string): {explicitScheme: boolean; url: string} {
  const match = /^([a-z][\d+.a-z-]*):\/\/(.*)$/i.exec(spec.url.trim())
  const scheme = match?.[1]?.toLowerCase() ?? 'https'
  const rest = (match?.[2] ?? spec.url.trim()).replace(/\/+$/, '')
  const hint = 'write the URL as host[:port][/path], optionally with https:// or http://'
  if (scheme !== 'https' && scheme !== 'http') {
    throw new UsageError(`registry ${name}: unsupported URL scheme "${scheme}://" in "${spec.url}"`, {
      code: 'REGISTRY_URL_INVALID',
      suggestions: [hint],
    })
  }

  if (!rest || /\s/.test(rest) || !isValidUrl(`${scheme}://${rest}`)) {
    throw new UsageError(`registry ${name}: "${spec.url}" is not a valid registry URL`, {
      code: 'REGISTRY_URL_INVALID',
      suggestions: [hint],
    })
  }

  if (scheme === 'http' && !spec.insecure) {
    throw new UsageError(`registry ${name}: plain HTTP (${spec.url}) is only allowed with insecure: true`, {
      code: 'REGISTRY_INSECURE_REQUIRED',
      suggestions: [`add "insecure: true" to the registry ${name} in the recipe, or use https://`],
    })
  }

  return {explicitScheme: Boolean(match), url: `${scheme}://${rest}`}
}

function isValidUrl(url: string): boolean {
  try {
    const parsed = new URL(url)
    return Boolean(parsed.hostname) && !parsed.search && !parsed.hash && !parsed.username && !parsed.password
  } catch {
    return false
  }
}

function readCa(file: string, name: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    const {code} = error as NodeJS.ErrnoException
    throw new UsageError(`registry ${name}: cannot read the CA certificate ${file} (${code ?? 'error'})`, {
      cause: error,
      code: code === 'ENOENT' ? 'REGISTRY_CA_MISSING' : 'REGISTRY_CA_UNREADABLE',
      details: {file},
      suggestions: ['check the path given as "ca" for this registry in the recipe'],
    })
  }

  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new UsageError(`registry ${name}: ${file} is not a PEM certificate`, {
      code: 'REGISTRY_CA_INVALID',
      details: {file},
      suggestions: ['give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)'],
    })
  }

  return text
}
