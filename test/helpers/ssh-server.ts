import type {AddressInfo} from 'node:net'
import type {Connection, ParsedKey, ServerChannel} from 'ssh2'

import net from 'node:net'
import path from 'node:path'
import ssh2 from 'ssh2'

import type {SshTarget} from '../../src/ssh/config.js'

export interface KeyPair {
  /** OpenSSH private key (unencrypted) */
  private: string
  /** `ssh-ed25519 AAAA… comment` */
  public: string
}

export interface TestSshServerOptions {
  /** the public key (OpenSSH line) the server lets in */
  clientPublicKey: string
  /** the only user name accepted; any when unset */
  user?: string
}

/**
 * An in-process SSH server on 127.0.0.1 with an ed25519 host key. Commands it "runs":
 * - `echo TEXT`: TEXT and a newline on stdout, exit 0
 * - `exit N`: exit status N, with `failing` on stderr
 * - `cat`: stdin back on stdout until stdin ends
 * - `stderr-flood BYTES`: that many bytes on stderr (honouring backpressure), then `done` on stdout
 * - `hang`: never exits; signals are recorded in `signals`
 * - `drop`: the server ends the whole connection (the client sees it lost)
 * Forwarding to unix sockets (`direct-streamlocal@openssh.com`) connects to the real socket path.
 */
export interface TestSshServer {
  close(): Promise<void>
  /** commands received, in order */
  readonly commands: string[]
  /** how many SSH connections were opened to the server */
  readonly connectionsAccepted: number
  readonly hostKey: {base64: string; blob: Buffer; type: string}
  /** a known_hosts line for this server (`[127.0.0.1]:PORT ssh-ed25519 AAAA…`) */
  knownHostsLine(hostField?: string): string
  readonly port: number
  /**
   * signal names received for running commands (`TERM`, …). The ssh2 server ignores requests that come after
   * the client closed stdin, so those only show in `signalRequests`.
   */
  readonly signals: string[]
  /** every signal request that arrived on the wire, handled or not */
  readonly signalRequests: string[]
  /** unix socket paths clients asked to be forwarded to */
  readonly streamLocalPaths: string[]
}

/**
 * A fresh ed25519 key pair. ssh2's generator drops a leading zero byte of the public key (about one key in 256),
 * which makes a malformed key, so such pairs are generated again.
 */
export function generateKeyPair(): KeyPair {
  for (;;) {
    const {private: privateKey, public: publicKey} = ssh2.utils.generateKeyPairSync('ed25519', {
      comment: 'transship-test',
    })
    if (!(ssh2.utils.parseKey(publicKey) instanceof Error) && !(ssh2.utils.parseKey(privateKey) instanceof Error)) {
      return {private: privateKey, public: publicKey}
    }
  }
}

/**
 * Where to reach `server` as user deploy, with the client's key and known_hosts read from `dir`
 * (`dir/id_ed25519`, `dir/known_hosts`).
 */
export function serverTarget(server: TestSshServer, dir: string, overrides: Partial<SshTarget> = {}): SshTarget {
  return {
    acceptNewHostKey: false,
    alias: 'test',
    host: '127.0.0.1',
    identityFiles: [path.join(dir, 'id_ed25519')],
    knownHostsFiles: [path.join(dir, 'known_hosts')],
    port: server.port,
    user: 'deploy',
    ...overrides,
  }
}

