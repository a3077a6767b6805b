/**
 * Unix sockets of the remote host reached through the SSH connection (OpenSSH's direct-streamlocal), e.g. the
 * Docker socket: each is a channel that node:http accepts as its socket.
 */
import type {ClientChannel} from 'ssh2'

import {type TransshipError, UnreachableError} from '@transship/kit'
import {type Duplex} from 'node:stream'

import type {ChannelOwner} from './connection.js'

/** A channel to a remote unix socket that node:http accepts as its socket (`createConnection: () => socket`). */
export type ForwardedSocket = Duplex & {
  ref(): ForwardedSocket
  setKeepAlive(): ForwardedSocket
  setNoDelay(): ForwardedSocket
  setTimeout(): ForwardedSocket
  unref(): ForwardedSocket
}

/** Opens a channel to `remotePath` on the remote host; a lost connection is an error on it, not a silent end. */
export async function openUnixSocket(
  owner: ChannelOwner,
  remotePath: string,
  options: {signal?: AbortSignal} = {},
): Promise<ForwardedSocket> {
  const {signal} = options
  signal?.throwIfAborted()
  const unusable = owner.unusable(`open ${remotePath}`)
  if (unusable) throw unusable
  const {target} = owner

  return new Promise<ForwardedSocket>((resolve, reject) => {
    let settled = false
    const fail = (error: unknown): void => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      unwatch()
      reject(error)
    }

    const onAbort = (): void => fail(signal?.reason)
    signal?.addEventListener('abort', onAbort, {once: true})
    const unwatch = owner.watch(fail)

    const onChannel = (error: Error | undefined, channel: ClientChannel): void => {
      if (error) {
        fail(
          owner.endedWith() ??
            new UnreachableError(
              'SSH_FORWARD_REFUSED',
              `${owner.label} refused to forward ${remotePath}: ${error.message}`,
              {
                cause: error,
                details: {host: target.host, path: remotePath, port: target.port},
                suggestions: [
                  `check that ${remotePath} exists on ${target.host} and that ${target.user} may open it (for Docker: is in the docker group, or is root)`,
                  `the sshd of ${target.host} must allow StreamLocal forwarding (AllowStreamLocalForwarding yes, DisableForwarding no)`,
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
      unwatch()
      resolve(track(owner, asSocket(channel)))
    }

    try {
      owner.client.openssh_forwardOutStreamLocal(remotePath, onChannel)
    } catch (error) {
      fail(
        owner.endedWith() ??
          new UnreachableError('SSH_CONNECTION_LOST', `the SSH connection to ${owner.label} is gone`, {cause: error}),
      )
    }
  })
}

/** Makes a forwarded channel report a lost connection as an error instead of a silent end of stream. */
function track(owner: ChannelOwner, socket: ForwardedSocket): ForwardedSocket {
  const unwatch = owner.watch((error: TransshipError) => {
    if (socket.listenerCount('error') > 0) socket.emit('error', error)
  })
  socket.once('close', unwatch)
  return socket
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
