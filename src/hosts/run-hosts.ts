import type {EngineClient, EngineFacts, HostDescription, Hosts, Logger, RemoteShell} from '@transship/kit'

import {shellQuote, UsageError} from '@transship/kit'
import {statfs} from 'node:fs/promises'
import path from 'node:path'

import type {EngineEndpoint} from '../engine/endpoint.js'
import type {SshConnection} from '../ssh/connection.js'

import {HttpEngineClient} from '../engine/client.js'
import {DEFAULT_SOCKET, localEndpoint, parseEndpoint} from '../engine/endpoint.js'
import {type EngineTransport, forwardedSocketTransport, tcpTransport, unixSocketTransport} from '../engine/transport.js'
import {resolveSshTarget} from '../ssh/config.js'
import {SshPool} from '../ssh/pool.js'

/** A host as a recipe (or a flag) declares it. */
export interface HostSpec {
  acceptNewHostKey?: boolean
  engine?: string
  identityFile?: string
  knownHosts?: string
  ssh?: string
}

export interface RunHostsOptions {
  /** accept (and record) unknown SSH host keys, as `StrictHostKeyChecking=accept-new` does */
  acceptNewHostKeys?: boolean
  /** relative paths in host specs (identityFile, knownHosts) are resolved from here */
  baseDir?: string
  log: Logger
}

interface Resolved {
  endpoint: EngineEndpoint
  ssh?: string
  target: string
}

/**
 * The hosts of one run. Engines are connected lazily, once; every engine on the same SSH host shares one
 * SSH connection, and each engine request is its own channel on it.
 */
export class RunHosts implements AsyncDisposable, Hosts {
  private readonly engines = new Map<string, Promise<HttpEngineClient>>()
  private readonly pool = new SshPool()
  private readonly resolved = new Map<string, Promise<Resolved>>()

  constructor(
    private readonly specs: Record<string, HostSpec>,
    private readonly options: RunHostsOptions,
  ) {}

