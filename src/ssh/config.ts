import {UsageError} from '@transship/kit'
import createDebug from 'debug'
import {access, readdir, readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import SSHConfig, {type Line, LineType, type Section} from 'ssh-config'

import {type Destination, formatDestination, parseDestination} from './destination.js'

const debug = createDebug('transship:ssh:config')

/** Everything needed to open (and verify) one SSH connection. */
export interface SshTarget {
  /** whether an unknown host key may be recorded and trusted (never a changed one) */
  acceptNewHostKey: boolean
  /** the ssh-agent socket to authenticate with (SSH_AUTH_SOCK, or IdentityAgent of ~/.ssh/config) */
  agentSocket?: string
  /** the host as the user wrote it (maybe an alias of ~/.ssh/config) */
  alias: string
  /** record accepted host keys hashed (HashKnownHosts) */
  hashKnownHosts?: boolean
  /** the address connected to (HostName) */
  host: string
  /** the name host keys are looked up under instead of the host (HostKeyAlias) */
  hostKeyAlias?: string
  /** with IdentitiesOnly, agent keys are only used when they belong to one of the identity files */
  identitiesOnly?: boolean
  /** private key files to try in order, after the agent; missing ones are skipped when connecting */
  identityFiles: string[]
  /** the file accepted host keys are added to; defaults to the first of knownHostsFiles */
  knownHostsFile?: string
  /** known_hosts files consulted: the user's files first, then the global ones */
  knownHostsFiles: string[]
  port: number
  user: string
  /** problems with the configuration that did not stop the resolution, to show the user */
  warnings?: string[]
}

/** Values from a recipe host or from flags: they beat ~/.ssh/config, which beats the defaults. */
export interface SshTargetOverrides {
  acceptNewHostKey?: boolean
  identityFile?: string
  knownHostsFile?: string
  port?: number
  user?: string
}

export interface ResolveOptions {
  /** the SSH client configuration file; default ~/.ssh/config */
  configFile?: string
  env?: NodeJS.ProcessEnv
}

const DEFAULT_IDENTITY_FILES = ['id_ed25519', 'id_ecdsa', 'id_rsa']
const DEFAULT_USER_KNOWN_HOSTS = ['known_hosts', 'known_hosts2']
const DEFAULT_GLOBAL_KNOWN_HOSTS = ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']
const MAX_INCLUDE_DEPTH = 16

/**
 * Resolves a destination (`user@host[:port]`, `ssh://…`, or an alias of ~/.ssh/config) into a target:
 * explicit overrides beat the destination's own user and port, which beat ~/.ssh/config, which beats the
 * defaults (port 22, the local user name, the ~/.ssh/id_* keys that exist, ~/.ssh/known_hosts).
 *
 * Host keys are always checked: `StrictHostKeyChecking no` in the config is treated as `accept-new`, with a
 * warning. `Match exec` criteria are not evaluated (resolving a host never runs a command).
 */
export async function resolveSshTarget(
  destination: string,
  overrides: SshTargetOverrides = {},
  options: ResolveOptions = {},
): Promise<SshTarget> {
  const env = options.env ?? process.env
  const home = homeDirectory(env)
  const parsed = parseDestination(destination)
  const configFile = options.configFile ?? path.join(home, '.ssh', 'config')
  const warnings: string[] = []
  const config = await loadConfig(configFile, home, warnings)
  const explicitUser = overrides.user ?? parsed.user
  const options_ = new ComputedOptions(
    config.compute(explicitUser === undefined ? {Host: parsed.host} : {Host: parsed.host, User: explicitUser}, {
      ignoreCase: true,
      matchExec: false,
    }),
    `${configFile} (Host ${parsed.host})`,
  )

  const localUser = localUserName(env)
  const hostName = options_.single('hostname')
  const host = hostName
    ? expandTokens(hostName, {alias: parsed.host, host: parsed.host}, `HostName in ${options_.where}`)
    : parsed.host
  const port = overrides.port ?? parsed.port ?? configPort(options_.single('port'), options_.where) ?? 22
  const user = explicitUser ?? options_.single('user') ?? localUser
  const tokens: TokenContext = {alias: parsed.host, home, host, localUser, port, user}
  const expandPath = (value: string, what: string): string =>
    path.resolve(expandTilde(expandTokens(expandEnv(value, env, what), tokens, what), home, what))

  const identityFiles = await resolveIdentityFiles(overrides, options_, home, expandPath)
  const {global: globalKnownHosts, user: userKnownHosts} = resolveKnownHostsFiles(overrides, options_, home, expandPath)
  const acceptNewHostKey =
    overrides.acceptNewHostKey ??
    strictHostKeyChecking(options_.single('stricthostkeychecking'), options_.where, warnings)

  const target: SshTarget = {
    acceptNewHostKey,
    alias: parsed.host,
    host,
    identityFiles,
    knownHostsFiles: [...userKnownHosts, ...globalKnownHosts],
    port,
    user,
    warnings,
  }
  if (userKnownHosts[0]) target.knownHostsFile = userKnownHosts[0]
  if (options_.yes('identitiesonly')) target.identitiesOnly = true
  if (options_.yes('hashknownhosts')) target.hashKnownHosts = true
  const hostKeyAlias = options_.single('hostkeyalias')
  if (hostKeyAlias) target.hostKeyAlias = hostKeyAlias
  const agentSocket = identityAgent(options_.single('identityagent'), env, expandPath, options_.where)
  if (agentSocket) target.agentSocket = agentSocket

  warnings.push(...proxyWarnings(options_, host, port))

  debug(
    '%s → %s@%s:%d keys=%o knownHosts=%o acceptNew=%s',
    destination,
    user,
    host,
    port,
    identityFiles,
    target.knownHostsFiles,
    acceptNewHostKey,
  )
  return target
}

/** The options ssh-config computed for one host (names in lower case). */
class ComputedOptions {
  constructor(
    private readonly values: Record<string, string | string[]>,
    /** the config file and host, for messages */
    readonly where: string,
  ) {}

  list(name: string): string[] | undefined {
    const value = this.values[name]
    if (value === undefined) return undefined
    return (Array.isArray(value) ? value : [value]).filter((item) => item !== '')
  }

  single(name: string): string | undefined {
    const value = this.values[name]
    return Array.isArray(value) ? value.join(' ') : value
  }

  yes(name: string): boolean {
    return this.single(name)?.toLowerCase() === 'yes'
  }
}

type ExpandPath = (value: string, what: string) => string

/** ProxyJump and ProxyCommand are not supported: say so rather than fail (a direct connection may still work). */
function proxyWarnings(options: ComputedOptions, host: string, port: number): string[] {
  const warnings: string[] = []
  for (const [option, name] of [
    ['proxyjump', 'ProxyJump'],
    ['proxycommand', 'ProxyCommand'],
  ] as const) {
    const value = options.single(option)
    if (value && value.toLowerCase() !== 'none') {
      warnings.push(
        `${options.where} sets ${name}, which transship does not support; connecting directly to ${host}:${port}`,
      )
    }
  }

  return warnings
}

/** An explicit identity file, else IdentityFile of the config, else the default keys that exist. */
async function resolveIdentityFiles(
  overrides: SshTargetOverrides,
  options: ComputedOptions,
  home: string,
  expandPath: ExpandPath,
): Promise<string[]> {
  if (overrides.identityFile) return [expandPath(overrides.identityFile, 'identityFile')]
  const configured = options.list('identityfile')
  if (configured && configured.length > 0) {
    return configured
      .filter((file) => file.toLowerCase() !== 'none')
      .map((file) => expandPath(file, `IdentityFile in ${options.where}`))
  }

  const files: string[] = []
  for (const name of DEFAULT_IDENTITY_FILES) {
    const file = path.join(home, '.ssh', name)
    if (await exists(file)) files.push(file)
  }

  return files
}

/** The user's known_hosts files (an explicit one replaces UserKnownHostsFile), and the global ones. */
function resolveKnownHostsFiles(
  overrides: SshTargetOverrides,
  options: ComputedOptions,
  home: string,
  expandPath: ExpandPath,
): {global: string[]; user: string[]} {
  let user: string[]
  if (overrides.knownHostsFile) {
    user = [expandPath(overrides.knownHostsFile, 'knownHostsFile')]
  } else {
    const configured = options.list('userknownhostsfile')
    user = configured
      ? noneOr(configured).map((file) => expandPath(file, `UserKnownHostsFile in ${options.where}`))
      : DEFAULT_USER_KNOWN_HOSTS.map((name) => path.join(home, '.ssh', name))
  }

  const configuredGlobal = options.list('globalknownhostsfile')
  const global = configuredGlobal
    ? noneOr(configuredGlobal).map((file) => expandPath(file, `GlobalKnownHostsFile in ${options.where}`))
    : DEFAULT_GLOBAL_KNOWN_HOSTS
  return {global, user}
}

/** The key a pool shares connections under: `user@host:port`. */
export function sshTargetKey(target: Pick<SshTarget, 'host' | 'port' | 'user'>): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host
  return `${target.user}@${host}:${target.port}`
}

