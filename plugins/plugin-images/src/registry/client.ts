import type {IncomingHttpHeaders} from 'node:http'

import {type ErrorCode, ExitCode, TransshipError, UnreachableError} from '@transship/kit'
import {createHash} from 'node:crypto'
import {pipeline, Readable, Transform} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'
import tls from 'node:tls'
import {Agent, type Dispatcher, request} from 'undici'

import type {BlobUploadOptions, ManifestResult, RegistryClient, RegistryCredentials, RegistryEndpoint} from './types.js'

import {type AuthContext, RegistryAuthenticator} from './auth.js'

export interface RegistryClientOptions {
  /** first retry delay; doubled each retry, with jitter (default 500 ms) */
  backoffMs?: number
  /** PATCH chunk size for blobs larger than it (default 32 MiB) */
  chunkSize?: number
  /** called once, when the registry first asks for authentication */
  credentials?: () => Promise<RegistryCredentials | undefined>
  log?: {debug(message: string): void}
  /** retries on network errors, 5xx and 429 (default 4) */
  retries?: number
}

const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]

const DEFAULT_CHUNK = 32 * 1024 * 1024
const MAX_MANIFEST_BYTES = 8 * 1024 * 1024
const MAX_REDIRECTS = 5
const MAX_RETRY_AFTER_MS = 120_000
const MAX_BACKOFF_MS = 30_000
const PAGE_SIZE = 100

/** error codes of the OCI Distribution specification (and Docker's), surfaced as REGISTRY_<CODE> */
const REGISTRY_CODES = new Set<string>([
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DENIED',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'MANIFEST_UNVERIFIED',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'PAGINATION_NUMBER_INVALID',
  'RANGE_INVALID',
  'SIZE_INVALID',
  'TAG_INVALID',
  'TOOMANYREQUESTS',
  'UNAUTHORIZED',
  'UNSUPPORTED',
] satisfies Array<{[K in ErrorCode]: K extends `REGISTRY_${infer C}` ? C : never}[ErrorCode]>)

/** Network failures worth retrying (the connection, not the request, failed). */
const RETRYABLE_NETWORK = new Set([
  'EAI_AGAIN',
  'ECONNABORTED',
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_SOCKET',
])

/** errors the upload loop may retry (resuming), marked where they are made */
const retryable = new WeakSet<object>()

type Body = (() => Readable) | Buffer | string

interface Exchange {
  /** authenticate for the registry (absent for other hosts: token realms, storage redirects) */
  auth?: AuthContext
  body?: Body
  headers?: Record<string, string>
  method: Dispatcher.HttpMethod
  /** transport-level retries; 0 where the caller resumes itself */
  retries?: number
  signal?: AbortSignal
  /** absolute, or a path below the endpoint's URL (`/v2/...`) */
  url: string
}

type Response = Dispatcher.ResponseData & {url: string}

/** A client of the OCI Distribution API for `endpoint`; see RegistryClient. */
export function openRegistry(endpoint: RegistryEndpoint, options: RegistryClientOptions = {}): RegistryClient {
  return new HttpRegistryClient(endpoint, options)
}

class HttpRegistryClient implements RegistryClient {
  readonly endpoint: RegistryEndpoint
  private readonly auth: RegistryAuthenticator
  private base: string
  private readonly backoffMs: number
  private readonly chunkSize: number
  private closed = false
  private readonly log: undefined | {debug(message: string): void}
  private otherAgent: Agent | undefined
  /** undefined until the first reply settles whether an insecure registry speaks HTTPS or plain HTTP */
  private probing: boolean
  private readonly registryAgent: Agent
  private readonly retries: number

