import {UsageError} from '@transship/kit'
import createDebug from 'debug'
import {createHash, createHmac, randomBytes, timingSafeEqual} from 'node:crypto'
import {appendFile, mkdir, open, readFile} from 'node:fs/promises'
import path from 'node:path'

const debug = createDebug('transship:ssh:known-hosts')

/** One key line of an OpenSSH known_hosts file. */
export interface KnownHostEntry {
  file: string
  /** the key in SSH wire format */
  key: Buffer
  keyType: string
  line: number
  marker?: '@cert-authority' | '@revoked'
  /** `|1|salt|hash` for a hashed entry, else comma-separated patterns (`!` negates, `*` and `?` are globs) */
  patterns: string
}

export interface HostKeyQuery {
  /** known_hosts files to consult, in order; missing files are skipped */
  files: string[]
  host: string
  /** the presented host key, in SSH wire format */
  key: Buffer
  port: number
}

export type HostKeyStatus =
  | {
      file: string
      /** the key types the host is known with; none of them is the presented key */
      knownKeyTypes: string[]
      line: number
      status: 'mismatch'
    }
  | {file: string; line: number; status: 'known'}
  | {file: string; line: number; status: 'revoked'}
  | {status: 'unknown'}

/**
 * Checks a presented host key the way OpenSSH does:
 * - a matching `@revoked` line refuses the key, whatever else is listed;
 * - a line for the host with the same key makes it `known`;
 * - lines for the host that all carry other keys make it a `mismatch` (OpenSSH's "REMOTE HOST IDENTIFICATION
 *   HAS CHANGED"), also when they are of another key type (the line named is one of the same type when there is);
 * - no line for the host: `unknown`.
 * `@cert-authority` lines are ignored: host certificates are not supported, so such hosts are not known.
 */
export async function checkHostKey(query: HostKeyQuery): Promise<HostKeyStatus> {
  const name = knownHostsName(query.host, query.port)
  const presentedType = keyTypeOf(query.key)
  const entries = (await readKnownHosts(query.files)).filter((entry) => hostMatches(entry.patterns, name))

  const revoked = entries.find((entry) => entry.marker === '@revoked' && entry.key.equals(query.key))
  if (revoked) return {file: revoked.file, line: revoked.line, status: 'revoked'}

  const plain = entries.filter((entry) => entry.marker === undefined)
  const same = plain.find((entry) => entry.key.equals(query.key))
  if (same) return {file: same.file, line: same.line, status: 'known'}

  const first = plain.find((entry) => entry.keyType === presentedType) ?? plain[0]
  if (first) {
    return {
      file: first.file,
      knownKeyTypes: [...new Set(plain.map((entry) => entry.keyType))],
      line: first.line,
      status: 'mismatch',
    }
  }

  return {status: 'unknown'}
}

/** The key types (`ssh-ed25519`, `ssh-rsa`, ...) the files list for a host, to ask the server for one of those. */
export async function knownHostKeyTypes(query: Omit<HostKeyQuery, 'key'>): Promise<string[]> {
  const name = knownHostsName(query.host, query.port)
  const entries = await readKnownHosts(query.files)
  return [
    ...new Set(
      entries
        .filter((entry) => entry.marker === undefined && hostMatches(entry.patterns, name))
        .map((entry) => entry.keyType),
    ),
  ]
}

/** Serialises appends in this process, so two connections accepting the same new host add one line. */
let appending: Promise<unknown> = Promise.resolve()

/**
 * Records a host key (as `StrictHostKeyChecking=accept-new` does). Creates the file's directory (mode 0700)
 * and the file (mode 0600) when missing. Nothing is written if the file already has this key for the host.
 */
export async function appendHostKey(
  file: string,
  host: string,
  port: number,
  keyType: string,
  keyBase64: string,
  options: {hash?: boolean} = {},
): Promise<void> {
  const run = appending.then(async () => {
    const key = Buffer.from(keyBase64, 'base64')
    const status = await checkHostKey({files: [file], host, key, port})
    if (status.status === 'known') return
    const name = knownHostsName(host, port)
    const hostField = options.hash ? hashHostName(name) : name
    const directory = path.dirname(file)
    await mkdir(directory, {mode: 0o700, recursive: true})
    const prefix = (await endsWithoutNewline(file)) ? '\n' : ''
    await appendFile(file, `${prefix}${hostField} ${keyType} ${keyBase64}\n`, {mode: 0o600})
    debug('added %s %s to %s', name, keyType, file)
  })
  appending = run.catch(() => {})
  return run
}

/** `SHA256:<base64 without padding>` of a wire-format key, as `ssh-keygen -l` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`
}

/** The key type named inside a wire-format key (its first SSH string), e.g. `ssh-ed25519`. */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return ''
  const length = key.readUInt32BE(0)
  if (length > key.length - 4 || length > 64) return ''
  return key.subarray(4, 4 + length).toString('latin1')
}

