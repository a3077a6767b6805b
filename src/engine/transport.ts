import type {RequestOptions} from 'node:http'
import type {Duplex} from 'node:stream'

/** How requests reach an engine: the connection part of node:http's request options. */
export interface EngineTransport {
  connect(
    signal?: AbortSignal,
  ): Promise<Pick<RequestOptions, 'agent' | 'createConnection' | 'host' | 'port' | 'socketPath'>>
  /** where, for messages: `unix:///var/run/docker.sock`, `ssh://root@edge:22 → /var/run/docker.sock` */
  readonly describe: string
}

/** An engine socket on this machine. */
export function unixSocketTransport(socketPath: string): EngineTransport {
  return {
    async connect() {
      return {agent: false, socketPath}
    },
    describe: `unix://${socketPath}`,
  }
}

/** A plain TCP engine endpoint (`tcp://host:port`). */
export function tcpTransport(host: string, port: number): EngineTransport {
  return {
    async connect() {
      return {agent: false, host, port}
    },
    describe: `tcp://${host}:${port}`,
  }
}

/**
 * An engine socket on a remote host, reached by forwarding it over an SSH connection: each request opens
 * its own channel on the one connection to that host.
 */
export function forwardedSocketTransport(
  describe: string,
  open: (signal?: AbortSignal) => Promise<Duplex>,
): EngineTransport {
  return {
    async connect(signal) {
      const channel = await open(signal)
      // no `agent` key: with `agent: false` node:http would build its own agent and ignore createConnection
      return {createConnection: () => channel as never}
    },
    describe,
  }
}
