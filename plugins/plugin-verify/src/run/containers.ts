/**
 * The Engine API calls the runner makes on containers and the images it commits: create, start, wait, kill,
 * logs (with the demuxer of the multiplexed log stream), exec, archive reads, commit and removal. Everything
 * created is recorded in a Resources tracker whose dispose() removes it, even after an abort.
 */
import type {EngineClient} from '@transship/kit'
import type {IncomingMessage} from 'node:http'
import type {Readable} from 'node:stream'

import {EngineError} from '@transship/kit'
import {CONTENT_LIMIT} from '@transship/kit/archive'
import {demuxFrames, type OutputFrame} from '@transship/kit/engine'
import {decodeTarName, readTar, type TarEntry, type TarEntryType, type TarReadOptions} from '@transship/kit/tar'
import {createHash} from 'node:crypto'

import {ownerLabels} from './leftovers.js'

export {RUNNER_LABEL} from './leftovers.js'

/** How long cleanup calls may take: they run without the (possibly aborted) caller's signal. */
const CLEANUP_TIMEOUT_MS = 120_000

export interface ContainerSpec {
  /** Docker Binds: SOURCE:TARGET[:OPTIONS] */
  binds?: string[]
  capAdd?: string[]
  cmd?: string[]
  /** undefined: the image's; [] clears it */
  entrypoint?: string[]
  env?: string[]
  image: string
  /** undefined: the engine's default network (as `docker run` without --network) */
  networkMode?: string
  privileged?: boolean
  /** a TTY: the output is one raw stream (stdout), not multiplexed */
  tty?: boolean
  user?: string
}

/** Containers and images made by a run; dispose() removes them all (containers first), ignoring errors. */
export class Resources {
  private readonly containers = new Set<string>()
  private readonly images: string[] = []

  constructor(
    private readonly engine: EngineClient,
    private readonly log?: {debug(m: string): void},
  ) {}

  addImage(id: string): void {
    this.images.push(id)
  }

  async create(spec: ContainerSpec, signal: AbortSignal): Promise<string> {
    const {Id: id} = await this.engine.json<{Id: string}>({
      body: {
        AttachStderr: false,
        AttachStdin: false,
        AttachStdout: false,
        Cmd: spec.cmd,
        Entrypoint: spec.entrypoint,
        Env: spec.env,
        HostConfig: {
          Binds: spec.binds,
          CapAdd: spec.capAdd,
          NetworkMode: spec.networkMode,
          Privileged: spec.privileged ?? false,
        },
        Image: spec.image,
        Labels: ownerLabels(),
        Tty: spec.tty ?? false,
        User: spec.user,
      },
      method: 'POST',
      path: '/containers/create',
      signal,
    })
    this.containers.add(id)
    return id
  }

  async dispose(): Promise<void> {
    for (const id of this.containers) {
      await removeContainer(this.engine, id).catch((error: unknown) =>
        this.log?.debug(`verify: removing container ${id} failed: ${String(error)}`),
      )
      this.containers.delete(id)
    }

    for (const id of this.images.reverse()) {
      await removeImage(this.engine, id).catch((error: unknown) =>
        this.log?.debug(`verify: removing image ${id} failed: ${String(error)}`),
      )
    }

    this.images.length = 0
  }

  /** Removes one container now (it is forgotten either way). */
  async remove(id: string): Promise<void> {
    this.containers.delete(id)
    await removeContainer(this.engine, id).catch((error: unknown) =>
      this.log?.debug(`verify: removing container ${id} failed: ${String(error)}`),
    )
  }
}

export async function startContainer(engine: EngineClient, id: string, signal: AbortSignal): Promise<void> {
  await engine.json({method: 'POST', path: `/containers/${id}/start`, signal})
}

/** Waits for the container to stop; its exit code. Rejects when `signal` aborts. */
export async function waitContainer(engine: EngineClient, id: string, signal: AbortSignal): Promise<number> {
  const reply = await engine.json<{Error?: null | {Message?: string}; StatusCode: number}>({
    method: 'POST',
    path: `/containers/${id}/wait`,
    query: {condition: 'not-running'},
    signal,
  })
  return reply.StatusCode
}

/** Sends SIGKILL; a container that already stopped (409) or is gone (404) is fine. */
export async function killContainer(engine: EngineClient, id: string): Promise<void> {
  try {
    await engine.json({method: 'POST', path: `/containers/${id}/kill`, signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS)})
  } catch (error) {
    if (error instanceof EngineError && (error.status === 409 || error.status === 404)) return
    throw error
  }
}

