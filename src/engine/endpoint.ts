import {UsageError} from '@transship/kit'
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

/** Where an engine listens, as DOCKER_HOST spells it. */
export type EngineEndpoint =
  | {host: string; kind: 'tcp'; port: number}
  | {kind: 'ssh'; socketPath?: string; ssh: string}
  | {kind: 'unix'; socketPath: string}

export const DEFAULT_SOCKET = '/var/run/docker.sock'

/** Parses `unix:///path`, `/path`, `tcp://host:port` or `ssh://user@host[:port][/socket]`. */
export function parseEndpoint(value: string, origin: string): EngineEndpoint {
  if (value.startsWith('/')) return {kind: 'unix', socketPath: value}
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`${origin}: "${value}" is not an engine address`, {
      suggestions: ['use unix:///var/run/docker.sock, tcp://host:2375 or ssh://user@host'],
    })
  }

  switch (url.protocol) {
    case 'ssh:': {
      const user = url.username ? `${decodeURIComponent(url.username)}@` : ''
      const port = url.port ? `:${url.port}` : ''
      const socketPath = url.pathname && url.pathname !== '/' ? url.pathname : undefined
      return {kind: 'ssh', socketPath, ssh: `${user}${url.hostname}${port}`}
    }

    case 'tcp:': {
      return {host: url.hostname, kind: 'tcp', port: Number(url.port || 2375)}
    }

    case 'unix:': {
      return {kind: 'unix', socketPath: url.pathname}
    }

    default: {
      throw new UsageError(`${origin}: engine address "${value}" has an unsupported scheme ${url.protocol}`, {
        suggestions: ['use unix://, tcp:// or ssh://'],
      })
    }
  }
}

/**
 * The local engine as the docker CLI finds it: DOCKER_HOST, else DOCKER_CONTEXT or the current context of
 * ~/.docker/config.json (DOCKER_CONFIG honoured), else the default socket.
 */
export async function localEndpoint(env: NodeJS.ProcessEnv = process.env): Promise<EngineEndpoint & {origin: string}> {
  if (env.DOCKER_HOST) return {...parseEndpoint(env.DOCKER_HOST, 'DOCKER_HOST'), origin: 'DOCKER_HOST'}
  const configDir = env.DOCKER_CONFIG ?? path.join(env.HOME ?? os.homedir(), '.docker')
  let context = env.DOCKER_CONTEXT
  if (!context) {
    const config = await readJson<{currentContext?: string}>(path.join(configDir, 'config.json'))
    context = config?.currentContext
  }

  if (context && context !== 'default') {
    const id = createHash('sha256').update(context).digest('hex')
    const metaFile = path.join(configDir, 'contexts', 'meta', id, 'meta.json')
    const meta = await readJson<{Endpoints?: {docker?: {Host?: string}}}>(metaFile)
    const host = meta?.Endpoints?.docker?.Host
    if (!host) {
      throw new UsageError(`docker context "${context}" is not defined (no ${metaFile})`, {
        suggestions: ['list contexts with `docker context ls`, or unset DOCKER_CONTEXT'],
      })
    }

    return {...parseEndpoint(host, `docker context "${context}"`), origin: `docker context "${context}"`}
  }

  return {kind: 'unix', origin: 'default', socketPath: DEFAULT_SOCKET}
}

async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }

  try {
    return JSON.parse(text) as T
  } catch (error) {
    throw new UsageError(`${file} is not valid JSON`, {cause: error})
  }
}