/** `user@host:port` of a target, for messages (the port left out when it is 22). */
export function describeTarget(target: Pick<SshTarget, 'host' | 'port' | 'user'>): string {
  const destination: Destination = {host: target.host, port: target.port, user: target.user}
  return formatDestination(destination)
}

/** The home directory `~` stands for: HOME, else the account's. */
export function homeDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env.HOME || os.homedir()
}

/** A path under the home directory written with `~`, for messages. */
export function tilde(file: string): string {
  const home = homeDirectory()
  return file === home || file.startsWith(home + path.sep) ? `~${file.slice(home.length)}` : file
}

/** `host:port` of a target (IPv6 in brackets), for messages. */
export function hostLabel(target: Pick<SshTarget, 'host' | 'port'>): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`
}

interface TokenContext {
  alias: string
  home?: string
  host: string
  localUser?: string
  port?: number
  user?: string
}

/**
 * Expands the `%` tokens of ssh_config(5): %% %d (home) %h (host name) %i (uid) %L %l (local host name)
 * %n (host as given) %p (port) %r (remote user) %u (local user). A token that is not known, or not
 * available for this option, is refused.
 */
export function expandTokens(value: string, context: TokenContext, what: string): string {
  return value.replaceAll(/%(.?)/gs, (token, letter: string) => {
    const replacement = tokenValue(letter, context)
    if (replacement === undefined) {
      throw new UsageError(`${what}: "${token}" in "${value}" is not a supported token`, {
        code: 'SSH_CONFIG_INVALID',
        suggestions: ['the supported tokens are %% %d %h %i %L %l %n %p %r %u'],
      })
    }

    return replacement
  })
}

function tokenValue(letter: string, context: TokenContext): string | undefined {
  switch (letter) {
    case '%': {
      return '%'
    }

    case 'd': {
      return context.home
    }

    case 'h': {
      return context.host
    }

    case 'i': {
      return typeof process.getuid === 'function' ? String(process.getuid()) : undefined
    }

    case 'L': {
      return os.hostname().split('.')[0]
    }

    case 'l': {
      return os.hostname()
    }

    case 'n': {
      return context.alias
    }

    case 'p': {
      return context.port === undefined ? undefined : String(context.port)
    }

    case 'r': {
      return context.user
    }

    case 'u': {
      return context.localUser
    }

    default: {
      return undefined
    }
  }
}

function expandTilde(value: string, home: string, what: string): string {
  if (value === '~') return home
  if (value.startsWith('~/')) return path.join(home, value.slice(2))
  if (value.startsWith('~')) {
    throw new UsageError(`${what}: "${value}": only ~/ (your own home directory) is supported`, {
      code: 'SSH_CONFIG_INVALID',
    })
  }

  return value
}

function expandEnv(value: string, env: NodeJS.ProcessEnv, what: string): string {
  return value.replaceAll(/\$\{([A-Z_a-z]\w*)\}/g, (_match, name: string) => {
    const variable = env[name]
    if (variable === undefined) {
      throw new UsageError(`${what}: environment variable ${name} is not set`, {code: 'SSH_CONFIG_INVALID'})
    }

    return variable
  })
}

function configPort(value: string | undefined, where: string): number | undefined {
  if (value === undefined) return undefined
  const port = Number(value)
  if (!/^\d{1,5}$/.test(value) || port < 1 || port > 65_535) {
    throw new UsageError(`Port "${value}" in ${where} is not a valid port`, {code: 'SSH_CONFIG_INVALID'})
  }

  return port
}

function strictHostKeyChecking(value: string | undefined, where: string, warnings: string[]): boolean {
  switch (value?.toLowerCase()) {
    case 'accept-new': {
      return true
    }

    case 'no':
    case 'off': {
      warnings.push(
        `StrictHostKeyChecking ${value} in ${where}: transship never disables host key checking; unknown host keys are accepted once and recorded (accept-new), changed ones are refused`,
      )
      return true
    }

    default: {
      // yes, ask (there is nobody to ask) or unset
      return false
    }
  }
}

function identityAgent(
  value: string | undefined,
  env: NodeJS.ProcessEnv,
  expand: ExpandPath,
  where: string,
): string | undefined {
  if (value === undefined || value === 'SSH_AUTH_SOCK') return env.SSH_AUTH_SOCK || undefined
  if (value.toLowerCase() === 'none') return undefined
  if (value.startsWith('$')) return env[value.slice(1)] || undefined
  return expand(value, `IdentityAgent in ${where}`)
}

function noneOr(values: string[]): string[] {
  return values.length === 1 && values[0]?.toLowerCase() === 'none' ? [] : values
}

function localUserName(env: NodeJS.ProcessEnv): string {
  try {
    return os.userInfo().username
  } catch {
    return env.USER || env.LOGNAME || 'root'
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file)
    return true
  } catch {
    return false
  }
}

/** Reads an ssh_config file (missing: empty) with its `Include`s spliced in where they stand. */
async function loadConfig(file: string, home: string, warnings: string[]): Promise<SSHConfig> {
  const config = await parseConfigFile(file)
  if (!config) return SSHConfig.parse('')
  await spliceIncludes(config, path.join(home, '.ssh'), home, warnings, 0, false)
  return config
}

async function parseConfigFile(file: string): Promise<SSHConfig | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const {code} = error as NodeJS.ErrnoException
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw new UsageError(`cannot read the SSH config file ${file} (${code ?? String(error)})`, {
      cause: error,
      code: 'SSH_CONFIG_INVALID',
    })
  }

  try {
    return SSHConfig.parse(text)
  } catch (error) {
    throw new UsageError(`the SSH config file ${file} cannot be parsed: ${(error as Error).message}`, {
      cause: error,
      code: 'SSH_CONFIG_INVALID',
    })
  }
}

/**
 * Replaces each `Include` line by the lines of the files it names (relative paths are in ~/.ssh, `*` and `?`
 * match in the last path component, missing files are ignored, as OpenSSH does). Inside a Host or Match
 * block only the included plain options are kept.
 */
async function spliceIncludes(
  lines: Line[],
  sshDir: string,
  home: string,
  warnings: string[],
  depth: number,
  inSection: boolean,
): Promise<void> {
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]
    if (line?.type !== LineType.DIRECTIVE) continue
    if ('config' in line) {
      await spliceIncludes((line as Section).config, sshDir, home, warnings, depth, true)
      continue
    }

    if (line.param.toLowerCase() !== 'include') continue
    if (depth >= MAX_INCLUDE_DEPTH) {
      throw new UsageError(`SSH config Include nested deeper than ${MAX_INCLUDE_DEPTH} levels`, {
        code: 'SSH_CONFIG_INVALID',
      })
    }

    const patterns = Array.isArray(line.value) ? line.value.map((item) => item.val) : line.value.split(/\s+/)
    const included = await includedLines(patterns, sshDir, home, warnings, depth, inSection)
    lines.splice(index, 1, ...included)
    index += included.length - 1
  }
}

async function includedLines(
  patterns: string[],
  sshDir: string,
  home: string,
  warnings: string[],
  depth: number,
  inSection: boolean,
): Promise<Line[]> {
  const included: Line[] = []
  for (const pattern of patterns.filter(Boolean)) {
    for (const file of await includeFiles(pattern, sshDir, home)) {
      const config = await parseConfigFile(file)
      if (!config) continue
      await spliceIncludes(config, sshDir, home, warnings, depth + 1, inSection)
      if (inSection && config.some((child) => isSection(child))) {
        warnings.push(`${file}: Host/Match blocks of a file included inside a Host block are ignored`)
      }

      included.push(...(inSection ? config.filter((child) => !isSection(child)) : config))
    }
  }

  return included
}

function isSection(line: Line): boolean {
  return line.type === LineType.DIRECTIVE && 'config' in line
}

async function includeFiles(pattern: string, sshDir: string, home: string): Promise<string[]> {
  const expanded = pattern === '~' || pattern.startsWith('~/') ? path.join(home, pattern.slice(1)) : pattern
  const full = path.resolve(sshDir, expanded)
  const base = path.basename(full)
  if (!base.includes('*') && !base.includes('?')) return [full]
  const directory = path.dirname(full)
  const source = [...base]
    .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replaceAll(/[$()+.[\\\]^{|}]/g, String.raw`\$&`)))
    .join('')
  const matcher = new RegExp(`^${source}$`)
  let names: string[]
  try {
    names = await readdir(directory)
  } catch {
    return []
  }

  return names
    .filter((name) => !name.startsWith('.') && matcher.test(name))
    .sort()
    .map((name) => path.join(directory, name))
}