  constructor(endpoint: RegistryEndpoint, options: RegistryClientOptions) {
    this.endpoint = endpoint
    this.base = endpoint.url.replace(/\/+$/, '')
    this.backoffMs = options.backoffMs ?? 500
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK
    this.log = options.log
    this.retries = options.retries ?? 4
    this.probing = Boolean(endpoint.httpFallback) && this.base.startsWith('https://')
    const insecureTls = endpoint.insecure && this.base.startsWith('https://')
    this.registryAgent = new Agent({connect: {...this.trust(), ...(insecureTls ? {rejectUnauthorized: false} : {})}})
    this.auth = new RegistryAuthenticator({
      credentials: options.credentials,
      host: endpoint.host,
      log: options.log,
      name: endpoint.name,
      send: (url, init) => this.send({...init, retries: this.retries, url}),
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all([this.registryAgent.close(), this.otherAgent?.close()])
  }

  async ping(signal?: AbortSignal): Promise<void> {
    const response = await this.exchange({
      auth: {action: 'ping', scopes: [], signal},
      method: 'GET',
      signal,
      url: '/v2/',
    })
    if (response.statusCode === 200) {
      await response.body.dump()
      return
    }

    throw await this.failure(response, 'checking the API (/v2/)')
  }

  async getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<ManifestResult | undefined> {
    const response = await this.exchange({
      auth: pull(repository, signal),
      headers: {accept: MANIFEST_MEDIA_TYPES.join(', ')},
      method: 'GET',
      signal,
      url: `/v2/${repository}/manifests/${reference}`,
    })
    if (response.statusCode === 404) {
      await response.body.dump()
      return undefined
    }

    if (response.statusCode !== 200) {
      throw await this.failure(response, `getting the manifest ${repository}:${reference}`)
    }

    const body = await readLimited(response.body, MAX_MANIFEST_BYTES, () =>
      this.error('REGISTRY_MANIFEST_TOO_LARGE', `the manifest ${repository}:${reference} is larger than 8 MiB`),
    )
    const header = single(response.headers['docker-content-digest'])
    const digest = isDigest(reference) ? reference : `sha256:${sha256(body)}`
    if (isDigest(reference) && digestOf(body, reference) !== reference) {
      throw this.error(
        'REGISTRY_DIGEST_MISMATCH',
        `the manifest ${repository}@${reference} the registry sent does not match its digest`,
        {details: {header, reference, repository}},
      )
    }

    if (header && header !== digest)
      this.log?.debug(
        `registry ${this.endpoint.name}: Docker-Content-Digest ${header} differs from the body's ${digest}`,
      )
    const mediaType = single(response.headers['content-type'])?.split(';')[0]?.trim() || mediaTypeOf(body)
    return {body, digest, mediaType}
  }

  async headManifest(
    repository: string,
    reference: string,
    signal?: AbortSignal,
  ): Promise<undefined | {digest: string; mediaType: string; size: number}> {
    const response = await this.exchange({
      auth: pull(repository, signal),
      headers: {accept: MANIFEST_MEDIA_TYPES.join(', ')},
      method: 'HEAD',
      signal,
      url: `/v2/${repository}/manifests/${reference}`,
    })
    await response.body.dump()
    if (response.statusCode === 404) return undefined
    if (response.statusCode !== 200)
      throw await this.failure(response, `checking the manifest ${repository}:${reference}`)
    const digest = single(response.headers['docker-content-digest']) ?? (isDigest(reference) ? reference : undefined)
    const size = Number(single(response.headers['content-length']))
    const mediaType = single(response.headers['content-type'])?.split(';')[0]?.trim()
    if (digest && mediaType && Number.isFinite(size)) return {digest, mediaType, size}
    // some registries leave the headers out of HEAD replies: the manifest itself tells
    const manifest = await this.getManifest(repository, reference, signal)
    return manifest && {digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.body.length}
  }

  async putManifest(
    repository: string,
    reference: string,
    body: Buffer,
    mediaType: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const response = await this.exchange({
      auth: push(repository, signal),
      body,
      headers: {'content-length': String(body.length), 'content-type': mediaType},
      method: 'PUT',
      signal,
      url: `/v2/${repository}/manifests/${reference}`,
    })
    if (response.statusCode !== 201 && response.statusCode !== 200) {
      throw await this.failure(response, `putting the manifest ${repository}:${reference}`)
    }

    await response.body.dump()
    return single(response.headers['docker-content-digest']) ?? `sha256:${sha256(body)}`
  }

  async headBlob(repository: string, digest: string, signal?: AbortSignal): Promise<number | undefined> {
    const response = await this.follow({
      auth: pull(repository, signal),
      method: 'HEAD',
      signal,
      url: blobPath(repository, digest),
    })
    await response.body.dump()
    if (response.statusCode === 404) return undefined
    if (response.statusCode !== 200) throw await this.failure(response, `checking the blob ${digest} in ${repository}`)
    const size = Number(single(response.headers['content-length']))
    return Number.isFinite(size) ? size : 0
  }

  async getBlob(repository: string, digest: string, signal?: AbortSignal): Promise<Readable> {
    const response = await this.follow({
      auth: pull(repository, signal),
      method: 'GET',
      signal,
      url: blobPath(repository, digest),
    })
    if (response.statusCode === 404) {
      await response.body.dump()
      throw this.error(
        'REGISTRY_BLOB_UNKNOWN',
        `the registry ${this.endpoint.name} has no blob ${digest} in ${repository}`,
        {
          details: {digest, repository, status: 404},
        },
      )
    }

    if (response.statusCode !== 200) throw await this.failure(response, `getting the blob ${digest} from ${repository}`)
    const [algorithm] = digest.split(':')
    const hash = createHash(algorithm ?? 'sha256')
    const verify = new Transform({
      flush: (callback) => {
        const actual = `${algorithm}:${hash.digest('hex')}`
        callback(
          actual === digest
            ? undefined
            : this.error(
                'REGISTRY_DIGEST_MISMATCH',
                `the blob ${digest} from ${repository} does not match its digest`,
                {
                  details: {actual, digest, repository},
                },
              ),
        )
      },
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk)
        callback(null, chunk)
      },
    })
    // errors reach `verify` (pipeline destroys every stream with them); destroying `verify` frees the socket
    pipeline(response.body, verify, () => {})
    return verify
  }

