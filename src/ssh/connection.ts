/**
 * One SSH connection to a remote host: connect (host key checked, keys tried), keep alive, close. What runs on it
 * lives beside it: commands in exec.ts, forwarded unix sockets in forward.ts.
 */
import type {AnyAuthMethod, AuthenticationType, ConnectConfig} from 'ssh2'

import {AuthError, TransshipError, UnreachableError} from '@transship/kit'
import createDebug from 'debug'
import net from 'node:net'
import ssh2 from 'ssh2'

import {hostLabel, type SshTarget} from './config.js'
import {classifyConnectError, type Ssh2Error} from './connect-errors.js'
import {execCommand, type ExecOptions, type ExecProcess, runCommand, type RunResult} from './exec.js'
import {type ForwardedSocket, openUnixSocket} from './forward.js'
import {preferredHostKeyAlgorithms, verifyHostKey} from './host-key-check.js'
import {loadIdentities} from './identities.js'
import {knownHostKeyTypes} from './known-hosts.js'

const debug = createDebug('transship:ssh')

export type {ExecOptions, ExecProcess, ExecResult, RunResult} from './exec.js'
export type {ForwardedSocket} from './forward.js'

export interface ConnectOptions {
  /** warnings for the user: a host key that was accepted and recorded, configuration that is ignored */
  log?: (message: string) => void
  /** how long the TCP connect, handshake and authentication may take; default 20 s */
  readyTimeoutMs?: number
  signal?: AbortSignal
}

/** What a channel (a command, a forwarded socket) needs of the connection it runs on. */
export interface ChannelOwner {
  readonly client: ssh2.Client
  /** once the connection is gone, the error operations fail with */
  endedWith(): TransshipError | undefined
  /** `host:port`, for messages */
  readonly label: string
  readonly target: SshTarget
  /** why no channel can be opened now (closing or gone), or undefined */
  unusable(what: string): TransshipError | undefined
  /** `fail` is called when the connection goes away before the returned function is */
  watch(fail: (error: TransshipError) => void): () => void
}

const CLOSE_GRACE_MS = 2000

/**
 * One SSH connection to a remote host; commands and forwarded sockets are channels on it. Host keys are
 * checked against known_hosts (unknown ones refused unless `acceptNewHostKey`, changed ones always refused).
 * The TCP socket is the connection's own (handed to ssh2), so that closing can always cut it.
 */
export class SshConnection implements AsyncDisposable {
  readonly target: SshTarget
  private closing: Promise<void> | undefined
  /** set once the connection is gone, for an intentional close or not */
  private ended: TransshipError | undefined
  /** how to fail each operation in flight when the connection goes away */
  private readonly inFlight = new Set<(error: TransshipError) => void>()
  private lastError: Error | undefined
  private readonly owner: ChannelOwner

  private constructor(
    private readonly client: ssh2.Client,
    private readonly socket: net.Socket,
    target: SshTarget,
  ) {
    this.target = target
    client.on('error', (error: Ssh2Error) => {
      this.lastError = error
      debug('%s: %s (%s)', this.label, error.message, error.level ?? error.code)
    })
    client.on('close', () => this.onClose())
    this.owner = {
      client,
      endedWith: () => this.ended,
      label: this.label,
      target,
      unusable: (what) => this.unusable(what),
      watch: (fail) => {
        this.inFlight.add(fail)
        return () => this.inFlight.delete(fail)
      },
    }
  }

  /** Whether the connection has been closed or lost; a closed connection cannot be used again. */
  get closed(): boolean {
    return this.ended !== undefined || this.closing !== undefined
  }

  private get label(): string {
    return hostLabel(this.target)
  }