export async function removeContainer(engine: EngineClient, id: string): Promise<void> {
  try {
    await engine.json({
      method: 'DELETE',
      path: `/containers/${id}`,
      query: {force: true, v: true},
      signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS),
    })
  } catch (error) {
    if (error instanceof EngineError && error.status === 404) return
    throw error
  }
}

export async function removeImage(engine: EngineClient, id: string): Promise<void> {
  try {
    await engine.json({
      method: 'DELETE',
      path: `/images/${id}`,
      query: {force: true},
      signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS),
    })
  } catch (error) {
    if (error instanceof EngineError && error.status === 404) return
    throw error
  }
}

/** Commits the container as an untagged image; its ID. */
export async function commitContainer(engine: EngineClient, id: string, signal: AbortSignal): Promise<string> {
  const reply = await engine.json<{Id: string}>({method: 'POST', path: '/commit', query: {container: id}, signal})
  return reply.Id
}

export interface ContainerState {
  ExitCode?: number
  Health?: {Log?: Array<{ExitCode?: number; Output?: string}>; Status?: string}
  Running?: boolean
  Status?: string
}

export interface ContainerInspect {
  Config?: {Healthcheck?: {Test?: null | string[]}; Tty?: boolean}
  State?: ContainerState
}

export async function inspectContainer(
  engine: EngineClient,
  id: string,
  signal: AbortSignal,
): Promise<ContainerInspect> {
  return engine.json<ContainerInspect>({path: `/containers/${id}/json`, signal})
}

export interface Output {
  stderr: string
  stdout: string
}

/**
 * The frames of a container's output: the multiplexed stream, or for a container with a TTY the raw stream,
 * all of it stdout.
 * @yields each frame
 */
export async function* outputFrames(
  source: AsyncIterable<Buffer | string | Uint8Array>,
  tty = false,
): AsyncGenerator<OutputFrame> {
  if (!tty) {
    yield* demuxFrames(source)
    return
  }

  for await (const chunk of source) yield {data: Buffer.from(chunk), stream: 1}
}

/** Reads a whole output stream (multiplexed, or raw for a TTY) into stdout and stderr. */
export async function collectOutput(source: AsyncIterable<Buffer | string | Uint8Array>, tty = false): Promise<Output> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  for await (const frame of outputFrames(source, tty)) (frame.stream === 2 ? err : out).push(frame.data)
  return {stderr: Buffer.concat(err).toString('utf8'), stdout: Buffer.concat(out).toString('utf8')}
}

/** The container's logs so far (stdout and stderr apart; all stdout with a TTY). */
export async function containerLogs(
  engine: EngineClient,
  id: string,
  signal: AbortSignal,
  tty = false,
): Promise<Output> {
  const reply = await engine.stream({path: `/containers/${id}/logs`, query: {stderr: 1, stdout: 1}, signal})
  return collectOutput(reply, tty)
}

/** The container's log stream, following it until the container stops or `signal` aborts. */
export async function followLogs(engine: EngineClient, id: string, signal: AbortSignal): Promise<IncomingMessage> {
  return engine.stream({path: `/containers/${id}/logs`, query: {follow: 1, stderr: 1, stdout: 1}, signal})
}

/** Runs `cmd` in a running container (no shell, no TTY); its output and exit code. */
export async function execCapture(
  engine: EngineClient,
  id: string,
  cmd: string[],
  signal: AbortSignal,
): Promise<Output & {exitCode: number}> {
  const {Id: execId} = await engine.json<{Id: string}>({
    body: {AttachStderr: true, AttachStdin: false, AttachStdout: true, Cmd: cmd, Tty: false},
    method: 'POST',
    path: `/containers/${id}/exec`,
    signal,
  })
  const reply = await engine.stream({
    body: {Detach: false, Tty: false},
    method: 'POST',
    path: `/exec/${execId}/start`,
    signal,
  })
  const output = await collectOutput(reply)
  const inspected = await engine.json<{ExitCode: null | number; Running: boolean}>({
    path: `/exec/${execId}/json`,
    signal,
  })
  return {...output, exitCode: inspected.ExitCode ?? -1}
}

/** undefined for the types tar has beyond POSIX's eight (GNU dump directories, volume labels, ...) */
export type EntryType = TarEntryType | undefined