  async mountBlob(repository: string, digest: string, from: string, signal?: AbortSignal): Promise<boolean> {
    const auth: AuthContext = {
      action: 'push',
      repository,
      scopes: [`repository:${repository}:pull,push`, `repository:${from}:pull`],
      signal,
    }
    const query = `mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`
    const response = await this.exchange({
      auth,
      headers: {'content-length': '0'},
      method: 'POST',
      signal,
      url: `/v2/${repository}/blobs/uploads/?${query}`,
    })
    await response.body.dump()
    if (response.statusCode === 201) return true
    if (response.statusCode === 202) {
      // the registry started an ordinary upload instead: cancelled, the caller uploads the blob itself
      const location = single(response.headers.location)
      if (location) {
        const cancel = await this.exchange({auth, method: 'DELETE', signal, url: resolve(location, response.url)})
        await cancel.body.dump()
      }

      return false
    }

    throw await this.failure(response, `mounting ${digest} from ${from} into ${repository}`)
  }

  async uploadBlob(
    repository: string,
    blob: {digest: string; size: number},
    body: (offset: number) => Readable,
    options: BlobUploadOptions = {},
  ): Promise<void> {
    const {signal} = options
    const auth = push(repository, signal)
    let reported = 0
    const progress = (offset: number) => {
      // bytes sent again after a resume are not progress
      if (offset > reported) {
        options.onBytes?.(offset - reported)
        reported = offset
      }
    }

    let location: string | undefined
    let offset = 0
    for (let attempt = 0; ; attempt++) {
      try {
        if (location === undefined) {
          location = await this.startUpload(repository, auth)
          offset = 0
        }

        if (blob.size <= this.chunkSize) {
          // small blob: the whole content in the closing PUT
          await this.finishUpload(location, blob, auth, {offset: 0, open: body, progress})
          return
        }

        while (offset < blob.size) {
          const end = Math.min(offset + this.chunkSize, blob.size)
          location = await this.patchChunk(location, auth, {end, offset, open: body, progress, repository})
          offset = end
        }

        await this.finishUpload(location, blob, auth)
        return
      } catch (error) {
        if (signal?.aborted || !retryable.has(error as object) || attempt >= this.retries) throw error
        this.log?.debug(
          `registry ${this.endpoint.name}: upload of ${blob.digest} failed (${describeError(error)}), retrying`,
        )
        await sleep(this.delay(attempt), undefined, {signal})
        // the closing PUT may have landed before the connection broke
        if ((await this.headBlob(repository, blob.digest, signal)) === blob.size) return
        const resumed = blob.size > this.chunkSize && location ? await this.uploadStatus(location, auth) : undefined
        if (resumed) {
          location = resumed.location
          offset = resumed.offset
          this.log?.debug(`registry ${this.endpoint.name}: resuming ${blob.digest} at byte ${offset}`)
        } else {
          location = undefined
        }
      }
    }
  }

