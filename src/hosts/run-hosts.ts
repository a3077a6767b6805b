import type {
  EngineClient,
  EngineFacts,
  Host,
  HostDescription,
  HostEndpoint,
  Hosts,
  Logger,
  RemoteShell,
} from '@transship/kit'

import {localShell, shellQuote, UsageError} from '@transship/kit'
import {statfs} from 'node:fs/promises'
import path from 'node:path'

import type {EngineEndpoint} from '../engine/endpoint.js'
import type {HostSpec} from '../recipe/schema.js'
import type {SshConnection} from '../ssh/connection.js'

import {HttpEngineClient} from '../engine/client.js'
import {DEFAULT_SOCKET, localEndpoint, parseEndpoint} from '../engine/endpoint.js'
import {type EngineTransport, forwardedSocketTransport, tcpTransport, unixSocketTransport} from '../engine/transport.js'
import {resolveSshTarget, type SshTarget} from '../ssh/config.js'
import {SshPool} from '../ssh/pool.js'
import {formatHostEndpoint, isOnThisMachine} from './host-endpoint.js'

/** A host as a recipe (or a flag) declares it: the recipe schema's type, the one definition of its keys. */
export type {HostSpec} from '../recipe/schema.js'

export interface RunHostsOptions {
  /** accept (and record) unknown SSH host keys, as `StrictHostKeyChecking=accept-new` does */
  acceptNewHostKeys?: boolean
  /** relative paths in host specs (identityFile, knownHosts) are resolved from here */
  baseDir?: string
  log: Logger
}

/** How a host's spec is reached: an engine address, over SSH (with the socket there) or here. */
interface Address {
  endpoint: EngineEndpoint
  ssh?: string
}

/** A host resolved: everything but the shell, which follows the SSH connection (reconnected when lost). */
interface Resolved {
  endpoint: HostEndpoint
  engine: HttpEngineClient
  facts: EngineFacts
  id: string
  /** the SSH target of a host reached over SSH */
  ssh?: SshTarget
}

/**
 * The hosts of a run. Each is resolved once, when first asked for: its engine connected and identified (its
 * ID from /info), its SSH target read from the SSH configuration. Every engine on the same SSH host shares one
 * SSH connection, and each engine request is its own channel on it.
 */
