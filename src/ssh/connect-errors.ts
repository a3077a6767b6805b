import {AuthError, type TransshipError, UnreachableError} from '@transship/kit'

import type {Identities} from './identities.js'

import {hostLabel, type SshTarget} from './config.js'

/** ssh2 errors carry where they happened in `level`, Node's socket errors a `code`. */
export type Ssh2Error = Error & {code?: number | string; level?: string}

/** A failed connect as the user should read it: the network (UnreachableError) or the credentials (AuthError). */
export function classifyConnectError(
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