  catalog(signal?: AbortSignal): AsyncIterable<string> {
    return this.pages(`/v2/_catalog?n=${PAGE_SIZE}`, 'repositories', {
      action: 'catalog',
      scopes: ['registry:catalog:*'],
      signal,
    })
  }

  tags(repository: string, signal?: AbortSignal): AsyncIterable<string> {
    return this.pages(`/v2/${repository}/tags/list?n=${PAGE_SIZE}`, 'tags', pull(repository, signal))
  }

  private async *pages(first: string, key: 'repositories' | 'tags', auth: AuthContext): AsyncIterable<string> {
    let url: string | undefined = first
    while (url) {
      const response = await this.exchange({auth, method: 'GET', signal: auth.signal, url})
      if (response.statusCode !== 200) throw await this.failure(response, `listing ${auth.repository ?? 'the catalog'}`)
      const page = (await response.body.json()) as Record<string, unknown>
      const items = page[key]
      if (Array.isArray(items)) for (const item of items) if (typeof item === 'string') yield item
      const next = nextLink(response.headers.link)
      url = next === undefined ? undefined : resolve(next, response.url)
    }
  }

  /** `POST …/blobs/uploads/`: the upload's Location. */
  private async startUpload(repository: string, auth: AuthContext): Promise<string> {
    const response = await this.exchange({
      auth,
      headers: {'content-length': '0'},
      method: 'POST',
      signal: auth.signal,
      url: `/v2/${repository}/blobs/uploads/`,
    })
    await response.body.dump()
    const location = single(response.headers.location)
    if (response.statusCode !== 202 || !location) {
      throw await this.failure(response, `starting an upload to ${repository}`)
    }

    return resolve(location, response.url)
  }

  /** One `PATCH` of bytes [offset, end): the Location for the next request. */
  private async patchChunk(
    location: string,
    auth: AuthContext,
    chunk: {
      end: number
      offset: number
      open: (offset: number) => Readable
      progress: (offset: number) => void
      repository: string
    },
  ): Promise<string> {
    const response = await this.exchange({
      auth,
      body: () => slice(chunk.open(chunk.offset), chunk.end - chunk.offset, chunk.offset, chunk.progress),
      headers: {
        'content-length': String(chunk.end - chunk.offset),
        'content-range': `${chunk.offset}-${chunk.end - 1}`,
        'content-type': 'application/octet-stream',
      },
      method: 'PATCH',
      retries: 0,
      signal: auth.signal,
      url: location,
    })
    await response.body.dump()
    if (response.statusCode !== 202) throw await this.uploadFailure(response, `uploading to ${chunk.repository}`)
    const next = single(response.headers.location)
    return next ? resolve(next, response.url) : location
  }

  /** The closing `PUT …?digest=`, with the content [offset, size) when `content` is given. */
  private async finishUpload(
    location: string,
    blob: {digest: string; size: number},
    auth: AuthContext,
    content?: {offset: number; open: (offset: number) => Readable; progress: (offset: number) => void},
  ): Promise<void> {
    const url = `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(blob.digest)}`
    const length = content ? blob.size - content.offset : 0
    const response = await this.exchange({
      auth,
      body: content && (() => slice(content.open(content.offset), length, content.offset, content.progress)),
      headers: {'content-length': String(length), 'content-type': 'application/octet-stream'},
      method: 'PUT',
      retries: content ? 0 : this.retries,
      signal: auth.signal,
      url,
    })
    await response.body.dump()
    if (response.statusCode !== 201 && response.statusCode !== 204) {
      throw await this.uploadFailure(response, `finishing the upload of ${blob.digest}`)
    }
  }

