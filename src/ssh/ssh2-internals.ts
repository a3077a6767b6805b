/**
 * The one place transship goes past ssh2's public API, written against ssh2 1.17.0 (lib/Channel.js, lib/client.js).
 *
 * A signal request on a channel whose stdin was already closed: SSH allows requests after EOF (RFC 4254, 5.3 and
 * 6.9) and OpenSSH's sshd honours them, but ssh2's public `ClientChannel.signal()` sends only while the channel is
 * writable, so a command whose stdin was ended (every `run()`) could not be stopped. The shape relied on is the
 * channel's `outgoing.{id,state}` and its `_client._protocol.signal(id, name)`.
 *
 * test/unit/ssh/ssh2-internals.test.ts checks that shape against a real ssh2 server: it fails when an ssh2
 * upgrade changes it. Then `signalAfterEof` returns false (nothing is sent), and an aborted command whose stdin
 * is closed is only cut off by closing its channel.
 */
import type {ClientChannel} from 'ssh2'

interface ChannelInternals {
  _client?: {_protocol?: {signal?: (id: number, name: string) => void}}
  outgoing?: {id?: number; state?: string}
}

/** Sends signal `name` on a channel whose stdin was ended; false when ssh2's internals are not as expected. */
export function signalAfterEof(channel: ClientChannel, name: string): boolean {
  const internal = channel as unknown as ChannelInternals
  const {outgoing} = internal
  const protocol = internal._client?._protocol
  if (typeof outgoing?.id !== 'number' || typeof protocol?.signal !== 'function') return false
  // after EOF the channel is still open for requests until either side closes it
  if (outgoing.state !== 'open' && outgoing.state !== 'eof') return false
  protocol.signal(outgoing.id, name)
  return true
}
