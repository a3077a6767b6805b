/**
 * The registries of a run: those a recipe declares (by name, with their CA, insecure flag and the names of
 * the variables that hold credentials), and any other a reference names by host (trusted as Docker trusts
 * it, with the credentials `docker login` stored). One client per registry.
 */
import {type RecipeRegistry, UsageError} from '@transship/kit'
import {type ImageReference, parseReference} from '@transship/kit/reference'

import type {RegistryClient, RegistryCredentials} from './types.js'

import {openRegistry} from './client.js'
import {resolveCredentials} from './credentials.js'
import {registryEndpoint} from './endpoint.js'

export interface Logger {
  debug(message: string): void
}

/** `https://host:port/path` → host:port and the path prefix of its repositories. */
function hostOf(url: string): {host: string; prefix: string} {
  const bare = url.replace(/^[a-z][\d+.a-z-]*:\/\//i, '').replace(/\/+$/, '')
  const slash = bare.indexOf('/')
  return slash === -1 ? {host: bare, prefix: ''} : {host: bare.slice(0, slash), prefix: bare.slice(slash + 1)}
}

export class Registries implements AsyncDisposable {
  private readonly clients = new Map<string, RegistryClient>()

  constructor(
    private readonly specs: Record<string, RecipeRegistry> = {},
    private readonly log?: Logger,
  ) {}

  /** Closes every client's connections. */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([...this.clients.values()].map((client) => client.close?.()))
    this.clients.clear()
  }

  /** The client of a registry named by the recipe, or by its host. */
  client(host: string): RegistryClient {
    const known = this.clients.get(host)
    if (known) return known
    const named = this.recipeEntry(host)
    const endpoint = registryEndpoint(host, named?.spec, named?.name)
    const client = openRegistry(endpoint, {credentials: () => this.credentials(host), log: this.log})
    this.clients.set(host, client)
    return client
  }

  /** Credentials for `host`: the recipe's variables when it declares the registry, else `docker login`'s. */
  async credentials(host: string): Promise<RegistryCredentials | undefined> {
    return resolveCredentials(host, this.recipeEntry(host)?.spec.auth)
  }

  /** Whether `name` is a registry of the recipe. */
  has(name: string): boolean {
    return Object.hasOwn(this.specs, name)
  }

  /** host[:port] and path prefix of a recipe registry, e.g. corp → registry.example.com, team */
  location(name: string): {host: string; prefix: string} {
    const spec = this.specs[name]
    if (!spec) {
      throw new UsageError(`no registry named "${name}"`, {
        code: 'REGISTRY_UNKNOWN',
        suggestions: [
          Object.keys(this.specs).length > 0
            ? `the recipe's registries: ${Object.keys(this.specs).join(', ')}`
            : 'declare it under `registries:` in the recipe (and pass --recipe), or give a full reference such as registry.example.com/team/app:1',
        ],
      })
    }

    return hostOf(spec.url)
  }

  /**
   * Where an image goes: `to` is a recipe registry's name (the image keeps its repository and tag there,
   * unless `as` renames it) or a full reference; without `to`, `as` or the source itself must name the registry.
   */
  target(source: ImageReference | undefined, to: string | undefined, as: string | undefined): ImageReference {
    if (to !== undefined && this.has(to)) {
      const {host, prefix} = this.location(to)
      const name = as ?? (source ? sourcePath(source) : undefined)
      if (!name) {
        throw new UsageError(`say what to call the image in ${to}: --as team/app:1`, {code: 'PUSH_NAME_MISSING'})
      }

      return parseReference(`${host}/${prefix ? `${prefix}/` : ''}${name}`)
    }

    if (to !== undefined && !to.includes('/')) {
      // a registry host (localhost:5000, registry.example.com); a bare word is an unknown registry name
      if (!/[.:]/.test(to) && to !== 'localhost') this.location(to)
      const name = as ?? (source ? sourcePath(source) : undefined)
      if (!name)
        throw new UsageError(`say what to call the image in ${to}: --as team/app:1`, {code: 'PUSH_NAME_MISSING'})
      return parseReference(`${to}/${name}`)
    }

    if (to !== undefined) return parseReference(to)
    if (as !== undefined) return parseReference(as)
    if (!source) {
      throw new UsageError('say where to push: --to REGISTRY (a recipe registry) or a full reference', {
        code: 'PUSH_TARGET_MISSING',
      })
    }

    return source
  }

  private recipeEntry(host: string): undefined | {name: string; spec: RecipeRegistry} {
    if (this.has(host)) return {name: host, spec: this.specs[host]!}
    for (const [name, spec] of Object.entries(this.specs)) {
      if (hostOf(spec.url).host === host) return {name, spec}
    }

    return undefined
  }
}

/** The repository and tag of a reference without its registry: `team/app:1`, `busybox:latest`. */
function sourcePath(reference: ImageReference): string {
  const path = reference.domain === 'docker.io' ? reference.path.replace(/^library\//, '') : reference.path
  return `${path}:${reference.tag ?? 'latest'}`
}

/** The X-Registry-Auth header the engine expects: base64url JSON of the credentials for `host`. */
export function engineAuthHeader(host: string, credentials: RegistryCredentials | undefined): string {
  const body =
    credentials === undefined
      ? {}
      : 'identityToken' in credentials
        ? {identitytoken: credentials.identityToken, serveraddress: host}
        : {password: credentials.password, serveraddress: host, username: credentials.username}
  // Go's base64.URLEncoding: the URL-safe alphabet with padding (Node's base64url drops the padding, which
  // Docker 20.10 then fails to decode and silently treats as no credentials)
  return Buffer.from(JSON.stringify(body)).toString('base64').replaceAll('+', '-').replaceAll('/', '_')
}