  /** Where an interrupted upload stands (`GET` its Location: `Range: 0-N`); undefined when it cannot resume. */
  private async uploadStatus(
    location: string,
    auth: AuthContext,
  ): Promise<undefined | {location: string; offset: number}> {
    try {
      const response = await this.exchange({auth, method: 'GET', signal: auth.signal, url: location})
      await response.body.dump()
      const range = /^(?:bytes=)?0-(\d+)$/.exec(single(response.headers.range) ?? '')
      if (response.statusCode !== 204 || !range) return undefined
      const next = single(response.headers.location)
      return {location: next ? resolve(next, response.url) : location, offset: Number(range[1]) + 1}
    } catch (error) {
      if (auth.signal?.aborted) throw error
      return undefined
    }
  }

  /** A failed upload request: retryable (resumed or restarted) when the server or the upload session failed. */
  private async uploadFailure(response: Response, what: string): Promise<TransshipError> {
    const error = await this.failure(response, what)
    const status = response.statusCode
    if (status >= 500 || status === 429 || status === 404 || status === 416) retryable.add(error)
    return error
  }

  /** GET/HEAD following redirects (registries send blobs from storage elsewhere). */
  private async follow(exchange: Exchange): Promise<Response> {
    let current = exchange
    for (let hop = 0; ; hop++) {
      const response = await this.exchange(current)
      const location = single(response.headers.location)
      if (![301, 302, 303, 307, 308].includes(response.statusCode) || !location || hop >= MAX_REDIRECTS) return response
      await response.body.dump()
      const url = resolve(location, response.url)
      // credentials go to the registry only, never to the storage it redirects to
      current = {...current, auth: this.isRegistry(url) ? current.auth : undefined, url}
    }
  }

  /** A request to the registry, authenticated when it asks (401), retried by `send`. */
  private async exchange(exchange: Exchange): Promise<Response> {
    const {auth} = exchange
    if (!auth || !this.isRegistry(this.absolute(exchange.url))) return this.send(exchange)
    for (let round = 0; ; round++) {
      const {header, sent} = await this.auth.authorize(auth)
      const response = await this.send({
        ...exchange,
        headers: {...exchange.headers, ...(header ? {authorization: header} : {})},
      })
      if (response.statusCode === 403) {
        await response.body.dump()
        throw this.auth.denied(auth)
      }

      if (response.statusCode !== 401) return response
      await response.body.dump()
      await this.auth.unauthorized(response.headers, sent, auth)
      if (round >= 3)
        throw this.error('REGISTRY_AUTH_LOOP', `the registry ${this.endpoint.name} keeps asking for authentication`)
    }
  }

  /** One HTTP request, retried with backoff on network errors, 5xx and 429. */
  private async send(exchange: Exchange): Promise<Response> {
    const retries = exchange.retries ?? this.retries
    for (let attempt = 0; ; attempt++) {
      const url = this.absolute(exchange.url)
      let response: Dispatcher.ResponseData
      try {
        response = await this.request(url, exchange)
      } catch (error) {
        if (exchange.signal?.aborted) throw exchange.signal.reason ?? error
        const code = errorCode(error)
        const fallback = await this.tryHttp(url, exchange, code)
        if (fallback) return fallback

        if (!RETRYABLE_NETWORK.has(code ?? '') || attempt >= retries) throw this.unreachable(url, error)
        this.log?.debug(
          `registry ${this.endpoint.name}: ${exchange.method} ${loggable(url)} failed (${code}), retrying`,
        )
        await sleep(this.delay(attempt), undefined, {signal: exchange.signal})
        continue
      }

      if (this.isRegistry(url)) this.probing = false
      this.log?.debug(`registry ${this.endpoint.name}: ${exchange.method} ${loggable(url)} ${response.statusCode}`)
      const status = response.statusCode
      if ((status >= 500 || status === 429) && attempt < retries) {
        await response.body.dump()
        await sleep(retryAfter(response.headers) ?? this.delay(attempt), undefined, {signal: exchange.signal})
        continue
      }

      return Object.assign(response, {url})
    }
  }

