import type {AnyAuthMethod, AuthenticationType, ClientChannel, ConnectConfig, IdentityCallback, ParsedKey} from 'ssh2'

import {AuthError, ExitCode, TransshipError, UnreachableError} from '@transship/kit'
import createDebug from 'debug'
import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'
import {type Duplex, PassThrough, type Readable, type Writable} from 'node:stream'
import {finished, pipeline} from 'node:stream/promises'
import ssh2 from 'ssh2'

import {homeDirectory, type SshTarget} from './config.js'
import {
  appendHostKey,
  checkHostKey,
  fingerprint,
  keyTypeLabel,
  keyTypeOf,
  knownHostKeyTypes,
  knownHostsName,
} from './known-hosts.js'

const debug = createDebug('transship:ssh')

export interface ConnectOptions {
  /** warnings for the user: a host key that was accepted and recorded, configuration that is ignored */
  log?: (message: string) => void
  /** how long the TCP connect, handshake and authentication may take; default 20 s */
  readyTimeoutMs?: number
  signal?: AbortSignal
}

export interface ExecOptions {
  signal?: AbortSignal
  /** piped into the command's standard input (then closed) */
  stdin?: Readable
}

export interface ExecResult {
  /** the exit status, or null when the command was killed by a signal */
  code: null | number
  /** the signal that killed the command, e.g. `SIGTERM` */
  signal?: string
  /** the last 64 KiB of the command's standard error */
  stderr: string
}

/**
 * A command running on the remote host. Read `stdout` to the end (its backpressure holds the remote command
 * back); end `stdin` when the command reads its input. Standard error is always drained, its tail kept.
 */
export interface ExecProcess {
  /** settles when the command has exited and its output has been handed to `stdout` */
  exit: Promise<ExecResult>
  stdin: Writable
  stdout: Readable
}

export interface RunResult extends ExecResult {
  stdout: string
}

/** A channel to a remote unix socket that node:http accepts as its socket (`createConnection: () => socket`). */
export type ForwardedSocket = Duplex & {
  ref(): ForwardedSocket
  setKeepAlive(): ForwardedSocket
  setNoDelay(): ForwardedSocket
  setTimeout(): ForwardedSocket
  unref(): ForwardedSocket
}

/** ssh2 errors carry where they happened in `level`, Node's socket errors a `code`. */
type Ssh2Error = Error & {code?: number | string; level?: string}

const STDERR_TAIL_BYTES = 64 * 1024
const RUN_STDOUT_LIMIT = 32 * 1024 * 1024
const CLOSE_GRACE_MS = 2000
/** host key algorithms transship accepts, strongest first; ssh-rsa (SHA-1 signatures) is left out, as OpenSSH does */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
] as const
type HostKeyAlgorithm = (typeof HOST_KEY_ALGORITHMS)[number]

interface AuthAttempt {
  label: string
  method: AnyAuthMethod
}

interface Identities {
  attempts: AuthAttempt[]
  /** identity files that could not be used, with why */
  skipped: string[]
}

/**
 * One SSH connection to a remote host; commands and forwarded sockets are channels on it. Host keys are
 * checked against known_hosts (unknown ones refused unless `acceptNewHostKey`, changed ones always refused).
 */
export class SshConnection implements AsyncDisposable {
  readonly target: SshTarget
  private closing: Promise<void> | undefined
  /** set once the connection is gone, for an intentional close or not */
  private ended: TransshipError | undefined
  private lastError: Error | undefined
  /** how to fail each operation in flight when the connection goes away */
  private readonly inFlight = new Set<(error: TransshipError) => void>()

