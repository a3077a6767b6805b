/* eslint-disable complexity -- a fake server routes in a few long handlers, easier to read whole */
import type {AddressInfo} from 'node:net'

// A fake OCI Distribution registry, just enough for the client's unit tests.
import {randomUUID} from 'node:crypto'
import http, {type IncomingMessage, type ServerResponse} from 'node:http'
import https from 'node:https'

import {sha256} from '../../../../../test/helpers/digests.js'

export interface FakeRegistryOptions {
  auth?: {
    /** anonymous tokens may pull */
    anonymousPull?: boolean
    /** refresh token accepted by the token endpoint's POST */
    identityToken?: string
    kind: 'basic' | 'bearer'
    password: string
    /** repositories the user may not push to (403) */
    readOnly?: string[]
    username: string
  }
  /** blob GETs are redirected once (to /storage/…, without authentication) */
  redirectBlobs?: boolean
  /** drop the connection once, in the middle of the second PATCH */
  dropSecondPatch?: boolean
  /** answer `POST ?mount=` with 202 (an ordinary upload) instead of mounting */
  declineMount?: boolean
  /** fail this many requests with 503 before answering */
  failFirst?: number
  pageSize?: number
  tls?: {cert: string; key: string}
}

interface Upload {
  data: Buffer[]
  length: number
  repository: string
}

export interface FakeRegistry {
  blobs: Map<string, Buffer>
  close(): Promise<void>
  manifests: Map<string, {body: Buffer; mediaType: string}>
  patchBytes: number
  port: number
  repositories: Set<string>
  requests: string[]
  tags: Map<string, string[]>
  tokenRequests: {authorization?: string; body?: string; method: string; query: string}[]
  uploads: Map<string, Upload>
  url: string
}