  /** The first request to an insecure registry failed as if it does not speak TLS: plain HTTP is tried once. */
  private async tryHttp(url: string, exchange: Exchange, code: string | undefined): Promise<Response | undefined> {
    if (!this.probing || !this.isRegistry(url) || !isNotTls(code)) return undefined
    const httpUrl = url.replace(/^https:/, 'http:')
    try {
      const response = await this.request(httpUrl, exchange)
      this.probing = false
      this.base = this.base.replace(/^https:/, 'http:')
      this.log?.debug(`registry ${this.endpoint.name}: speaks plain HTTP, not HTTPS`)
      return Object.assign(response, {url: httpUrl})
    } catch (error) {
      if (exchange.signal?.aborted) throw exchange.signal.reason ?? error
      return undefined
    }
  }

  private async request(url: string, exchange: Exchange): Promise<Dispatcher.ResponseData> {
    const {body} = exchange
    return request(url, {
      body: typeof body === 'function' ? body() : body,
      dispatcher: this.agentFor(url),
      headers: {'user-agent': 'transship', ...exchange.headers},
      method: exchange.method,
      signal: exchange.signal,
    })
  }

  /** the registry's own TLS settings (insecure, its CA) apply to it only; token realms and storage are checked */
  private agentFor(url: string): Agent {
    if (this.isRegistry(url)) return this.registryAgent
    this.otherAgent ??= new Agent({connect: this.trust()})
    return this.otherAgent
  }

  private absolute(url: string): string {
    return /^https?:\/\//i.test(url) ? url : `${this.base}${url}`
  }

  private isRegistry(url: string): boolean {
    try {
      return new URL(url).host === new URL(this.base).host
    } catch {
      return false
    }
  }

  private trust(): {ca?: string[]} {
    // the recipe's CA is trusted besides the system's, not instead of them
    return this.endpoint.ca ? {ca: [...tls.rootCertificates, this.endpoint.ca]} : {}
  }

  private delay(attempt: number): number {
    const exponential = Math.min(this.backoffMs * 2 ** attempt, MAX_BACKOFF_MS)
    return exponential / 2 + Math.random() * (exponential / 2)
  }

  private error(code: ErrorCode, message: string, options: {details?: Record<string, unknown>} = {}): TransshipError {
    return new TransshipError(code, ExitCode.Failed, message, {
      details: {registry: this.endpoint.name, ...options.details},
    })
  }

  /** The error for an unexpected reply, from the registry's `{errors: [{code, message}]}` when it sent one. */
  private async failure(response: Response, what: string): Promise<TransshipError> {
    const status = response.statusCode
    let errors: {code?: string; message?: string}[] = []
    try {
      const text = (await readLimited(response.body, 64 * 1024, () => new Error('too large'))).toString('utf8')
      const parsed = JSON.parse(text) as {errors?: unknown}
      if (Array.isArray(parsed.errors)) {
        errors = parsed.errors
          .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
          .map((e) => ({
            code: typeof e.code === 'string' ? e.code : undefined,
            message: typeof e.message === 'string' ? this.auth.redact(e.message) : undefined,
          }))
      }
    } catch {
      // not a registry error document: the status says it
    }

    const first = errors[0]?.code
    const code =
      first && REGISTRY_CODES.has(first)
        ? (`REGISTRY_${first}` as ErrorCode)
        : status >= 500
          ? 'REGISTRY_SERVER_ERROR'
          : status === 404
            ? 'REGISTRY_NOT_FOUND'
            : 'REGISTRY_ERROR'
    const said = errors
      .map((e) => e.message ?? e.code)
      .filter(Boolean)
      .join('; ')
    const error = new TransshipError(
      code,
      ExitCode.Failed,
      `registry ${this.endpoint.name}: ${what} failed: HTTP ${status}${said ? `: ${said}` : ''}`,
      {details: {errors, registry: this.endpoint.name, status}},
    )
    if (status >= 500 || status === 429) retryable.add(error)
    return error
  }

  private unreachable(url: string, cause: unknown): TransshipError {
    const code = errorCode(cause) ?? 'error'
    const host = safeHost(url)
    if (isCertificateError(code)) {
      return new UnreachableError(
        'REGISTRY_TLS_UNTRUSTED',
        `the TLS certificate of ${host} (registry ${this.endpoint.name}) is not trusted: ${code}`,
        {
          cause,
          details: {cause: code, host, registry: this.endpoint.name},
          suggestions: [
            `give the registry's CA certificate as "ca" for ${this.endpoint.name} in the recipe`,
            'or, for a test registry, "insecure: true"',
          ],
        },
      )
    }

    const error = new UnreachableError(
      'REGISTRY_UNREACHABLE',
      `cannot reach the registry ${this.endpoint.name} at ${host}: ${code}`,
      {
        cause,
        details: {cause: code, host, registry: this.endpoint.name},
        suggestions: [`check that ${host} is up and reachable from here`],
      },
    )
    if (RETRYABLE_NETWORK.has(code)) retryable.add(error)
    return error
  }
}