  private constructor(
    private readonly client: ssh2.Client,
    target: SshTarget,
  ) {
    this.target = target
    client.on('error', (error: Ssh2Error) => {
      this.lastError = error
      debug('%s: %s (%s)', this.label, error.message, error.level ?? error.code)
    })
    client.on('close', () => this.onClose())
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
        resolve(new SshConnection(client, target))
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
        client.connect(config)
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
        const socket = (this.client as unknown as {_sock?: {destroy(): void}})._sock
        socket?.destroy()
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

  /**
   * Runs a command. Its stdout is a stream with backpressure; stderr is drained and its tail reported in `exit`.
   * Aborting sends the command SIGTERM, closes the channel and rejects `exit` (and errors `stdout`) with the
   * signal's reason; a lost connection does the same with UnreachableError SSH_CONNECTION_LOST.
   */
  exec(command: string, options: ExecOptions = {}): ExecProcess {
    const {signal} = options
    const stdout = new PassThrough()
    const stdin = new PassThrough()
    const stderr = new TailBuffer(STDERR_TAIL_BYTES)
    let channel: ClientChannel | undefined
    let settled = false
    let resolveExit!: (result: ExecResult) => void
    let rejectExit!: (error: unknown) => void
    const exit = new Promise<ExecResult>((resolve, reject) => {
      resolveExit = resolve
      rejectExit = reject
    })
    // the caller may only look at stdout; a rejection nobody awaits must not crash the process
    exit.catch(() => {})

    const cleanup = (): void => {
      signal?.removeEventListener('abort', onAbort)
      this.inFlight.delete(fail)
    }

    function fail(error: unknown): void {
      if (settled) return
      settled = true
      cleanup()
      if (channel) {
        sendSignal(channel, 'TERM')
        channel.close()
      }

      stdout.destroy(error instanceof Error ? error : new Error(String(error)))
      stdin.destroy()
      rejectExit(error)
    }

    const onAbort = (): void => fail(signal?.reason)

    if (signal?.aborted) {
      fail(signal.reason)
      return {exit, stdin, stdout}
    }

    const unusable = this.unusable('run a command')
    if (unusable) {
      fail(unusable)
      return {exit, stdin, stdout}
    }

    signal?.addEventListener('abort', onAbort, {once: true})
    this.inFlight.add(fail)
    if (options.stdin) pipeline(options.stdin, stdin).catch((error: Error) => debug('exec stdin: %s', error.message))

    const onChannel = (error: Error | undefined, opened: ClientChannel): void => {
      if (error) {
        fail(
          this.ended ??
            new UnreachableError('SSH_EXEC_FAILED', `${this.label} refused to run a command: ${error.message}`, {
              cause: error,
            }),
        )
        return
      }

      if (settled) {
        opened.close()
        return
      }

      channel = opened
      let exitCode: null | number | undefined
      let exitSignal: string | undefined
      opened.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
      opened.on('exit', (code: null | number, signalName?: string) => {
        exitCode = code
        if (signalName) exitSignal = signalName
      })
      opened.on('close', (code?: null | number, signalName?: string) => {
        if (settled) return
        settled = true
        cleanup()
        const result: ExecResult = {code: exitCode === undefined ? (code ?? null) : exitCode, stderr: stderr.text()}
        const killedBy = exitSignal ?? signalName
        if (killedBy) result.signal = killedBy
        debug('%s: `%s` exited with %s', this.label, command, result.signal ?? result.code)
        resolveExit(result)
      })
      // stdout is fed by pipe(), not pipeline(): a reader that gives up early (destroys stdout) must not
      // destroy the channel, whose close carries the exit status. The channel is closed instead (as a closed
      // pipe stops a local command) and the rest drained, so that it ends and `exit` settles.
      const onReaderGone = (): void => {
        if (opened.readableEnded) return
        debug('%s: stdout of `%s` closed early', this.label, command)
        opened.unpipe(stdout)
        opened.resume()
        opened.close()
      }

      if (stdout.destroyed) {
        onReaderGone()
      } else {
        stdout.once('close', onReaderGone)
        opened.pipe(stdout)
      }

      pipeline(stdin, opened).catch((error: Error) => debug('exec stdin: %s', error.message))
    }

    try {
      this.client.exec(command, onChannel)
    } catch (error) {
      fail(
        this.ended ??
          new UnreachableError('SSH_CONNECTION_LOST', `the SSH connection to ${this.label} is gone`, {cause: error}),
      )
    }

    return {exit, stdin, stdout}
  }

  /**
   * Opens a channel to a unix socket on the remote host (OpenSSH's direct-streamlocal), e.g. the Docker
   * socket. The channel can serve as node:http's socket.
   */
  async openUnixSocket(remotePath: string, options: {signal?: AbortSignal} = {}): Promise<ForwardedSocket> {
    const {signal} = options
    signal?.throwIfAborted()
    const unusable = this.unusable(`open ${remotePath}`)
    if (unusable) throw unusable

    return new Promise<ForwardedSocket>((resolve, reject) => {
      let settled = false
      const fail = (error: unknown): void => {
        if (settled) return
        settled = true
        signal?.removeEventListener('abort', onAbort)
        this.inFlight.delete(fail)
        reject(error)
      }

      const onAbort = (): void => fail(signal?.reason)
      signal?.addEventListener('abort', onAbort, {once: true})
      this.inFlight.add(fail)

      const onChannel = (error: Error | undefined, channel: ClientChannel): void => {
        if (error) {
          fail(
            this.ended ??
              new UnreachableError(
                'SSH_FORWARD_REFUSED',
                `${this.label} refused to forward ${remotePath}: ${error.message}`,
                {
                  cause: error,
                  details: {host: this.target.host, path: remotePath, port: this.target.port},
                  suggestions: [
                    `check that ${remotePath} exists on ${this.target.host} and that ${this.target.user} may open it (for Docker: is in the docker group, or is root)`,
                    `the sshd of ${this.target.host} must allow StreamLocal forwarding (AllowStreamLocalForwarding yes, DisableForwarding no)`,
                  ],
                },
              ),
          )
          return
        }

        if (settled) {
          channel.close()
          return
        }

        settled = true
        signal?.removeEventListener('abort', onAbort)
        this.inFlight.delete(fail)
        resolve(this.track(asSocket(channel)))
      }

      try {
        this.client.openssh_forwardOutStreamLocal(remotePath, onChannel)
      } catch (error) {
        fail(
          this.ended ??
            new UnreachableError('SSH_CONNECTION_LOST', `the SSH connection to ${this.label} is gone`, {cause: error}),
        )
      }
    })
  }

  /** Runs a command with small output and collects it (stdout is capped at 32 MiB). Stdin is closed at once. */
  async run(command: string, options: {signal?: AbortSignal} = {}): Promise<RunResult> {
    const child = this.exec(command, options)
    child.stdin.end()
    const chunks: Buffer[] = []
    let size = 0
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > RUN_STDOUT_LIMIT) {
        child.stdout.destroy(
          new TransshipError(
            'SSH_OUTPUT_TOO_LARGE',
            ExitCode.Failed,
            `\`${command}\` on ${this.label} wrote more than ${RUN_STDOUT_LIMIT} bytes`,
          ),
        )
        return
      }

      chunks.push(chunk)
    })
    const [result] = await Promise.all([child.exit, finished(child.stdout)])
    return {...result, stdout: Buffer.concat(chunks).toString('utf8')}
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

  /** Makes a forwarded channel report a lost connection as an error instead of a silent end of stream. */
  private track(socket: ForwardedSocket): ForwardedSocket {
    const fail = (error: TransshipError): void => {
      if (socket.listenerCount('error') > 0) socket.emit('error', error)
    }

    this.inFlight.add(fail)
    socket.once('close', () => this.inFlight.delete(fail))
    return socket
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

/** Keeps the last `limit` bytes written to it. */
class TailBuffer {
  private chunks: Buffer[] = []
  private size = 0

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    if (this.size > this.limit * 2) {
      const tail = Buffer.concat(this.chunks).subarray(-this.limit)
      this.chunks = [tail]
      this.size = tail.length
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).subarray(-this.limit).toString('utf8')
  }
}

