import type {EngineClient, EngineFacts, EngineMessage, EngineRequest} from '@transship/kit'

import {compareApiVersions, EngineError, UnreachableError} from '@transship/kit'
import {readMessages} from '@transship/kit/engine'
import createDebug from 'debug'
import http, {type IncomingMessage} from 'node:http'
import {type Duplex, Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {EngineTransport} from './transport.js'

const debug = createDebug('transship:engine')

/** The newest Engine API version this client has been checked against; newer engines are spoken to in it. */
export const MAX_API_VERSION = '1.47'
/** The oldest Engine API version transship supports (Docker 20.10). */
export const MIN_API_VERSION = '1.41'

/** Error bodies are small JSON documents; never read more than this of one. */
const ERROR_BODY_LIMIT = 64 * 1024

/**
 * A thin Docker Engine API client over node:http: requests go to a unix socket, TCP, or a socket forwarded
 * over SSH, depending on the transport. Bodies stream in both directions with backpressure.
 */
export class HttpEngineClient implements EngineClient {
  private cachedFacts: Promise<EngineFacts> | undefined

  private constructor(
    readonly host: string,
    private readonly transport: EngineTransport,
    readonly apiVersion: string,
  ) {}

  /** Pings the engine and negotiates the API version from the `API-Version` header of `/_ping`. */
  static async connect(host: string, transport: EngineTransport, signal?: AbortSignal): Promise<HttpEngineClient> {
    const probe = new HttpEngineClient(host, transport, '')
    const reply = await probe.send({path: '/_ping', signal}, false)
    reply.resume()
    const serverVersion = String(reply.headers['api-version'] ?? MIN_API_VERSION)
    if (compareApiVersions(serverVersion, MIN_API_VERSION) < 0) {
      throw new EngineError(
        `the engine of host "${host}" speaks API ${serverVersion}; transship needs ${MIN_API_VERSION} (Docker 20.10) or newer`,
        {host, suggestions: ['upgrade Docker on that host']},
      )
    }

    const apiVersion = compareApiVersions(serverVersion, MAX_API_VERSION) > 0 ? MAX_API_VERSION : serverVersion
    debug('%s: %s, server API %s, using %s', host, transport.describe, serverVersion, apiVersion)
    return new HttpEngineClient(host, transport, apiVersion)
  }

  async facts(signal?: AbortSignal): Promise<EngineFacts> {
    this.cachedFacts ??= this.readFacts(signal)
    return this.cachedFacts
  }

  async json<T>(request: EngineRequest): Promise<T> {
    const reply = await this.send(request, true)
    const text = await readText(reply, Number.POSITIVE_INFINITY)
    if (text.length === 0) return undefined as T
    return JSON.parse(text) as T
  }

  async *messages(request: EngineRequest): AsyncIterable<EngineMessage> {
    const reply = await this.send(request, true)
    for await (const message of readMessages(reply, this.host)) {
      if (message.error !== undefined || message.errorDetail !== undefined) {
        reply.destroy()
        throw new EngineError(`${this.host}: ${message.errorDetail?.message ?? message.error}`, {host: this.host})
      }

      yield message
    }
  }

  async stream(request: EngineRequest): Promise<IncomingMessage> {
    return this.send(request, true)
  }

  async upgrade(request: EngineRequest): Promise<Duplex> {
    const {signal} = request
    const method = request.method ?? 'POST'
    const path = `/v${this.apiVersion}${request.path}${queryString(request.query)}`
    const headers: Record<string, string> = {...request.headers, connection: 'Upgrade', upgrade: 'tcp'}
    let json: string | undefined
    if (request.body instanceof Readable) throw new TypeError('upgrade(): the body is written to the upgraded stream')
    if (request.body !== undefined) {
      json = JSON.stringify(request.body)
      headers['content-type'] = 'application/json'
      headers['content-length'] = String(Buffer.byteLength(json))
    }

    signal?.throwIfAborted()
    const connection = await this.transport.connect(signal)
    debug('%s %s %s (upgrade)', this.host, method, path)
    return new Promise<Duplex>((resolve, reject) => {
      // the signal is watched here, not given to node:http: it must outlive the request and destroy the stream
      const outgoing = http.request({...connection, headers, method, path})
      const onAbort = (): void => {
        outgoing.destroy()
        reject(this.transportError(new Error('aborted'), signal))
      }

      signal?.addEventListener('abort', onAbort, {once: true})
      outgoing.once('upgrade', (_reply, socket, head) => {
        signal?.removeEventListener('abort', onAbort)
        if (head.length > 0) socket.unshift(head)
        if (signal) {
          const destroy = (): void => {
            socket.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'))
          }

          signal.addEventListener('abort', destroy, {once: true})
          socket.once('close', () => signal.removeEventListener('abort', destroy))
        }

        resolve(socket)
      })
      outgoing.once('response', (reply) => {
        signal?.removeEventListener('abort', onAbort)
        const status = reply.statusCode
        if (status !== undefined && status >= 200 && status < 300) {
          reply.resume()
          const message = `the engine did not upgrade the connection of ${method} ${request.path} (HTTP ${status})`
          reject(new EngineError(`${this.host}: ${message}`, {host: this.host, status}))
          return
        }

        this.replyError(reply, method, request.path).then(reject, reject)
      })
      outgoing.once('error', (error) => {
        signal?.removeEventListener('abort', onAbort)
        reject(this.transportError(error, signal))
      })
      outgoing.end(json)
    })
  }

  private async readFacts(signal?: AbortSignal): Promise<EngineFacts> {
    const [version, info] = await Promise.all([
      this.json<{ApiVersion: string; Arch: string; Os: string; Version: string}>({path: '/version', signal}),
      this.json<{
        Architecture?: string
        DockerRootDir: string
        Driver: string
        DriverStatus?: [string, string][]
        ID: string
      }>({
        path: '/info',
        signal,
      }),
    ])
    const snapshotter = (info.DriverStatus ?? []).some(
      ([key, value]) => key === 'driver-type' && value === 'io.containerd.snapshotter.v1',
    )
    return {
      apiVersion: this.apiVersion,
      arch: version.Arch,
      dataRoot: info.DockerRootDir,
      id: info.ID,
      imageStore: snapshotter ? 'containerd' : 'classic',
      os: version.Os,
      storageDriver: info.Driver,
      version: version.Version,
    }
  }

  private async send(request: EngineRequest, versioned: boolean): Promise<IncomingMessage> {
    const method = request.method ?? 'GET'
    const path = (versioned ? `/v${this.apiVersion}` : '') + request.path + queryString(request.query)
    const headers: Record<string, string> = {...request.headers}
    let body: Readable | undefined
    if (request.body instanceof Readable) {
      body = request.body
      headers['content-type'] ??= 'application/x-tar'
    } else if (request.body !== undefined) {
      const json = JSON.stringify(request.body)
      body = Readable.from([json])
      headers['content-type'] = 'application/json'
      headers['content-length'] = String(Buffer.byteLength(json))
    }

    request.signal?.throwIfAborted()
    const connection = await this.transport.connect(request.signal)
    debug('%s %s %s', this.host, method, path)
    const reply = await new Promise<IncomingMessage>((resolve, reject) => {
      const outgoing = http.request({...connection, headers, method, path, signal: request.signal})
      outgoing.once('response', resolve)
      outgoing.once('error', (error) => reject(this.transportError(error, request.signal)))
      if (body) {
        // The upload fails as a whole when the body stream fails; the reply (if any) then carries the reason.
        pipeline(body, outgoing).catch((error: unknown) => {
          outgoing.destroy(error as Error)
        })
      } else {
        outgoing.end()
      }
    })
    if (reply.statusCode !== undefined && reply.statusCode >= 200 && reply.statusCode < 300) return reply
    throw await this.replyError(reply, method, request.path)
  }

  /** The engine's error reply as an EngineError: its message when the body has one, else the status. */
  private async replyError(reply: IncomingMessage, method: string, path: string): Promise<EngineError> {
    const text = await readText(reply, ERROR_BODY_LIMIT).catch(() => '')
    return new EngineError(`${this.host}: ${errorMessage(text) || `HTTP ${reply.statusCode} on ${method} ${path}`}`, {
      host: this.host,
      status: reply.statusCode,
    })
  }

  private transportError(error: Error & {code?: string}, signal?: AbortSignal): Error {
    if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : error
    if (error instanceof UnreachableError) return error
    const where = `${this.transport.describe} (host "${this.host}")`
    switch (error.code) {
      case 'EACCES': {
        return new UnreachableError('ENGINE_PERMISSION_DENIED', `permission denied on the Docker socket ${where}`, {
          cause: error,
          suggestions: ['run as a user in the docker group, or as root'],
        })
      }

      case 'ECONNREFUSED':
      case 'ENOENT': {
        return new UnreachableError('ENGINE_UNREACHABLE', `no Docker engine answers at ${where}`, {
          cause: error,
          suggestions: ["is dockerd running there? check DOCKER_HOST, the docker context, or the host's engine: key"],
        })
      }

      default: {
        return new UnreachableError(
          'ENGINE_UNREACHABLE',
          `lost the connection to the Docker engine at ${where}: ${error.message}`,
          {
            cause: error,
          },
        )
      }
    }
  }
}

function queryString(query: EngineRequest['query']): string {
  if (!query) return ''
  const parameters = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue
    if (Array.isArray(value)) for (const item of value) parameters.append(key, item)
    else parameters.set(key, String(value))
  }

  const text = parameters.toString()
  return text ? `?${text}` : ''
}

async function readText(stream: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of stream) {
    const buffer = chunk as Buffer
    if (length + buffer.length > limit) {
      chunks.push(buffer.subarray(0, limit - length))
      stream.destroy()
      break
    }

    chunks.push(buffer)
    length += buffer.length
  }

  return Buffer.concat(chunks).toString('utf8')
}

function errorMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as {message?: string}
    return parsed.message ?? text.trim()
  } catch {
    return text.trim()
  }
}