/** The short name OpenSSH shows for a key type: `ED25519`, `RSA`, `ECDSA`, ... */
export function keyTypeLabel(keyType: string): string {
  if (keyType === 'ssh-ed25519') return 'ED25519'
  if (keyType === 'ssh-rsa') return 'RSA'
  if (keyType === 'ssh-dss') return 'DSA'
  if (keyType.startsWith('ecdsa-sha2-')) return 'ECDSA'
  if (keyType.startsWith('sk-ssh-ed25519')) return 'ED25519-SK'
  if (keyType.startsWith('sk-ecdsa-')) return 'ECDSA-SK'
  return keyType
}

/** The name a host has in known_hosts: `host` on port 22, else `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  const lower = host.toLowerCase()
  return port === 22 ? lower : `[${lower}]:${port}`
}

/** Parses the text of a known_hosts file; lines that are not valid key lines are skipped. */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  const lines = text.split('\n')
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(/\s+/)
    let marker: KnownHostEntry['marker']
    if (fields[0]?.startsWith('@')) {
      const value = fields.shift()
      if (value !== '@cert-authority' && value !== '@revoked') {
        debug('%s:%d: unknown marker %s, line skipped', file, index + 1, value)
        continue
      }

      marker = value
    }

    const [patterns, keyType, keyBase64] = fields
    if (!patterns || !keyType || !keyBase64) {
      debug('%s:%d: not a key line, skipped', file, index + 1)
      continue
    }

    const key = Buffer.from(keyBase64, 'base64')
    if (keyTypeOf(key) !== keyType) {
      debug('%s:%d: the key does not match its type %s, line skipped', file, index + 1, keyType)
      continue
    }

    const entry: KnownHostEntry = {file, key, keyType, line: index + 1, patterns}
    if (marker) entry.marker = marker
    entries.push(entry)
  }

  return entries
}

/**
 * Whether a known_hosts host field matches a name (`host` or `[host]:port`): a hashed `|1|salt|hash` field
 * by HMAC-SHA1, else a comma-separated pattern list where any matching `!pattern` excludes the name.
 */
export function hostMatches(patterns: string, name: string): boolean {
  const lower = name.toLowerCase()
  if (patterns.startsWith('|')) return hashedMatches(patterns, lower)
  let found = false
  for (const pattern of patterns.split(',')) {
    if (pattern === '') continue
    const negated = pattern.startsWith('!')
    const glob = negated ? pattern.slice(1) : pattern
    if (globMatches(glob.toLowerCase(), lower)) {
      if (negated) return false
      found = true
    }
  }

  return found
}

/** `|1|<base64 salt>|<base64 HMAC-SHA1(salt, name)>`, as `HashKnownHosts yes` writes it. */
export function hashHostName(name: string, salt: Buffer = randomBytes(20)): string {
  const hash = createHmac('sha1', salt).update(name.toLowerCase()).digest()
  return `|1|${salt.toString('base64')}|${hash.toString('base64')}`
}

function hashedMatches(field: string, name: string): boolean {
  const parts = field.split('|')
  // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1' || !parts[2] || !parts[3]) return false
  const salt = Buffer.from(parts[2], 'base64')
  const expected = Buffer.from(parts[3], 'base64')
  const actual = createHmac('sha1', salt).update(name).digest()
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

function globMatches(glob: string, name: string): boolean {
  if (!glob.includes('*') && !glob.includes('?')) return glob === name
  const source = [...glob]
    .map((char) => {
      if (char === '*') return '.*'
      if (char === '?') return '.'
      return char.replaceAll(/[$()*+.?[\\\]^{|}]/g, String.raw`\$&`)
    })
    .join('')
  return new RegExp(`^${source}$`, 's').test(name)
}

async function readKnownHosts(files: string[]): Promise<KnownHostEntry[]> {
  const entries: KnownHostEntry[] = []
  for (const file of files) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (error) {
      const {code} = error as NodeJS.ErrnoException
      if (code === 'ENOENT' || code === 'ENOTDIR') continue
      // an unreadable file could hide a changed key: refuse rather than treat the host as unknown
      throw new UsageError(`cannot read the known hosts file ${file} (${code ?? String(error)})`, {
        cause: error,
        code: 'SSH_KNOWN_HOSTS_UNREADABLE',
        suggestions: [`check the permissions of ${file}`],
      })
    }

    entries.push(...parseKnownHosts(text, file))
  }

  return entries
}

async function endsWithoutNewline(file: string): Promise<boolean> {
  let handle
  try {
    handle = await open(file, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }

  try {
    const {size} = await handle.stat()
    if (size === 0) return false
    const last = Buffer.alloc(1)
    await handle.read(last, 0, 1, size - 1)
    return last[0] !== 0x0a
  } finally {
    await handle.close()
  }
}