function noop(this: unknown): unknown {
  return this
}

/** The same no-op socket methods ssh2's own HTTP agent adds (lib/http-agents.js). */
function asSocket(channel: ClientChannel): ForwardedSocket {
  const socket = channel as unknown as ForwardedSocket & {destroySoon?: () => void}
  socket.setKeepAlive = noop as ForwardedSocket['setKeepAlive']
  socket.setNoDelay = noop as ForwardedSocket['setNoDelay']
  socket.setTimeout = noop as ForwardedSocket['setTimeout']
  socket.ref = noop as ForwardedSocket['ref']
  socket.unref = noop as ForwardedSocket['unref']
  socket.destroySoon = () => socket.destroy()
  return socket
}

/**
 * Asks the remote side to signal the command. ssh2's `signal()` only works while stdin is open, so once
 * stdin was ended the request is sent on the (still open) channel directly.
 */
function sendSignal(channel: ClientChannel, name: string): void {
  try {
    if (channel.writable) {
      channel.signal(name)
      return
    }

    const internal = channel as unknown as {
      _client?: {_protocol?: {signal?: (id: number, name: string) => void}}
      outgoing?: {id?: number; state?: string}
    }
    const {outgoing} = internal
    const protocol = internal._client?._protocol
    if (outgoing?.id !== undefined && (outgoing.state === 'open' || outgoing.state === 'eof') && protocol?.signal) {
      protocol.signal(outgoing.id, name)
    }
  } catch (error) {
    debug('cannot send %s: %s', name, (error as Error).message)
  }
}

