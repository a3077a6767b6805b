import type {RegistryAuthSpec} from '@transship/kit'

import {AuthError, UsageError} from '@transship/kit'
import {spawn} from 'node:child_process'
import {readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {RegistryCredentials} from './types.js'

import {isDockerHub} from './endpoint.js'

interface CredentialOptions {
  /** where `config.json` is; default `$DOCKER_CONFIG`, else `~/.docker` */
  dockerConfigDir?: string
  /** the environment the recipe's variables (and credential helpers' PATH) come from; default process.env */
  env?: NodeJS.ProcessEnv
}

/** The key Docker Hub's credentials are stored under by `docker login`. */
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/'
const HELPER_TIMEOUT_MS = 30_000
/** the credential helper protocol's "nothing stored" answer */
const NOT_FOUND = 'credentials not found'

interface DockerConfig {
  auths?: Record<string, {auth?: string; identitytoken?: string; password?: string; username?: string}>
  credHelpers?: Record<string, string>
  credsStore?: string
}

/**
 * The credentials for the registry `host`: the variables the recipe names, else what `docker login` stored
 * (credential helpers, the credentials store, `auths` in config.json); undefined for anonymous access.
 */
export async function resolveCredentials(
  host: string,
  spec?: RegistryAuthSpec,
  options: CredentialOptions = {},
): Promise<RegistryCredentials | undefined> {
  const env = options.env ?? process.env
  if (spec && (spec.tokenEnv || spec.passwordEnv || spec.username || spec.usernameEnv)) {
    return fromRecipe(host, spec, env)
  }

  const dir = options.dockerConfigDir ?? env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker')
  return fromDockerConfig(host, path.join(dir, 'config.json'), env)
}

/** What `docker login` stored: a credential helper for the host, else the credentials store, else `auths`. */
async function fromDockerConfig(
  host: string,
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<RegistryCredentials | undefined> {
  const config = await readDockerConfig(file)
  if (!config) return undefined

  const keys = serverKeys(host)
  const helper = findKey(config.credHelpers, keys)
  if (helper !== undefined && config.credHelpers?.[helper]) {
    const found = await runHelper(config.credHelpers[helper], serverUrl(host), env, file)
    if (found) return found
  } else if (config.credsStore) {
    const found = await runHelper(config.credsStore, serverUrl(host), env, file)
    if (found) return found
  }

  const key = findKey(config.auths, keys)
  const entry = key === undefined ? undefined : config.auths?.[key]
  if (!entry) return undefined
  if (entry.identitytoken) return {identityToken: entry.identitytoken}
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon > 0) return {password: decoded.slice(colon + 1), username: decoded.slice(0, colon)}
    throw new UsageError(`the stored login for ${host} in ${file} is malformed`, {
      code: 'REGISTRY_DOCKER_CONFIG_INVALID',
      details: {file, host},
      suggestions: [`log in again: docker login ${host}`],
    })
  }

  if (entry.username && entry.password) return {password: entry.password, username: entry.username}
  return undefined
}

function fromRecipe(host: string, spec: RegistryAuthSpec, env: NodeJS.ProcessEnv): RegistryCredentials {
  const variable = (name: string): string => {
    const value = env[name]
    if (value) return value
    throw new UsageError(`the variable ${name}, named in the recipe's auth for registry ${host}, is not set`, {
      code: 'REGISTRY_CREDENTIALS_MISSING',
      details: {host, variable: name},
      suggestions: [`set ${name} in the environment`],
    })
  }

  if (spec.tokenEnv) return {identityToken: variable(spec.tokenEnv)}
  if (!spec.passwordEnv || (!spec.username && !spec.usernameEnv)) {
    throw new UsageError(`the recipe's auth for registry ${host} needs a user name and passwordEnv (or tokenEnv)`, {
      code: 'REGISTRY_CREDENTIALS_MISSING',
      details: {host},
      suggestions: ['give username (or usernameEnv) and passwordEnv, or tokenEnv'],
    })
  }

  const username = spec.usernameEnv ? variable(spec.usernameEnv) : (spec.username ?? '')
  return {password: variable(spec.passwordEnv), username}
}

