import {UsageError} from '@transship/kit'
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {isIPv6} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {type Destination, formatDestination, parseDestination} from '../ssh/destination.js'

/** Where an engine listens, as DOCKER_HOST spells it. */
export type EngineEndpoint =
  | {host: string; kind: 'tcp'; port: number}
  | {kind: 'ssh'; socketPath?: string; ssh: string}
  | {kind: 'unix'; socketPath: string}

export const DEFAULT_SOCKET = '/var/run/docker.sock'

/** How an engine address is written, for messages. */
export const ENGINE_ADDRESS_FORMS = 'ssh://user@host[:port][/socket], unix:///path/to/docker.sock or tcp://host:port'

// eslint-disable-next-line no-control-regex
const SPACE_OR_CONTROL = /[\s\u0000-\u001F\u007F]/
const SCHEME = /^([a-z][\d+.a-z-]*):\/\/(.*)$/is
const TCP_HOST = /^[\dA-Za-z](?:[\dA-Za-z.-]*[\dA-Za-z])?$/

/**
 * The one grammar of engine addresses, for DOCKER_HOST, docker contexts, recipe `engine:` values and the host
 * flags: `unix:///path` (or a bare `/path`), `tcp://host[:port]` and `ssh://user@host[:port][/socket]` (its
 * `user@host:port` part is an SSH destination, see parseDestination). Anything else, an empty host or user, a
 * port outside 1-65535, an unknown scheme or a space anywhere, is a UsageError (exit 2) that shows the forms.
 */
export function parseEndpoint(value: string, origin: string): EngineEndpoint {
  const fail: Fail = (why, form = ENGINE_ADDRESS_FORMS) =>
    new UsageError(`${origin}: ${JSON.stringify(value)} is not a valid engine address: ${why}`, {
      code: 'ENGINE_ADDRESS_INVALID',
      details: {value, why},
      suggestions: [`write it as ${form}`],
    })
  if (value === '') throw fail('it is empty')
  if (SPACE_OR_CONTROL.test(value)) throw fail('it contains spaces or control characters')
  if (value.startsWith('/')) return {kind: 'unix', socketPath: value}
  const match = SCHEME.exec(value)
  if (!match) throw fail('it is not an engine address (a scheme and "://", or an absolute socket path)')
  const rest = match[2]!
  switch (match[1]!.toLowerCase()) {
    case 'ssh': {
      return sshEndpoint(rest, fail)
    }

    case 'tcp': {
      return tcpEndpoint(rest, fail)
    }

    case 'unix': {
      if (!rest.startsWith('/') || rest === '/' || /[#?]/.test(rest)) {
        throw fail(
          'unix:// takes an absolute socket path after it, with nothing between: three slashes',
          'unix:///path/to/docker.sock',
        )
      }

      return {kind: 'unix', socketPath: rest}
    }

    default: {
      throw fail(`it has an unsupported scheme ${match[1]!.toLowerCase()}:`)
    }
  }
}

type Fail = (why: string, form?: string) => UsageError

/** `user@host[:port][/socket]` after `ssh://`: the destination part is SSH's own grammar. */
function sshEndpoint(rest: string, fail: Fail): EngineEndpoint {
  const form = 'ssh://user@host[:port][/socket]'
  if (/[#?]/.test(rest)) throw fail('an ssh:// address has no query or fragment', form)
  const slash = rest.indexOf('/')
  const authority = slash === -1 ? rest : rest.slice(0, slash)
  const socket = slash === -1 ? '' : rest.slice(slash)
  let destination: Destination
  try {
    destination = parseDestination(`ssh://${authority}`)
  } catch (error) {
    const why = error instanceof UsageError ? error.details?.why : undefined
    if (typeof why === 'string') throw fail(why, form)
    throw error
  }

  return {kind: 'ssh', socketPath: socket && socket !== '/' ? socket : undefined, ssh: formatDestination(destination)}
}

/** `host[:port]` after `tcp://` (IPv6 in brackets); the port defaults to 2375. */
function tcpEndpoint(rest: string, fail: Fail): EngineEndpoint {
  const form = 'tcp://host:port'
  const authority = rest.endsWith('/') ? rest.slice(0, -1) : rest
  if (authority.includes('@')) throw fail('a tcp:// address has no user', form)
  if (/[#/?]/.test(authority)) throw fail('a tcp:// address has no path, query or fragment', form)
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(authority)
  const colon = authority.lastIndexOf(':')
  let host = colon === -1 ? authority : authority.slice(0, colon)
  let portText = colon === -1 ? undefined : authority.slice(colon + 1)
  if (bracketed) [, host = '', portText] = bracketed
  if (host === '') throw fail('the host is empty', form)
  if (bracketed ? !isIPv6(host) : !TCP_HOST.test(host)) throw fail(`"${host}" is not a valid host`, form)
  return {host, kind: 'tcp', port: portText === undefined ? 2375 : port(portText, (why) => fail(why, form))}
}

function port(text: string, fail: (why: string) => Error): number {
  if (!/^\d{1,5}$/.test(text)) throw fail(`"${text}" is not a port number`)
  const value = Number(text)
  if (value < 1 || value > 65_535) throw fail(`port ${value} is out of range (1-65535)`)
  return value
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