/** Known host key types first, so the server presents a key known_hosts can vouch for (as OpenSSH orders them). */
function preferredHostKeyAlgorithms(knownTypes: string[]): HostKeyAlgorithm[] {
  const known = new Set(knownTypes.flatMap((type) => (type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256'] : [type])))
  return [
    ...HOST_KEY_ALGORITHMS.filter((name) => known.has(name)),
    ...HOST_KEY_ALGORITHMS.filter((name) => !known.has(name)),
  ]
}

async function verifyHostKey(target: SshTarget, key: Buffer, log: (message: string) => void): Promise<void> {
  const lookupHost = target.hostKeyAlias ?? target.host
  const keyType = keyTypeOf(key)
  const presented = `${keyTypeLabel(keyType)} ${fingerprint(key)}`
  const label = hostLabel(target)
  const details = {fingerprint: fingerprint(key), host: target.host, keyType, port: target.port}
  const status = await checkHostKey({files: target.knownHostsFiles, host: lookupHost, key, port: target.port})
  switch (status.status) {
    case 'known': {
      debug('%s: host key %s known (%s:%d)', label, presented, status.file, status.line)
      return
    }

    case 'revoked': {
      throw new AuthError(
        'SSH_HOST_KEY_REVOKED',
        `host key of ${label} (${presented}) is marked @revoked in ${status.file}:${status.line}; refusing to connect`,
        {
          details: {...details, file: status.file, line: status.line},
          suggestions: [
            `the host needs a new host key; check its fingerprint on the host, then add it to ${tilde(status.file)}`,
          ],
        },
      )
    }

    case 'mismatch': {
      const otherTypes = status.knownKeyTypes.includes(keyType)
        ? ''
        : ` (it is known with ${status.knownKeyTypes.map((type) => keyTypeLabel(type)).join(', ')} keys only)`
      const name = knownHostsName(lookupHost, target.port)
      throw new AuthError(
        'SSH_HOST_KEY_MISMATCH',
        `host key of ${label} has CHANGED: it presented ${presented}, but ${status.file}:${status.line} records another key${otherTypes}. ` +
          'Someone could be intercepting the connection (man-in-the-middle), or the host key was replaced. Refusing to connect.',
        {
          details: {...details, file: status.file, line: status.line},
          suggestions: [
            `if the change is expected, compare ${fingerprint(key)} with \`ssh-keygen -lf /etc/ssh/ssh_host_${keyTypeLabel(keyType).toLowerCase()}_key.pub\` on the host`,
            `then remove the old entry: ssh-keygen -R '${name}' -f ${tilde(status.file)}`,
          ],
        },
      )
    }

    case 'unknown': {
      const file = target.knownHostsFile ?? target.knownHostsFiles[0]
      if (target.acceptNewHostKey && file) {
        await appendHostKey(file, lookupHost, target.port, keyType, key.toString('base64'), {
          hash: target.hashKnownHosts,
        })
        log(`accepted the new host key of ${label} (${presented}) and added it to ${tilde(file)}`)
        return
      }

      const keyscan = `ssh-keyscan ${target.port === 22 ? '' : `-p ${target.port} `}${lookupHost} >> ${tilde(file ?? '~/.ssh/known_hosts')}`
      throw new AuthError('SSH_HOST_KEY_UNKNOWN', `host key of ${label} is not known (${presented})`, {
        details,
        suggestions: [
          `check the fingerprint, then add it: ${keyscan}`,
          'or accept it once with acceptNewHostKey: true in the recipe host / --accept-new-host-key',
        ],
      })
    }
  }
}

/** The agent, then every usable identity file, as ssh2 auth methods. */
async function loadIdentities(target: SshTarget): Promise<Identities> {
  const attempts: AuthAttempt[] = []
  const skipped: string[] = []
  const files: AuthAttempt[] = []
  const publicKeys: Buffer[] = []
  for (const file of target.identityFiles) {
    const loaded = await loadIdentityFile(file)
    if (loaded.publicKey) publicKeys.push(loaded.publicKey)
    if (loaded.skipped) {
      debug('%s: skipping identity %s: %s', hostLabel(target), file, loaded.skipped)
      skipped.push(`${tilde(file)} (${loaded.skipped})`)
      continue
    }

    if (loaded.privateKey) {
      files.push({label: tilde(file), method: {key: loaded.privateKey, type: 'publickey', username: target.user}})
    }
  }

  if (target.agentSocket) {
    if (!target.identitiesOnly) {
      attempts.push({label: 'ssh-agent', method: {agent: target.agentSocket, type: 'agent', username: target.user}})
    } else if (publicKeys.length > 0) {
      // IdentitiesOnly: only the agent's keys that belong to the identity files
      attempts.push({
        label: 'ssh-agent (identity files only)',
        method: {agent: new FilteredAgent(target.agentSocket, publicKeys), type: 'agent', username: target.user},
      })
    }
  }

  attempts.push(...files)
  return {attempts, skipped}
}

async function loadIdentityFile(file: string): Promise<{privateKey?: Buffer; publicKey?: Buffer; skipped?: string}> {
  let data: Buffer
  try {
    const info = await stat(file)
    // OpenSSH ignores private keys that the group or others may read (mode % 0o100: the group and other bits)
    if (process.platform !== 'win32' && info.mode % 0o100 !== 0) {
      const permissions = (info.mode % 0o1000).toString(8).padStart(4, '0')
      return {skipped: `permissions ${permissions} are too open; chmod 600 it`}
    }

    data = await readFile(file)
  } catch (error) {
    const {code} = error as NodeJS.ErrnoException
    return {skipped: code === 'ENOENT' ? 'not found' : `cannot read it: ${code ?? (error as Error).message}`}
  }

  const parsed = firstKey(ssh2.utils.parseKey(data))
  if (parsed instanceof Error) {
    // typically an encrypted key: there is no passphrase prompt; the agent may hold it
    return {
      publicKey: await publicKeyFile(`${file}.pub`),
      skipped: `${parsed.message}; load it into ssh-agent with ssh-add`,
    }
  }

  if (!parsed.isPrivateKey()) return {skipped: 'not a private key'}
  return {privateKey: data, publicKey: parsed.getPublicSSH()}
}

async function publicKeyFile(file: string): Promise<Buffer | undefined> {
  try {
    const parsed = firstKey(ssh2.utils.parseKey(await readFile(file)))
    return parsed instanceof Error ? undefined : parsed.getPublicSSH()
  } catch {
    return undefined
  }
}

function firstKey(parsed: Error | ParsedKey | ParsedKey[]): Error | ParsedKey {
  if (!Array.isArray(parsed)) return parsed
  return parsed[0] ?? new Error('no key in the file')
}

/** An ssh-agent that only offers the keys of the configured identity files (IdentitiesOnly). */
class FilteredAgent extends ssh2.OpenSSHAgent {
  constructor(
    socketPath: string,
    private readonly allowed: Buffer[],
  ) {
    super(socketPath)
  }

  override getIdentities(callback: IdentityCallback<ParsedKey>): void {
    super.getIdentities((error, keys) => {
      if (error || !keys) {
        callback(error, keys)
        return
      }

      callback(
        undefined,
        keys.filter(
          (key) => 'getPublicSSH' in key && this.allowed.some((allowed) => allowed.equals(key.getPublicSSH())),
        ),
      )
    })
  }
}

function classifyConnectError(
  error: Ssh2Error,
  target: SshTarget,
  identities: Identities,
  tried: string[],
): TransshipError {
  const label = hostLabel(target)
  if (error.level === 'client-authentication') return authFailed(target, identities, tried, error)
  if (error.level === 'client-timeout' || error.code === 'ETIMEDOUT') {
    return new UnreachableError('SSH_TIMEOUT', `timed out connecting to ${label}`, {
      cause: error,
      suggestions: [
        `check that ${target.host} is up and that port ${target.port} is reachable from here (firewall, VPN)`,
      ],
    })
  }

  switch (error.code) {
    case 'ECONNREFUSED': {
      return new UnreachableError(
        'SSH_CONNECTION_REFUSED',
        `${label} refused the connection: nothing listens on port ${target.port}`,
        {
          cause: error,
          suggestions: [`check the port, and that sshd runs on ${target.host}`],
        },
      )
    }

    case 'EAI_AGAIN':
    case 'ENOTFOUND': {
      return new UnreachableError('SSH_HOST_NOT_FOUND', `host "${target.host}" is not found (DNS)`, {
        cause: error,
        suggestions: ['check the host name, or set HostName for it in ~/.ssh/config'],
      })
    }

    case 'EHOSTUNREACH':
    case 'ENETUNREACH': {
      return new UnreachableError('SSH_UNREACHABLE', `${label} is unreachable from here (${error.code})`, {
        cause: error,
        suggestions: ['check the network route to the host (VPN, firewall)'],
      })
    }

    default: {
      if (error.level === 'client-dns') {
        return new UnreachableError('SSH_HOST_NOT_FOUND', `host "${target.host}" is not found (DNS)`, {cause: error})
      }

      return new UnreachableError('SSH_CONNECTION_FAILED', `SSH connection to ${label} failed: ${error.message}`, {
        cause: error,
      })
    }
  }
}

function authFailed(target: SshTarget, identities: Identities, tried: string[], cause?: Error): AuthError {
  const who = `${target.user}@${hostLabel(target)}`
  const parts: string[] = []
  if (tried.length > 0) parts.push(`tried ${tried.join(', ')}`)
  if (identities.skipped.length > 0) parts.push(`skipped ${identities.skipped.join(', ')}`)
  const message =
    tried.length === 0 && identities.attempts.length === 0
      ? `no SSH key to authenticate ${who} with: ${target.agentSocket ? '' : 'no ssh-agent (SSH_AUTH_SOCK is not set), '}${
          identities.skipped.length > 0
            ? `skipped ${identities.skipped.join(', ')}`
            : 'no identity file (~/.ssh/id_ed25519, id_ecdsa, id_rsa)'
        }`
      : `SSH authentication failed for ${who}${parts.length > 0 ? ` (${parts.join('; ')})` : ''}`
  return new AuthError('SSH_AUTH_FAILED', message, {
    cause,
    details: {host: target.host, port: target.port, tried, user: target.user},
    suggestions: [
      `add your public key to ~${target.user}/.ssh/authorized_keys on ${target.host} (e.g. ssh-copy-id -p ${target.port} ${target.user}@${target.host})`,
      'or name the key to use: identityFile in the recipe host, IdentityFile in ~/.ssh/config, or load it into ssh-agent',
    ],
  })
}

/** `host:port` (IPv6 in brackets), for messages. */
function hostLabel(target: Pick<SshTarget, 'host' | 'port'>): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`
}

/** A path under the home directory written with `~`, for messages. */
function tilde(file: string): string {
  const home = homeDirectory()
  return file === home || file.startsWith(home + path.sep) ? `~${file.slice(home.length)}` : file
}