async function readDockerConfig(file: string): Promise<DockerConfig | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {
      cause: error,
      code: 'REGISTRY_DOCKER_CONFIG_INVALID',
      details: {file},
    })
  }

  try {
    const parsed: unknown = JSON.parse(text)
    return typeof parsed === 'object' && parsed !== null ? (parsed as DockerConfig) : undefined
  } catch {
    // the parser's message may quote the file's content, which holds secrets: not passed on
    throw new UsageError(`${file} is not valid JSON`, {code: 'REGISTRY_DOCKER_CONFIG_INVALID', details: {file}})
  }
}

/** The names a registry's login may be stored under, normalised as Docker does (no scheme, no path). */
function serverKeys(host: string): Set<string> {
  const lower = host.toLowerCase()
  return isDockerHub(lower) ? new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']) : new Set([lower])
}

function findKey(record: Record<string, unknown> | undefined, keys: Set<string>): string | undefined {
  if (!record) return undefined
  return Object.keys(record).find((key) => keys.has(normaliseKey(key)))
}

function normaliseKey(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, '')
    .split('/')[0]!
    .toLowerCase()
}

function serverUrl(host: string): string {
  return isDockerHub(host) ? DOCKER_HUB_SERVER : host
}

/** Runs `docker-credential-<helper> get` (the credential helper protocol); undefined when it has nothing. */
async function runHelper(
  helper: string,
  server: string,
  env: NodeJS.ProcessEnv,
  file: string,
): Promise<RegistryCredentials | undefined> {
  const program = `docker-credential-${helper}`
  const failed = (why: string, cause?: unknown): AuthError =>
    new AuthError('REGISTRY_CREDENTIAL_HELPER_FAILED', `${program} (named in ${file}) failed for ${server}: ${why}`, {
      cause,
      details: {helper: program, server},
      suggestions: [`check the helper with: echo ${server} | ${program} get`, `or log in again: docker login`],
    })

  const {code, stderr, stdout} = await new Promise<{code: null | number; stderr: string; stdout: string}>(
    (resolve, reject) => {
      const child = spawn(program, ['get'], {env, stdio: ['pipe', 'pipe', 'pipe'], timeout: HELPER_TIMEOUT_MS})
      const out: Buffer[] = []
      const err: Buffer[] = []
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
      child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
      child.on('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'ENOENT'
            ? failed(`${program} is not installed (or not on PATH)`, error)
            : failed(error.message),
        ),
      )
      child.on('close', (exit) =>
        resolve({code: exit, stderr: Buffer.concat(err).toString('utf8'), stdout: Buffer.concat(out).toString('utf8')}),
      )
      // a helper that exits before reading stdin makes the write fail: its exit status tells what happened
      child.stdin.on('error', () => {})
      child.stdin.end(server)
    },
  )

  if (code !== 0) {
    // helpers print their error on stdout (the protocol) or stderr
    if (`${stdout}\n${stderr}`.toLowerCase().includes(NOT_FOUND)) return undefined
    const firstLine = (stderr.trim() || stdout.trim()).split('\n')[0]?.slice(0, 200) ?? ''
    throw failed(`exit status ${code ?? 'killed'}${firstLine ? `: ${firstLine}` : ''}`)
  }

  let reply: {Secret?: unknown; Username?: unknown}
  try {
    reply = JSON.parse(stdout) as {Secret?: unknown; Username?: unknown}
  } catch {
    // the output holds the secret: never quoted
    throw failed('its output is not JSON')
  }

  if (typeof reply.Secret !== 'string' || !reply.Secret) return undefined
  if (reply.Username === '<token>') return {identityToken: reply.Secret}
  return {password: reply.Secret, username: typeof reply.Username === 'string' ? reply.Username : ''}
}