export async function startSshServer(options: TestSshServerOptions): Promise<TestSshServer> {
  const hostKeys = generateKeyPair()
  const hostKey = parse(hostKeys.public)
  const allowed = parse(options.clientPublicKey)
  const commands: string[] = []
  const signals: string[] = []
  const signalRequests: string[] = []
  const streamLocalPaths: string[] = []
  const connections = new Set<Connection>()
  let connectionsAccepted = 0

  const debug = (message: string): void => {
    const request = /Inbound: CHANNEL_REQUEST \(r:\d+, signal: (\w+)\)/.exec(message)
    if (request?.[1]) signalRequests.push(request[1])
  }

  const server = new ssh2.Server(
    {debug, hostKeys: [hostKeys.private], ident: 'OpenSSH_9.6p1 transship-test'},
    (client) => {
      connections.add(client)
      connectionsAccepted++
      client.on('close', () => connections.delete(client))
      client.on('error', () => {})
      client.on('authentication', (context) => {
        if (options.user !== undefined && context.username !== options.user) {
          context.reject(['publickey'])
          return
        }

        if (context.method !== 'publickey') {
          context.reject(['publickey'])
          return
        }

        const sameKey = context.key.algo === allowed.type && context.key.data.equals(allowed.getPublicSSH())
        if (!sameKey) {
          context.reject(['publickey'])
          return
        }

        if (context.signature && context.blob && !allowed.verify(context.blob, context.signature, context.hashAlgo)) {
          context.reject(['publickey'])
          return
        }

        context.accept()
      })
      client.on('ready', () => {
        client.on('session', (accept) => {
          const session = accept()
          let channel: ServerChannel | undefined
          session.on('signal', (acceptSignal, _reject, info) => {
            signals.push(info.name)
            acceptSignal?.()
            if (channel?.writable) {
              channel.exit(info.name)
              channel.end()
            }
          })
          session.on('exec', (acceptExec, _reject, info) => {
            commands.push(info.command)
            channel = acceptExec()
            run(info.command, channel, client)
          })
        })
        client.on('openssh.streamlocal', (acceptForward, rejectForward, info) => {
          streamLocalPaths.push(info.socketPath)
          const socket = net.connect(info.socketPath)
          socket.once('error', () => rejectForward())
          socket.once('connect', () => {
            const channel = acceptForward()
            socket.pipe(channel).pipe(socket)
            channel.on('close', () => socket.destroy())
            socket.on('close', () => channel.end())
          })
        })
      })
    },
  )

  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve)
  })
  const {port} = server.address() as AddressInfo
  const base64 = hostKey.getPublicSSH().toString('base64')
  return {
    async close() {
      for (const connection of connections) connection.end()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
      })
    },
    commands,
    get connectionsAccepted() {
      return connectionsAccepted
    },
    hostKey: {base64, blob: hostKey.getPublicSSH(), type: hostKey.type},
    knownHostsLine: (hostField = `[127.0.0.1]:${port}`) => `${hostField} ${hostKey.type} ${base64}`,
    port,
    signalRequests,
    signals,
    streamLocalPaths,
  }
}

function run(command: string, channel: ServerChannel, client: Connection): void {
  const [name = '', ...rest] = command.split(' ')
  const argument = rest.join(' ')
  switch (name) {
    case 'cat': {
      channel.pipe(channel, {end: false})
      channel.on('end', () => {
        channel.exit(0)
        channel.end()
      })
      break
    }

    case 'drop': {
      client.end()
      break
    }

    case 'echo': {
      channel.write(`${argument}\n`)
      channel.exit(0)
      channel.end()
      break
    }

    case 'exit': {
      channel.stderr.write('failing\n')
      channel.exit(Number(argument))
      channel.end()
      break
    }

    case 'hang': {
      break
    }

    case 'stderr-flood': {
      flood(channel, Number(argument)).then(() => {
        channel.write('done\n')
        channel.exit(0)
        channel.end()
      })
      break
    }

    default: {
      channel.stderr.write(`${name}: command not found\n`)
      channel.exit(127)
      channel.end()
    }
  }
}

async function flood(channel: ServerChannel, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 'e')
  let left = bytes
  while (left > 0) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left)
    left -= piece.length
    if (!channel.stderr.write(piece)) {
      await new Promise((resolve) => {
        channel.stderr.once('drain', resolve)
      })
    }
  }

  // the last bytes end with a marker, so a test can check it got the tail; wait until it is sent before exiting
  await new Promise((resolve) => {
    channel.stderr.write('<end of stderr>', resolve)
  })
}

function parse(key: string): ParsedKey {
  const parsed = ssh2.utils.parseKey(key)
  if (parsed instanceof Error) throw parsed
  return Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed
}
