import type {AnyAuthMethod, IdentityCallback, ParsedKey} from 'ssh2'

import createDebug from 'debug'
import {readFile, stat} from 'node:fs/promises'
import ssh2 from 'ssh2'

import {hostLabel, type SshTarget, tilde} from './config.js'

const debug = createDebug('transship:ssh')

export interface AuthAttempt {
  label: string
  method: AnyAuthMethod
}

export interface Identities {
  attempts: AuthAttempt[]
  /** identity files that could not be used, with why */
  skipped: string[]
}

/** The agent, then every usable identity file, as ssh2 auth methods. */
export async function loadIdentities(target: SshTarget): Promise<Identities> {
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