  /**
   * An ad-hoc host from a flag, when it is not a host of the recipe: `local`, or an engine address in the one
   * grammar of parseEndpoint (`ssh://user@host[:port][/socket]`, `unix:///path`, `tcp://host:port`).
   */
  static specFromFlag(value: string): HostSpec {
    if (value === 'local') return {engine: 'local'}
    if (value.startsWith('/') || /^[a-z][\d+.a-z-]*:/i.test(value)) {
      const endpoint = parseEndpoint(value, 'host')
      if (endpoint.kind === 'ssh') return {engine: endpoint.socketPath, ssh: endpoint.ssh}
      return {engine: value}
    }

    const asSsh = /^[^\s/@]+@[^\s/@]+$/.test(value) ? [`for SSH, write ssh://${value}`] : []
    throw new UsageError(
      `host ${JSON.stringify(value)} is not a host of the recipe, nor local, ssh://user@host[:port][/socket] or unix:///path`,
      {
        code: 'HOST_INVALID',
        suggestions: [...asSsh, 'pass --recipe FILE to use the hosts it names'],
      },
    )
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  async close(): Promise<void> {
    await this.pool.closeAll()
  }

  describe(name: string): HostDescription {
    const spec = this.spec(name)
    if (spec.ssh) return {kind: 'ssh', name, target: `ssh://${spec.ssh} → ${spec.engine ?? DEFAULT_SOCKET}`}
    return {kind: 'local', name, target: spec.engine && spec.engine !== 'local' ? spec.engine : 'the local engine'}
  }

  async engine(name: string, signal?: AbortSignal): Promise<EngineClient> {
    return this.connect(name, signal)
  }

  async facts(name: string, signal?: AbortSignal): Promise<EngineFacts> {
    return (await this.connect(name, signal)).facts(signal)
  }

  /**
   * Free bytes on the filesystem of the engine's data root: statfs for an engine on this machine, `df` over
   * SSH for a remote one (df is on every host; nothing is installed). Undefined when it cannot be known.
   */
  async freeBytes(name: string, signal?: AbortSignal): Promise<number | undefined> {
    try {
      return await this.readFreeBytes(name, signal)
    } catch (error) {
      this.options.log.debug(`${name}: free space unknown: ${(error as Error).message}`)
      return undefined
    }
  }

  private async readFreeBytes(name: string, signal?: AbortSignal): Promise<number | undefined> {
    const {dataRoot} = await this.facts(name, signal)
    const resolved = await this.resolve(name)
    if (resolved.ssh) {
      const connection = await this.sshConnection(name, signal)
      const result = await connection.run(`df -P -k -- ${shellQuote(dataRoot)}`, {signal})
      const fields = result.stdout.trim().split('\n').at(-1)?.split(/\s+/)
      const available = Number(fields?.[3])
      return result.code === 0 && Number.isFinite(available) ? available * 1024 : undefined
    }

    if (resolved.endpoint.kind !== 'unix') return undefined
    try {
      const stats = await statfs(dataRoot)
      return stats.bavail * stats.bsize
    } catch {
      return undefined
    }
  }

  names(): string[] {
    return Object.keys(this.specs)
  }

  async shell(name: string, signal?: AbortSignal): Promise<RemoteShell | undefined> {
    const resolved = await this.resolve(name)
    if (!resolved.ssh) return undefined
    const connection = await this.sshConnection(name, signal)
    return {
      engineSocket: resolved.endpoint.kind === 'unix' ? resolved.endpoint.socketPath : DEFAULT_SOCKET,
      exec: (command, options) => connection.exec(command, options),
      run: (command, options) => connection.run(command, options),
    }
  }

  /** The SSH connection of a host reached over SSH (one per host, shared). */
  async sshConnection(name: string, signal?: AbortSignal): Promise<SshConnection> {
    const spec = this.spec(name)
    const {ssh} = await this.resolve(name)
    if (!ssh) throw new UsageError(`host "${name}" is not reached over SSH`)
    const target = await resolveSshTarget(ssh, {
      acceptNewHostKey: spec.acceptNewHostKey ?? this.options.acceptNewHostKeys,
      identityFile: this.path(spec.identityFile),
      knownHostsFile: this.path(spec.knownHosts),
    })
    return this.pool.get(target, {log: (message) => this.options.log.warn(message), signal})
  }

  private async connect(name: string, signal?: AbortSignal): Promise<HttpEngineClient> {
    let engine = this.engines.get(name)
    if (!engine) {
      engine = this.resolve(name).then(async (resolved) => {
        const transport = await this.transport(name, resolved)
        return HttpEngineClient.connect(name, transport, signal)
      })
      this.engines.set(name, engine)
    }

    return engine
  }

  private path(value: string | undefined): string | undefined {
    return value && this.options.baseDir ? path.resolve(this.options.baseDir, value) : value
  }

  private async resolve(name: string): Promise<Resolved> {
    let resolved = this.resolved.get(name)
    if (!resolved) {
      resolved = this.resolveSpec(this.spec(name))
      this.resolved.set(name, resolved)
    }

    return resolved
  }

  private async resolveSpec(spec: HostSpec): Promise<Resolved> {
    if (spec.ssh) {
      const socketPath = spec.engine?.replace(/^unix:\/\//, '') ?? DEFAULT_SOCKET
      return {endpoint: {kind: 'unix', socketPath}, ssh: spec.ssh, target: `ssh://${spec.ssh}`}
    }

    if (!spec.engine || spec.engine === 'local') {
      const endpoint = await localEndpoint()
      if (endpoint.kind === 'ssh') {
        return {
          endpoint: {kind: 'unix', socketPath: endpoint.socketPath ?? DEFAULT_SOCKET},
          ssh: endpoint.ssh,
          target: `ssh://${endpoint.ssh}`,
        }
      }

      return {endpoint, target: endpoint.origin}
    }

    const endpoint = parseEndpoint(spec.engine, 'engine')
    if (endpoint.kind === 'ssh') {
      return {
        endpoint: {kind: 'unix', socketPath: endpoint.socketPath ?? DEFAULT_SOCKET},
        ssh: endpoint.ssh,
        target: spec.engine,
      }
    }

    return {endpoint, target: spec.engine}
  }

  private spec(name: string): HostSpec {
    const spec = this.specs[name]
    if (!spec) {
      throw new UsageError(`unknown host "${name}" (known: ${this.names().join(', ') || 'none'})`)
    }

    return spec
  }

  private async transport(name: string, resolved: Resolved): Promise<EngineTransport> {
    const {endpoint} = resolved
    if (resolved.ssh) {
      const socketPath = endpoint.kind === 'unix' ? endpoint.socketPath : DEFAULT_SOCKET
      return forwardedSocketTransport(`ssh://${resolved.ssh} → ${socketPath}`, async (signal) => {
        const connection = await this.sshConnection(name, signal)
        return connection.openUnixSocket(socketPath)
      })
    }

    switch (endpoint.kind) {
      case 'tcp': {
        return tcpTransport(endpoint.host, endpoint.port)
      }

      case 'unix': {
        return unixSocketTransport(endpoint.socketPath)
      }

      default: {
        throw new UsageError(`host "${name}": unsupported engine address`)
      }
    }
  }
}
