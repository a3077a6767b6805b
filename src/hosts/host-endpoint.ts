/**
 * A host's endpoint once resolved: what tells one engine's address from another's, whatever the spelling that
 * led to it (`local`, DOCKER_HOST, a socket path, an alias of ~/.ssh/config).
 */
import type {HostEndpoint} from '@transship/kit'

import {isIP} from 'node:net'

/** The endpoint as one address: `unix:///path`, `tcp://host:port` or `ssh://user@host:port/socket`. */
export function formatHostEndpoint(endpoint: HostEndpoint): string {
  switch (endpoint.kind) {
    case 'ssh': {
      return `ssh://${endpoint.user}@${bracketed(endpoint.host)}:${endpoint.port}${endpoint.socket}`
    }

    case 'tcp': {
      return `tcp://${bracketed(endpoint.host)}:${endpoint.port}`
    }

    case 'unix': {
      return `unix://${endpoint.socket}`
    }
  }
}

/** Whether bytes to and from the engine stay on this machine: a socket here, or a loopback address. */
export function isOnThisMachine(endpoint: HostEndpoint): boolean {
  return endpoint.kind === 'unix' || isLoopbackAddress(endpoint.host)
}

/** localhost, 127.0.0.0/8 and ::1 (as the resolved host name or address, after ~/.ssh/config's HostName). */
function isLoopbackAddress(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (name === 'localhost' || name.endsWith('.localhost')) return true
  if (isIP(name) === 4) return name.startsWith('127.')
  return isIP(name) === 6 && /^(?:0{0,4}:){2,7}0{0,3}1$|^::1$/.test(name)
}

function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