/** What the archive API says about one path (the path itself: a symlink is not followed). */
export interface PathEntry {
  gid: number
  /** a symlink's target as stored (readlink) */
  linkname: string
  /** permission bits plus setuid (0o4000), setgid (0o2000) and sticky (0o1000) */
  mode: number
  /** a symlink's target with every link along it resolved, absolute (from the engine's path stat) */
  resolvedTarget?: string
  size: number
  type: EntryType
  uid: number
}

export interface PathRead extends PathEntry {
  /** the content (regular files, when asked for) */
  content?: Buffer
  /** hex sha256 of the content (regular files, when asked for) */
  sha256?: string
}

/** The bound on a content read into memory (hashing streams and has none). */
export const MAX_CONTENT_BYTES = CONTENT_LIMIT

/**
 * Reads `path` of a container (created or running) through `GET /containers/{id}/archive`: the header of the
 * tar's first entry and, for a regular file, its sha256 and/or content. undefined when the path is absent (404).
 * Only the first entry is read: a directory's tar is cut off there.
 */
export async function readPath(
  engine: EngineClient,
  id: string,
  path: string,
  want: {content?: boolean; sha256?: boolean},
  signal: AbortSignal,
): Promise<PathRead | undefined> {
  let reply: IncomingMessage
  try {
    reply = await engine.stream({path: `/containers/${id}/archive`, query: {path}, signal})
  } catch (error) {
    if (error instanceof EngineError && error.status === 404) return undefined
    throw error
  }

  const resolvedTarget = pathStat(reply)?.linkTarget || undefined
  const entries = readTar(reply, archiveReadOptions(path, signal))
  try {
    // only the first entry: a directory's tar is cut off there
    const first = await entries.next()
    if (first.done) return undefined
    return await readEntry(first.value.entry, first.value.open, path, want, resolvedTarget)
  } finally {
    await entries.return()
    reply.destroy()
  }
}

/** How the engine's archive of a container path is read: as Docker writes it, its errors naming the path. */
function archiveReadOptions(path: string, signal: AbortSignal): TarReadOptions {
  return {endMarker: 'optional', label: `the engine's archive of ${path}`, signal}
}

async function readEntry(
  entry: TarEntry,
  open: () => Readable,
  path: string,
  want: {content?: boolean; sha256?: boolean},
  resolvedTarget: string | undefined,
): Promise<PathRead> {
  const result: PathRead = {
    gid: entry.gid,
    linkname: decodeTarName(entry.linkname),
    // eslint-disable-next-line no-bitwise -- the permission, setuid, setgid and sticky bits
    mode: entry.mode & 0o7777,
    resolvedTarget,
    size: entry.declaredSize,
    type: entry.type,
    uid: entry.uid,
  }
  if (entry.type !== 'file' || (!want.content && !want.sha256)) return result
  const hash = createHash('sha256')
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of open() as AsyncIterable<Buffer>) {
    hash.update(chunk)
    if (want.content && length < MAX_CONTENT_BYTES) chunks.push(chunk)
    length += chunk.length
  }

  if (want.sha256) result.sha256 = hash.digest('hex')
  if (want.content) {
    if (length > MAX_CONTENT_BYTES) {
      throw new RangeError(`${path} is larger than ${MAX_CONTENT_BYTES} bytes: its content is not checked`)
    }

    result.content = Buffer.concat(chunks)
  }

  return result
}

/**
 * The names and types of the entries of the archive of `path` of a container, streamed (bodies are skipped,
 * never kept).
 * @yields each entry's name (as stored, a directory's with its trailing `/`) and type
 */
export async function* archiveHeaders(
  engine: EngineClient,
  id: string,
  path: string,
  signal: AbortSignal,
): AsyncGenerator<{name: string; type: EntryType}> {
  const reply = await engine.stream({path: `/containers/${id}/archive`, query: {path}, signal})
  try {
    for await (const {entry} of readTar(reply, archiveReadOptions(path, signal))) {
      yield {name: decodeTarName(entry.name), type: entry.type}
    }
  } finally {
    reply.destroy()
  }
}

/** The X-Docker-Container-Path-Stat header: base64 JSON {name, size, mode, mtime, linkTarget}. */
function pathStat(reply: IncomingMessage): undefined | {linkTarget?: string; mode?: number} {
  const header = reply.headers['x-docker-container-path-stat']
  if (typeof header !== 'string') return undefined
  try {
    return JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as {linkTarget?: string; mode?: number}
  } catch {
    return undefined
  }
}