export async function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const tokens = new Map<string, Set<string>>()
  let failures = options.failFirst ?? 0
  let patches = 0
  const pageSize = options.pageSize ?? 2

  const handler = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://fake')
    registry.requests.push(`${request.method} ${url.pathname}`)
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      const text =
        body === undefined ? '' : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body)
      response.writeHead(status, {'content-length': String(Buffer.byteLength(text)), ...headers})
      response.end(request.method === 'HEAD' ? undefined : text)
    }

    const error = (status: number, code: string, message: string, headers?: Record<string, string>) =>
      send(status, {errors: [{code, message}]}, {'content-type': 'application/json', ...headers})

    if (failures > 0) {
      failures--
      request.resume()
      return send(503, 'busy')
    }

    if (url.pathname === '/token') return token(request, response, url)
    if (url.pathname.startsWith('/storage/')) {
      const blob = registry.blobs.get(url.pathname.slice('/storage/'.length))
      return blob ? send(200, blob) : send(404)
    }

    // what the request needs
    const match = /^\/v2\/(.+?)\/(manifests|blobs|tags)\/(.*)$/.exec(url.pathname)
    const repository = match?.[1]
    const write = !['GET', 'HEAD'].includes(request.method ?? '')
    if (!authorized(request, response, repository, write, url)) {
      request.resume()
      return
    }

    if (url.pathname === '/v2/') return send(200, {})
    if (url.pathname === '/v2/_catalog') return page(url, [...registry.repositories].sort(), 'repositories', send)
    if (!match || !repository) return error(404, 'NAME_UNKNOWN', 'no such route')
    const kind = match[2]
    const rest = match[3] ?? ''

    if (kind === 'tags') return page(url, registry.tags.get(repository) ?? [], 'tags', send, {name: repository})

    if (kind === 'manifests') {
      const key = `${repository}@${rest}`
      if (request.method === 'PUT') {
        const body = await readBody(request)
        try {
          JSON.parse(body.toString())
        } catch {
          return error(400, 'MANIFEST_INVALID', 'manifest invalid')
        }

        const digest = sha256(body)
        const stored = {body, mediaType: request.headers['content-type'] ?? ''}
        registry.manifests.set(key, stored)
        registry.manifests.set(`${repository}@${digest}`, stored)
        registry.repositories.add(repository)
        if (!rest.includes(':')) registry.tags.set(repository, [...(registry.tags.get(repository) ?? []), rest])
        return send(201, '', {'docker-content-digest': digest, location: `/v2/${repository}/manifests/${digest}`})
      }

      const manifest = registry.manifests.get(key)
      if (!manifest) return error(404, 'MANIFEST_UNKNOWN', 'manifest unknown')
      return send(200, manifest.body, {
        'content-type': manifest.mediaType,
        'docker-content-digest': sha256(manifest.body),
      })
    }

    // blobs
    if (rest.startsWith('uploads/')) return upload(request, repository, rest.slice('uploads/'.length), url, send, error)
    const blob = registry.blobs.get(rest)
    if (!blob) return error(404, 'BLOB_UNKNOWN', 'blob unknown')
    if (options.redirectBlobs && request.method === 'GET') return send(307, '', {location: `/storage/${rest}`})
    return send(200, blob, {'content-type': 'application/octet-stream', 'docker-content-digest': rest})
  }

  const upload = async (
    request: IncomingMessage,
    repository: string,
    id: string,
    url: URL,
    send: (status: number, body?: unknown, headers?: Record<string, string>) => void,
    error: (status: number, code: string, message: string) => void,
  ) => {
    const location = (uuid: string) => `/v2/${repository}/blobs/uploads/${uuid}?_state=${uuid.slice(0, 6)}%3D`
    if (request.method === 'POST' && !id) {
      const mount = url.searchParams.get('mount')
      if (mount && registry.blobs.has(mount) && !options.declineMount)
        return send(201, '', {location: `/v2/${repository}/blobs/${mount}`})
      const uuid = randomUUID()
      registry.uploads.set(uuid, {data: [], length: 0, repository})
      return send(202, '', {location: location(uuid), range: '0-0'})
    }

    const state = registry.uploads.get(id)
    if (!state) return error(404, 'BLOB_UPLOAD_UNKNOWN', 'upload unknown')
    switch (request.method) {
      case 'GET': {
        return send(204, '', {location: location(id), range: range(state)})
      }

      case 'DELETE': {
        registry.uploads.delete(id)
        return send(204)
      }

      case 'PATCH': {
        const start = Number(/^(\d+)-/.exec(request.headers['content-range'] ?? '')?.[1] ?? state.length)
        if (start !== state.length) return error(416, 'RANGE_INVALID', 'bad range')
        patches++
        const drop = options.dropSecondPatch && patches === 2
        const expected = Number(request.headers['content-length'])
        let received = 0
        for await (const chunk of request) {
          // bytes are kept as they arrive, like a registry writing to storage
          let piece = chunk as Buffer
          if (drop && received + piece.length > expected / 2)
            piece = piece.subarray(0, Math.max(0, expected / 2 - received))
          state.data.push(piece)
          state.length += piece.length
          received += piece.length
          registry.patchBytes += piece.length
          if (drop && received >= expected / 2) {
            request.socket.destroy()
            return
          }
        }

        return send(202, '', {location: location(id), range: range(state)})
      }

      case 'PUT': {
        const body = await readBody(request)
        if (body.length > 0) {
          state.data.push(body)
          state.length += body.length
        }

        const blob = Buffer.concat(state.data)
        const digest = url.searchParams.get('digest') ?? ''
        if (url.searchParams.get('_state') === null) return error(400, 'BLOB_UPLOAD_INVALID', 'query lost')
        if (sha256(blob) !== digest) return error(400, 'DIGEST_INVALID', 'digest does not match')
        registry.blobs.set(digest, blob)
        registry.uploads.delete(id)
        return send(201, '', {'docker-content-digest': digest, location: `/v2/${repository}/blobs/${digest}`})
      }

      default: {
        return error(405, 'UNSUPPORTED', 'unsupported')
      }
    }
  }

  const page = (
    url: URL,
    items: string[],
    key: string,
    send: (status: number, body?: unknown, headers?: Record<string, string>) => void,
    extra: Record<string, string> = {},
  ) => {
    const n = Math.min(Number(url.searchParams.get('n') ?? pageSize), pageSize)
    const last = url.searchParams.get('last')
    const start = last ? items.indexOf(last) + 1 : 0
    const slice = items.slice(start, start + n)
    const headers: Record<string, string> = {'content-type': 'application/json'}
    if (start + n < items.length) {
      headers.link = `<${url.pathname}?last=${encodeURIComponent(slice.at(-1) ?? '')}&n=${n}>; rel="next"`
    }

    send(200, {...extra, [key]: slice}, headers)
  }

  const token = async (request: IncomingMessage, response: ServerResponse, url: URL) => {
    const body = request.method === 'POST' ? (await readBody(request)).toString() : undefined
    registry.tokenRequests.push({
      authorization: request.headers.authorization,
      body,
      method: request.method ?? '',
      query: url.search,
    })
    const auth = options.auth!
    const form = new URLSearchParams(body ?? url.search)
    let credentialed = false
    if (request.method === 'POST') {
      if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== auth.identityToken) {
        response.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad refresh token"}]}')
        return
      }

      credentialed = true
    } else if (request.headers.authorization) {
      if (request.headers.authorization !== basic(auth.username, auth.password)) {
        // a careless registry that echoes what it got
        response.writeHead(401, {'content-type': 'application/json'})
        response.end(
          JSON.stringify({errors: [{code: 'UNAUTHORIZED', message: `bad ${request.headers.authorization}`}]}),
        )
        return
      }

      credentialed = true
    }

    const scopes = (request.method === 'POST' ? (form.get('scope') ?? '').split(' ') : form.getAll('scope')).filter(
      Boolean,
    )
    const granted = new Set<string>()
    for (const scope of scopes) {
      const [type, name = '', actions = ''] = scope.split(':')
      if (type === 'registry' && credentialed) granted.add('catalog:*')
      if (type !== 'repository') continue
      for (const action of actions.split(',')) {
        if (credentialed || (auth.anonymousPull && action === 'pull')) granted.add(`${name}:${action}`)
      }
    }

    const value = `tok-${randomUUID()}`
    tokens.set(value, granted)
    response.writeHead(200, {'content-type': 'application/json'})
    response.end(
      JSON.stringify(
        Object.fromEntries([
          ['access_token', value],
          ['expires_in', 300],
        ]),
      ),
    )
  }

  const authorized = (
    request: IncomingMessage,
    response: ServerResponse,
    repository: string | undefined,
    write: boolean,
    url: URL,
  ): boolean => {
    const {auth} = options
    if (!auth) return true
    const header = request.headers.authorization ?? ''
    const reject = (challenge: string) => {
      response.writeHead(401, {'content-type': 'application/json', 'www-authenticate': challenge})
      response.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
      return false
    }

    if (auth.kind === 'basic') {
      if (header !== basic(auth.username, auth.password)) return reject('Basic realm="fake registry"')
    } else {
      const action = write ? 'push' : 'pull'
      const scope = repository ? `repository:${repository}:${write ? 'pull,push' : 'pull'}` : undefined
      const challenge = `Bearer realm="${registry.url}/token",service="fake, registry"${scope ? `,scope="${scope}"` : ''}`
      const granted = tokens.get(header.replace(/^Bearer /, ''))
      if (!granted) return reject(challenge)
      if (url.pathname === '/v2/_catalog' && !granted.has('catalog:*'))
        return reject(`${challenge},error="insufficient_scope"`)
      if (repository && !granted.has(`${repository}:${action}`))
        return reject(`${challenge},error="insufficient_scope"`)
    }

    if (write && repository && auth.readOnly?.includes(repository)) {
      response.writeHead(403, {'content-type': 'application/json'})
      response.end('{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}')
      return false
    }

    return true
  }

  const server = options.tls ? https.createServer(options.tls) : http.createServer()
  server.on('request', (request, response) => {
    handler(request, response).catch((error: unknown) => {
      response.destroy(error as Error)
    })
  })
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve)
  })
  const {port} = server.address() as AddressInfo
  const registry: FakeRegistry = {
    blobs: new Map(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
    manifests: new Map(),
    patchBytes: 0,
    port,
    repositories: new Set(),
    requests: [],
    tags: new Map(),
    tokenRequests: [],
    uploads: new Map(),
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
  }
  return registry
}

function range(upload: Upload): string {
  return `0-${Math.max(upload.length - 1, 0)}`
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
