import {AuthError} from '@transship/kit'
import createDebug from 'debug'

import {hostLabel, type SshTarget, tilde} from './config.js'
import {appendHostKey, checkHostKey, fingerprint, keyTypeLabel, keyTypeOf, knownHostsName} from './known-hosts.js'

const debug = createDebug('transship:ssh')

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

/** Known host key types first, so the server presents a key known_hosts can vouch for (as OpenSSH orders them). */
export function preferredHostKeyAlgorithms(knownTypes: string[]): HostKeyAlgorithm[] {
  const known = new Set(knownTypes.flatMap((type) => (type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256'] : [type])))
  return [
    ...HOST_KEY_ALGORITHMS.filter((name) => known.has(name)),
    ...HOST_KEY_ALGORITHMS.filter((name) => !known.has(name)),
  ]
}

/**
 * Checks the key a server presented against known_hosts: known passes; unknown is recorded when the target
 * accepts new keys, else refused; changed and revoked are always refused (AuthError).
 */
export async function verifyHostKey(target: SshTarget, key: Buffer, log: (message: string) => void): Promise<void> {
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
