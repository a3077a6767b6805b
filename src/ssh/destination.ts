import {UsageError} from '@transship/kit'
import {isIPv6} from 'node:net'

/** Where to connect, as written by the user: a host (or an alias of ~/.ssh/config), maybe a user and a port. */
export interface Destination {
  host: string
  port?: number
  user?: string
}

const HOSTNAME = /^[\w.-]+$/
const FORMS = 'user@host, user@host:port, ssh://user@host[:port] or [IPv6]:port'
// eslint-disable-next-line no-control-regex
const SPACE_OR_CONTROL = /[\s\u0000-\u001F\u007F]/

/**
 * Parses `host`, `user@host`, `user@host:port`, `ssh://user@host[:port]` and the bracketed IPv6 forms
 * (`[::1]:2222`, `user@[::1]`). A bare IPv6 address (`::1`) is taken as a host without a port.
 * The user is everything before the last `@`, as OpenSSH does. Errors are UsageErrors whose
 * `details.why` says what is wrong, so that the engine address grammar can put it in its own words.
 */
export function parseDestination(input: string): Destination {
  const value = input
  if (value === '') throw invalid(input, 'it is empty')
  // no trimming: a space is never part of a host, and silently dropping it hides a typo
  if (SPACE_OR_CONTROL.test(value)) throw invalid(input, 'it contains spaces or control characters')
  if (/^ssh:\/\//i.test(value)) return parseUrl(input, value.slice('ssh://'.length))
  if (/^[a-z][\d+.a-z-]*:\/\//i.test(value)) throw invalid(input, 'only the ssh:// scheme is supported')
  return parseHostPart(input, value)
}

/** `user@host:port`, with IPv6 hosts in brackets and the port left out when it is 22. */
export function formatDestination(destination: Destination): string {
  const host = destination.host.includes(':') ? `[${destination.host}]` : destination.host
  const user = destination.user ? `${destination.user}@` : ''
  const port = destination.port === undefined || destination.port === 22 ? '' : `:${destination.port}`
  return `${user}${host}${port}`
}

function parseUrl(input: string, rest: string): Destination {
  // ssh://user@host:port[/] — a path (a socket on the remote) belongs to the engine address, not here
  let authority = rest
  if (authority.endsWith('/')) authority = authority.slice(0, -1)
  if (/[#/?]/.test(authority)) throw invalid(input, 'an ssh:// destination has no path, query or fragment')
  if (authority === '') throw invalid(input, 'the host is empty')
  const at = authority.lastIndexOf('@')
  if (at !== -1 && authority.slice(0, at).includes(':')) {
    throw invalid(input, 'passwords are not supported in SSH destinations; use a key or ssh-agent')
  }

  let decoded: string
  try {
    decoded = at === -1 ? authority : `${decodeURIComponent(authority.slice(0, at))}@${authority.slice(at + 1)}`
  } catch {
    throw invalid(input, 'the user is not validly percent-encoded')
  }

  return parseHostPart(input, decoded)
}

function parseHostPart(input: string, value: string): Destination {
  const at = value.lastIndexOf('@')
  const user = at === -1 ? undefined : value.slice(0, at)
  const hostPort = at === -1 ? value : value.slice(at + 1)
  if (user !== undefined) checkUser(input, user)

  let host: string
  let portText: string | undefined
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']')
    if (close === -1) throw invalid(input, 'a "[" without its "]"')
    host = hostPort.slice(1, close)
    const after = hostPort.slice(close + 1)
    if (after !== '') {
      if (!after.startsWith(':')) throw invalid(input, `unexpected "${after}" after "]"`)
      portText = after.slice(1)
    }

    if (!isIPv6(host)) checkHost(input, host)
  } else {
    const colons = hostPort.split(':').length - 1
    if (colons > 1) {
      // an IPv6 address without brackets cannot carry a port
      if (!isIPv6(hostPort)) {
        throw invalid(input, `"${hostPort}" is not a valid IPv6 address (write [address]:port to give a port)`)
      }

      host = hostPort
    } else if (colons === 1) {
      const colon = hostPort.indexOf(':')
      host = hostPort.slice(0, colon)
      portText = hostPort.slice(colon + 1)
      checkHost(input, host)
    } else {
      host = hostPort
      checkHost(input, host)
    }
  }

  const destination: Destination = {host}
  if (user !== undefined) destination.user = user
  if (portText !== undefined) destination.port = parsePort(input, portText)
  return destination
}

function checkUser(input: string, user: string): void {
  if (user === '') throw invalid(input, 'the user before "@" is empty')
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001F\u007F]/.test(user)) throw invalid(input, 'the user contains spaces or control characters')
  if (user.startsWith('-')) throw invalid(input, 'the user must not start with "-"')
}

function checkHost(input: string, host: string): void {
  if (host === '') throw invalid(input, 'the host is empty')
  if (!HOSTNAME.test(host)) {
    throw invalid(input, `"${host}" is not a valid host name (letters, digits, ".", "-" and "_" only)`)
  }

  if (host.startsWith('-') || host.startsWith('.')) throw invalid(input, `"${host}" must not start with "${host[0]}"`)
}

function parsePort(input: string, text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw invalid(input, `"${text}" is not a port number`)
  const port = Number(text)
  if (port < 1 || port > 65_535) throw invalid(input, `port ${port} is out of range (1-65535)`)
  return port
}

function invalid(input: string, why: string): UsageError {
  return new UsageError(`invalid SSH destination ${JSON.stringify(input)}: ${why}`, {
    code: 'SSH_DESTINATION_INVALID',
    details: {why},
    suggestions: [`write it as ${FORMS}`],
  })
}