  /**
   * Connects and authenticates: the ssh-agent first (when there is one), then each identity file. Errors are
   * TransshipErrors: AuthError for host keys and credentials, UnreachableError for the network.
   */
  static async connect(target: SshTarget, options: ConnectOptions = {}): Promise<SshConnection> {
    const {signal} = options
    signal?.throwIfAborted()
    const log = options.log ?? (() => {})
    for (const warning of target.warnings ?? []) log(warning)

    const lookupHost = target.hostKeyAlias ?? target.host
    const knownTypes = await knownHostKeyTypes({files: target.knownHostsFiles, host: lookupHost, port: target.port})
    const identities = await loadIdentities(target)
    signal?.throwIfAborted()
    // even without a key to offer, connect: an unreachable host or a wrong host key is the better report

    const client = new ssh2.Client()
    let socket: net.Socket | undefined
    // errors that arrive after the outcome is decided (a late socket error while closing) are only logged
    client.on('error', (error: Ssh2Error) => debug('%s: %s', hostLabel(target), error.message))

    return new Promise<SshConnection>((resolve, reject) => {
      let settled = false
      let hostKeyError: TransshipError | undefined
      const tried: string[] = []

      const cleanup = (): void => {
        signal?.removeEventListener('abort', onAbort)
        client.removeListener('error', onError)
        client.removeListener('close', onEarlyClose)
        client.removeListener('ready', onReady)
      }

      const fail = (error: unknown): void => {
        if (settled) return
        settled = true
        cleanup()
        // a connect given up on must not come alive later with nobody to close it
        client.once('ready', () => client.end())
        client.destroy()
        socket?.destroy()
        reject(error)
      }

      const onAbort = (): void => fail(signal?.reason)
      const onError = (error: Ssh2Error): void => {
        if (error.level === 'agent') {
          debug('%s: ssh-agent: %s', hostLabel(target), error.message)
          return
        }

        fail(hostKeyError ?? classifyConnectError(error, target, identities, tried))
      }

      const onEarlyClose = (): void =>
        fail(
          hostKeyError ??
            new UnreachableError(
              'SSH_CONNECTION_LOST',
              `${hostLabel(target)} closed the SSH connection before it was ready`,
            ),
        )
      const onReady = (): void => {
        if (settled) return
        settled = true
        cleanup()
        debug('%s: connected as %s (%s)', hostLabel(target), target.user, tried.at(-1))
        resolve(new SshConnection(client, socket!, target))
      }

      signal?.addEventListener('abort', onAbort, {once: true})
      client.on('error', onError)
      client.on('close', onEarlyClose)
      client.on('ready', onReady)

      let next = 0
      const authHandler = (
        methodsLeft: AuthenticationType[] | null,
        _partialSuccess: boolean | null,
        callback: (method: AnyAuthMethod | false) => void,
      ): void => {
        const attempt = identities.attempts[next++]
        if (!attempt || (methodsLeft && !methodsLeft.includes('publickey'))) {
          callback(false)
          return
        }

        debug('%s: trying %s', hostLabel(target), attempt.label)
        tried.push(attempt.label)
        callback(attempt.method)
      }

      const hostVerifier = (key: Buffer, verify: (valid: boolean) => void): void => {
        verifyHostKey(target, key, log).then(
          () => verify(true),
          (error: unknown) => {
            hostKeyError =
              error instanceof TransshipError
                ? error
                : new AuthError('SSH_HOST_KEY_UNVERIFIED', `cannot verify the host key of ${hostLabel(target)}`, {
                    cause: error,
                  })
            verify(false)
          },
        )
      }

      const config: ConnectConfig = {
        algorithms: {serverHostKey: preferredHostKeyAlgorithms(knownTypes)},
        authHandler: authHandler as unknown as ConnectConfig['authHandler'],
        debug: debug.enabled ? (message: string) => debug('ssh2: %s', message) : undefined,
        host: target.host,
        hostVerifier,
        keepaliveCountMax: 3,
        keepaliveInterval: 10_000,
        port: target.port,
        readyTimeout: options.readyTimeoutMs ?? 20_000,
        username: target.user,
      }
      try {
        // ssh2 takes the socket while it connects (its errors become the client's, level client-socket)
        socket = net.connect({host: target.host, port: target.port})
        client.connect({...config, sock: socket})
      } catch (error) {
        fail(
          new UnreachableError(
            'SSH_CONNECTION_FAILED',
            `cannot connect to ${hostLabel(target)}: ${(error as Error).message}`,
            {cause: error},
          ),
        )
      }
    })
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  /** Closes the connection (idempotent); operations still in flight fail with SSH_CONNECTION_CLOSED. */
  async close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (this.ended) {
        resolve()
        return
      }

      // the server normally closes its side at once; if it does not, cut the socket
      const timer = setTimeout(() => {
        this.socket.destroy()
        resolve()
      }, CLOSE_GRACE_MS)
      this.client.once('close', () => {
        clearTimeout(timer)
        resolve()
      })
      this.client.end()
    })
    return this.closing
  }

  /** Runs a command (see execCommand). */
  exec(command: string, options: ExecOptions = {}): ExecProcess {
    return execCommand(this.owner, command, options)
  }

  /** Opens a channel to a unix socket on the remote host, e.g. the Docker socket (see forward.ts). */
  async openUnixSocket(remotePath: string, options: {signal?: AbortSignal} = {}): Promise<ForwardedSocket> {
    return openUnixSocket(this.owner, remotePath, options)
  }

  /** Runs a command with small output and collects it (stdout is capped at 32 MiB). Stdin is closed at once. */
  async run(command: string, options: {signal?: AbortSignal} = {}): Promise<RunResult> {
    return runCommand(this.owner, command, options)
  }

  private onClose(): void {
    if (this.ended) return
    if (this.closing) {
      this.ended = new UnreachableError('SSH_CONNECTION_CLOSED', `the SSH connection to ${this.label} was closed`)
      debug('%s: closed', this.label)
    } else {
      const cause = this.lastError as Ssh2Error | undefined
      const why = cause?.level === 'client-timeout' ? ' (no reply to keepalives)' : cause ? ` (${cause.message})` : ''
      this.ended = new UnreachableError('SSH_CONNECTION_LOST', `the SSH connection to ${this.label} was lost${why}`, {
        cause,
        suggestions: [`check the network and ${this.target.host}, then run again`],
      })
      debug('%s: connection lost%s', this.label, why)
    }

    const failures = [...this.inFlight]
    this.inFlight.clear()
    for (const fail of failures) fail(this.ended)
  }

  private unusable(what: string): TransshipError | undefined {
    if (this.ended) return this.ended
    if (this.closing) {
      return new UnreachableError(
        'SSH_CONNECTION_CLOSED',
        `cannot ${what}: the SSH connection to ${this.label} is closed`,
      )
    }

    return undefined
  }
}