export class RunHosts implements AsyncDisposable, Hosts {
  private readonly pool = new SshPool()
  private readonly resolved = new Map<string, Promise<Resolved>>()
  private readonly hosts = new Map<string, {connection: SshConnection | undefined; host: Host}>()

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
    return (await this.resolve(name, signal)).engine
  }

  /**
   * Free bytes on the filesystem of the engine's data root: statfs for an engine on this machine, `df` over
   * SSH for a remote one (df is on every host; nothing is installed). Undefined when it cannot be known.
   */
  async freeBytes(host: Host, signal?: AbortSignal): Promise<number | undefined> {
    try {
      return await readFreeBytes(host, signal)
    } catch (error) {
      this.options.log.debug(`${host.name}: free space unknown: ${(error as Error).message}`)
      return undefined
    }
  }

  /** Host `name`, the same object while its SSH connection lives (a lost one is connected again for the next). */
  async host(name: string, signal?: AbortSignal): Promise<Host> {
    const resolved = await this.resolve(name, signal)
    const {endpoint, engine, facts, id} = resolved
    const connection = resolved.ssh && (await this.connect(resolved.ssh, signal))
    const known = this.hosts.get(name)
    if (known && known.connection === connection) return known.host
    const shell = connection ? sshShell(connection, engineSocketOf(endpoint)) : localShell(engineSocketOf(endpoint))
    const spec = this.spec(name)
    const access = {helperImage: spec.helperImage, mode: spec.access}
    const host: Host = {access, endpoint, engine, facts, id, name, onThisMachine: isOnThisMachine(endpoint), shell}
    this.hosts.set(name, {connection, host})
    return host
  }

  names(): string[] {
    return Object.keys(this.specs)
  }

  private async address(spec: HostSpec): Promise<Address> {
    if (spec.ssh) {
      const socketPath = spec.engine?.replace(/^unix:\/\//, '') ?? DEFAULT_SOCKET
      return {endpoint: {kind: 'unix', socketPath}, ssh: spec.ssh}
    }

    const endpoint =
      !spec.engine || spec.engine === 'local' ? await localEndpoint() : parseEndpoint(spec.engine, 'engine')
    if (endpoint.kind === 'ssh') {
      return {endpoint: {kind: 'unix', socketPath: endpoint.socketPath ?? DEFAULT_SOCKET}, ssh: endpoint.ssh}
    }

    return {endpoint}
  }

  private async connect(target: SshTarget, signal?: AbortSignal): Promise<SshConnection> {
    return this.pool.get(target, {log: (message) => this.options.log.warn(message), signal})
  }

  private path(value: string | undefined): string | undefined {
    return value && this.options.baseDir ? path.resolve(this.options.baseDir, value) : value
  }

  /** Resolves host `name` once: later calls (with any signal) share the first one's outcome. */
  private async resolve(name: string, signal?: AbortSignal): Promise<Resolved> {
    let resolved = this.resolved.get(name)
    if (!resolved) {
      resolved = this.resolveSpec(name, this.spec(name), signal)
      this.resolved.set(name, resolved)
    }

    return resolved
  }

  private async resolveSpec(name: string, spec: HostSpec, signal?: AbortSignal): Promise<Resolved> {
    const address = await this.address(spec)
    let endpoint: HostEndpoint
    let transport: EngineTransport
    let ssh: SshTarget | undefined
    if (address.ssh) {
      const target = await resolveSshTarget(address.ssh, {
        acceptNewHostKey: spec.acceptNewHostKey ?? this.options.acceptNewHostKeys,
        identityFile: this.path(spec.identityFile),
        knownHostsFile: this.path(spec.knownHosts),
      })
      const socket = address.endpoint.kind === 'unix' ? address.endpoint.socketPath : DEFAULT_SOCKET
      endpoint = {host: target.host, kind: 'ssh', port: target.port, socket, user: target.user}
      ssh = target
      transport = forwardedSocketTransport(`ssh://${address.ssh} → ${socket}`, async (signal) => {
        const connection = await this.connect(target, signal)
        return connection.openUnixSocket(socket)
      })
    } else if (address.endpoint.kind === 'unix') {
      endpoint = {kind: 'unix', socket: address.endpoint.socketPath}
      transport = unixSocketTransport(address.endpoint.socketPath)
    } else if (address.endpoint.kind === 'tcp') {
      endpoint = {host: address.endpoint.host, kind: 'tcp', port: address.endpoint.port}
      transport = tcpTransport(address.endpoint.host, address.endpoint.port)
    } else {
      throw new UsageError(`host "${name}": unsupported engine address`)
    }

    const engine = await HttpEngineClient.connect(name, transport, signal)
    const facts = await engine.facts(signal)
    // an engine without an ID (not Docker's) is known by where it listens
    return {endpoint, engine, facts, id: facts.id || formatHostEndpoint(endpoint), ssh}
  }

  private spec(name: string): HostSpec {
    const spec = this.specs[name]
    if (!spec) {
      throw new UsageError(`unknown host "${name}" (known: ${this.names().join(', ') || 'none'})`)
    }

    return spec
  }
}

function engineSocketOf(endpoint: HostEndpoint): string {
  return endpoint.kind === 'tcp' ? DEFAULT_SOCKET : endpoint.socket
}

function sshShell(connection: SshConnection, engineSocket: string): RemoteShell {
  return {
    engineSocket,
    exec: (command, options) => connection.exec(command, options),
    run: async (command, options) => connection.run(command, options),
  }
}

async function readFreeBytes(host: Host, signal?: AbortSignal): Promise<number | undefined> {
  const {dataRoot} = host.facts
  if (host.endpoint.kind === 'ssh') {
    const result = await host.shell.run(`df -P -k -- ${shellQuote(dataRoot)}`, {signal})
    const fields = result.stdout.trim().split('\n').at(-1)?.split(/\s+/)
    const available = Number(fields?.[3])
    return result.code === 0 && Number.isFinite(available) ? available * 1024 : undefined
  }

  if (host.endpoint.kind !== 'unix') return undefined
  try {
    const stats = await statfs(dataRoot)
    return stats.bavail * stats.bsize
  } catch {
    return undefined
  }
}