function pull(repository: string, signal?: AbortSignal): AuthContext {
  return {action: 'pull', repository, scopes: [`repository:${repository}:pull`], signal}
}

function push(repository: string, signal?: AbortSignal): AuthContext {
  return {action: 'push', repository, scopes: [`repository:${repository}:pull,push`], signal}
}

function blobPath(repository: string, digest: string): string {
  return `/v2/${repository}/blobs/${digest}`
}

/** `length` bytes of `source` (which starts at byte `start` of the blob), reporting progress as they go. */
function slice(source: Readable, length: number, start: number, progress: (offset: number) => void): Readable {
  async function* take(): AsyncGenerator<Buffer> {
    let left = length
    try {
      for await (const chunk of source) {
        const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array)
        const piece = buffer.length > left ? buffer.subarray(0, left) : buffer
        left -= piece.length
        yield piece
        progress(start + length - left)
        if (left === 0) break
      }
    } finally {
      source.destroy()
    }

    if (left > 0) throw new Error(`the blob's content ended ${left} bytes early`)
  }

  return Readable.from(take(), {objectMode: false})
}

async function readLimited(body: Readable, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > limit) {
      body.destroy()
      throw tooLarge()
    }

    chunks.push(chunk as Buffer)
  }

  return Buffer.concat(chunks)
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function resolve(location: string, from: string): string {
  return new URL(location, from).href
}

function isDigest(reference: string): boolean {
  return /^[a-z\d]+(?:[+._-][a-z\d]+)*:[\w=-]{32,}$/i.test(reference)
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

function digestOf(data: Buffer, like: string): string {
  const algorithm = like.split(':')[0] ?? 'sha256'
  try {
    return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`
  } catch {
    return `sha256:${sha256(data)}`
  }
}

function mediaTypeOf(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as {mediaType?: unknown}
    if (typeof parsed.mediaType === 'string') return parsed.mediaType
  } catch {
    // not JSON: the generic type below
  }

  return 'application/octet-stream'
}

/** `Link: </v2/_catalog?last=x&n=100>; rel="next"` */
function nextLink(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(', ') : header
  if (!value) return undefined
  for (const part of value.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part)
    if (match && /;\s*rel="?next"?/i.test(match[2] ?? '')) return match[1]
  }

  return undefined
}

function retryAfter(headers: IncomingHttpHeaders): number | undefined {
  const value = single(headers['retry-after'])
  if (!value) return undefined
  const seconds = Number(value)
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now()
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined
}

/** The error's code: Node's, undici's, or the first of an AggregateError (happy eyeballs tries several). */
function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const {cause, code, errors} = error as {cause?: unknown; code?: unknown; errors?: unknown}
  if (typeof code === 'string') return code
  if (Array.isArray(errors) && errors.length > 0) return errorCode(errors[0])
  return cause === undefined ? undefined : errorCode(cause)
}

/** The TLS handshake failed the way it does against a plain HTTP server. */
function isNotTls(code: string | undefined): boolean {
  return (
    code !== undefined && (code.startsWith('ERR_SSL_') || ['ECONNRESET', 'EPROTO', 'UND_ERR_SOCKET'].includes(code))
  )
}

function isCertificateError(code: string): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_(?:GET|VERIFY)|ERR_TLS_/.test(code)
}

function safeHost(url: string): string {
  try {
    return new URL(url).host
  } catch {
    return url
  }
}

/** The URL without its query: upload and storage URLs carry state and signatures there. */
function loggable(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.origin}${parsed.pathname}`
  } catch {
    return '(url)'
  }
}

function describeError(error: unknown): string {
  return error instanceof TransshipError ? error.code : (errorCode(error) ?? 'error')
}
