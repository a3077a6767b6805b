import type {IncomingMessage} from 'node:http'
import type {Duplex, Readable} from 'node:stream'

/** A request to the Docker Engine API. `path` is unversioned (`/images/json`); the client adds `/vX.Y`. */
export interface EngineRequest {
  /** a JSON value (serialised) or a stream (sent as-is, with backpressure) */
  body?: Readable | unknown
  headers?: Record<string, string>
  method?: 'DELETE' | 'GET' | 'HEAD' | 'POST' | 'PUT'
  path: string
  query?: Record<string, boolean | number | string | string[] | undefined>
  signal?: AbortSignal
}

/** A message of a streamed (newline-delimited JSON) engine reply, e.g. of `POST /images/load`. */
export interface EngineMessage {
  [key: string]: unknown
  error?: string
  errorDetail?: {code?: number; message?: string}
  id?: string
  progress?: string
  status?: string
  stream?: string
}

/** What `/_ping`, `/version` and `/info` told us about an engine. */
export interface EngineFacts {
  apiVersion: string
  /** where images and containers live on the engine's host */
  dataRoot: string
  /** the engine's ID (`GET /info`): the same engine however its host was written (journals are keyed by it) */
  id: string
  /** 'containerd' when the engine uses the containerd image store (snapshotter), else 'classic' */
  imageStore: 'classic' | 'containerd'
  os: string
  arch: string
  /** the storage driver or snapshotter name, e.g. overlay2 or overlayfs */
  storageDriver: string
  version: string
}

/** A thin client of one engine. Errors are EngineError (classified by HTTP status) or UnreachableError. */
export interface EngineClient {
  /** the API version negotiated with `/_ping` */
  readonly apiVersion: string
  /** which host this engine belongs to, for messages */
  readonly host: string

  facts(signal?: AbortSignal): Promise<EngineFacts>
  /** a JSON reply; rejects with EngineError on a non-2xx status */
  json<T>(request: EngineRequest): Promise<T>
  /** a streamed NDJSON reply; rejects when a message carries an in-band `error` */
  messages(request: EngineRequest): AsyncIterable<EngineMessage>
  /** the raw reply body with backpressure, after the status was checked */
  stream(request: EngineRequest): Promise<IncomingMessage>
  /**
   * A hijacked connection (HTTP upgrade to `tcp`, as `POST /exec/ID/start` with stdin wants): the engine's raw
   * stream both ways once it answered 101. `end()` half-closes it (the far side reads EOF); the request's
   * signal destroys it. Rejects with EngineError when the engine answers with an error instead.
   */
  upgrade(request: EngineRequest): Promise<Duplex>
}

/** Orders Engine API versions (`1.41` < `1.45`). */
export function compareApiVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split('.').map(Number)
  const [bMajor = 0, bMinor = 0] = b.split('.').map(Number)
  return aMajor === bMajor ? aMinor - bMinor : aMajor - bMajor
}
