import type {IncomingHttpHeaders} from 'node:http'

import {AuthError, ExitCode, TransshipError} from '@transship/kit'

import type {RegistryCredentials} from './types.js'

/** One challenge of a `WWW-Authenticate` header: its scheme (lower case) and parameters. */
interface AuthChallenge {
  params: Record<string, string>
  scheme: string
}

/**
 * Parses `WWW-Authenticate`: one or more challenges, each a scheme then `key=value` or `key="quoted, value"`
 * parameters separated by commas (RFC 9110).
 */
export function parseChallenges(header?: string | string[]): AuthChallenge[] {
  if (header === undefined) return []
  if (Array.isArray(header)) return header.flatMap((h) => parseChallenges(h))
  const challenges: AuthChallenge[] = []
  const scanner = new Scanner(header)
  let current: AuthChallenge | undefined
  while (!scanner.done()) {
    scanner.skip(/[\s,]/)
    const name = scanner.token()
    if (!name) {
      scanner.next() // a stray character: ignored
      continue
    }

    scanner.skip(/\s/)
    if (scanner.peek() === '=' && current) {
      scanner.next()
      scanner.skip(/\s/)
      current.params[name.toLowerCase()] = scanner.value()
      continue
    }

    // a name not followed by `=` starts the next challenge
    current = {params: {}, scheme: name.toLowerCase()}
    challenges.push(current)
    scanner.token68()
  }

  return challenges
}

class Scanner {
  private i = 0

  constructor(private readonly text: string) {}

  done(): boolean {
    return this.i >= this.text.length
  }

  next(): void {
    this.i++
  }

  peek(): string {
    return this.text[this.i] ?? ''
  }

  skip(pattern: RegExp): void {
    while (!this.done() && pattern.test(this.peek())) this.i++
  }

  token(): string {
    const start = this.i
    this.skip(/[\w!#$%&'*+.^`|~-]/)
    return this.text.slice(start, this.i)
  }

  /** a token68 credential (`Basic abc==`) right after a scheme: skipped, the challenge keeps no parameters */
  token68(): void {
    const rest = this.text.slice(this.i)
    if (/^[\w+./~-]/.test(rest) && !/^[\w!#$%&'*+.^`|~-]+\s*=[^=]/.test(rest)) {
      this.token()
      this.skip(/=/)
    }
  }

  /** a quoted string (with escapes), or leniently any text up to the next comma (some servers leave URLs unquoted) */
  value(): string {
    const start = this.i
    if (this.peek() !== '"') {
      this.skip(/[^\s,]/)
      return this.text.slice(start, this.i)
    }

    let value = ''
    this.i++
    while (!this.done() && this.peek() !== '"') {
      if (this.peek() === '\\') this.i++
      value += this.peek()
      this.i++
    }

    this.i++
    return value
  }
}

/** What went into a request's Authorization header, to judge a 401 reply. */
type SentAuth = {cached: boolean; credentialed: boolean; key: string; kind: 'bearer'} | {kind: 'basic'} | {kind: 'none'}

/** Why a request is made: the token scopes it needs and what to name in errors. */
export interface AuthContext {
  action: 'catalog' | 'ping' | 'pull' | 'push'
  repository?: string
  scopes: string[]
  signal?: AbortSignal
}

/** A minimal response, as the client's transport gives it. */
interface TokenResponse {
  body: {dump(): Promise<void>; text(): Promise<string>}
  headers: IncomingHttpHeaders
  statusCode: number
}

type TokenTransport = (
  url: string,
  init: {body?: string; headers: Record<string, string>; method: 'GET' | 'POST'; signal?: AbortSignal},
) => Promise<TokenResponse>

interface AuthenticatorOptions {
  credentials?: () => Promise<RegistryCredentials | undefined>
  /** host as the user logs in to it (`docker login HOST`) */
  host: string
  log?: {debug(message: string): void}
  /** the registry as the user names it */
  name: string
  send: TokenTransport
}

interface Token {
  credentialed: boolean
  expires: number
  value: string
}

/** Default token lifetime when the token server does not say (the token specification's 60 s). */
const DEFAULT_EXPIRES_S = 60
/** tokens are renewed this long before they expire, so one does not lapse between check and use */
const EXPIRY_MARGIN_MS = 5000

/**
 * Authentication for one registry: learns the scheme from the first 401, then sends basic credentials, or
 * bearer tokens fetched from the challenge's realm per scope and cached until they expire.
 */
export class RegistryAuthenticator {
  private challenge: AuthChallenge | undefined
  private credentials: Promise<RegistryCredentials | undefined> | undefined
  private readonly knownSecrets = new Set<string>()
  private readonly pending = new Map<string, Promise<Token>>()
  private readonly tokens = new Map<string, Token>()

  constructor(private readonly options: AuthenticatorOptions) {}

  /** The Authorization header for a request in `context` (none until a 401 named a scheme). */
  async authorize(context: AuthContext): Promise<{header?: string; sent: SentAuth}> {
    const {challenge} = this
    if (!challenge) return {sent: {kind: 'none'}}
    if (challenge.scheme === 'basic') {
      const credentials = await this.loadCredentials()
      if (!credentials || !('password' in credentials)) return {sent: {kind: 'none'}}
      return {header: basicAuthorization(credentials), sent: {kind: 'basic'}}
    }

    const key = [...new Set(context.scopes)].sort().join(' ')
    const cached = this.tokens.get(key)
    if (cached && cached.expires > Date.now()) {
      return {
        header: `Bearer ${cached.value}`,
        sent: {cached: true, credentialed: cached.credentialed, key, kind: 'bearer'},
      }
    }

    let pending = this.pending.get(key)
    if (!pending) {
      pending = this.fetchToken(challenge, context).finally(() => this.pending.delete(key))
      this.pending.set(key, pending)
    }

    const token = await pending
    this.tokens.set(key, token)
    return {
      header: `Bearer ${token.value}`,
      sent: {cached: false, credentialed: token.credentialed, key, kind: 'bearer'},
    }
  }

  /**
   * A request got 401: learns the challenge and returns when a retry may succeed (new credentials or a new
   * token will be sent), else throws the AuthError that says what is wrong.
   */
  async unauthorized(headers: IncomingHttpHeaders, sent: SentAuth, context: AuthContext): Promise<void> {
    const challenges = parseChallenges(headers['www-authenticate'])
    const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic')
    if (challenge) this.challenge = challenge
    switch (sent.kind) {
      case 'none': {
        if (!challenge) throw this.required(context)
        if (challenge.scheme === 'basic') {
          const credentials = await this.loadCredentials()
          if (!credentials || !('password' in credentials)) throw this.required(context)
        }

        return
      }

      case 'basic': {
        throw this.refused()
      }

      case 'bearer': {
        this.tokens.delete(sent.key)
        // a cached token may have been revoked or expired early: one fresh token is worth a try
        if (sent.cached) return
        if (!sent.credentialed) throw this.required(context)
        if (challenge?.params.error === 'insufficient_scope') throw this.denied(context)
        throw this.refused()
      }
    }
  }

  /** The AuthError for a 403: the account may not do `action` on the repository. */
  denied(context: AuthContext): AuthError {
    const what = context.repository ? `${context.action} ${context.repository}` : context.action
    return new AuthError('REGISTRY_DENIED', `the registry ${this.options.name} denied access to ${what}`, {
      details: {action: context.action, registry: this.options.name, repository: context.repository},
      suggestions: [
        context.repository
          ? `check that ${context.repository} exists and that the account may ${context.action} it`
          : `check that the account may ${context.action} on this registry`,
      ],
    })
  }

  /** Replaces every credential or token this client knows of in `text` (registry replies may echo them). */
  redact(text: string): string {
    let result = text
    for (const secret of this.knownSecrets) if (secret.length >= 4) result = result.split(secret).join('***')
    return result
  }

  private async fetchToken(challenge: AuthChallenge, context: AuthContext): Promise<Token> {
    const url = this.realmUrl(challenge)
    const credentials = await this.loadCredentials()
    const response = await this.requestToken(url, challenge.params.service, credentials, context)
    const status = response.statusCode
    if (status === 401 || status === 403) {
      await response.body.dump()
      throw status === 403 ? this.denied(context) : credentials ? this.refused() : this.required(context)
    }

    const text = await response.body.text()
    let reply: {access_token?: unknown; expires_in?: unknown; token?: unknown} = {}
    try {
      reply = JSON.parse(text) as typeof reply
    } catch {
      // not JSON: reported below without quoting it (it may be a token)
    }

    const value = typeof reply.token === 'string' && reply.token ? reply.token : reply.access_token
    if (status !== 200 || typeof value !== 'string' || !value) {
      throw new TransshipError(
        'REGISTRY_AUTH_FAILED',
        ExitCode.Failed,
        `the token server of ${this.options.name} (${url.host}) answered ${status} without a token`,
        {details: {registry: this.options.name, status}},
      )
    }

    this.knownSecrets.add(value)
    const lifetime = typeof reply.expires_in === 'number' && reply.expires_in > 0 ? reply.expires_in : DEFAULT_EXPIRES_S
    return {
      credentialed: credentials !== undefined,
      expires: Date.now() + Math.max(lifetime * 1000 - EXPIRY_MARGIN_MS, 1000),
      value,
    }
  }

  /** GET with basic credentials (or none), or the OAuth2 refresh-token POST for an identity token. */
  private async requestToken(
    url: URL,
    service: string | undefined,
    credentials: RegistryCredentials | undefined,
    context: AuthContext,
  ): Promise<TokenResponse> {
    const scopes = [...new Set(context.scopes)]
    const what = `${this.options.name}: token for ${scopes.join(' ') || 'no scope'} from ${url.origin}${url.pathname}`
    if (credentials && 'identityToken' in credentials) {
      const form = new URLSearchParams([
        ['grant_type', 'refresh_token'],
        ['refresh_token', credentials.identityToken],
        ['client_id', 'transship'],
      ])
      if (service) form.set('service', service)
      if (scopes.length > 0) form.set('scope', scopes.join(' '))
      this.options.log?.debug(`registry ${what} (refresh token)`)
      return this.options.send(url.href, {
        body: form.toString(),
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        method: 'POST',
        signal: context.signal,
      })
    }

    if (service) url.searchParams.set('service', service)
    for (const scope of scopes) url.searchParams.append('scope', scope)
    const headers: Record<string, string> = {}
    if (credentials) {
      url.searchParams.set('account', credentials.username)
      headers.authorization = basicAuthorization(credentials)
    }

    this.options.log?.debug(`registry ${what}${credentials ? '' : ' (anonymous)'}`)
    return this.options.send(url.href, {headers, method: 'GET', signal: context.signal})
  }

  private realmUrl(challenge: AuthChallenge): URL {
    try {
      return new URL(challenge.params.realm ?? '')
    } catch {
      throw new TransshipError(
        'REGISTRY_AUTH_INVALID',
        ExitCode.Failed,
        `the registry ${this.options.name} asked for a bearer token without a valid realm to get it from`,
        {details: {registry: this.options.name}},
      )
    }
  }

  private async loadCredentials(): Promise<RegistryCredentials | undefined> {
    this.credentials ??= (async () => {
      const credentials = await this.options.credentials?.()
      if (credentials && 'identityToken' in credentials) this.knownSecrets.add(credentials.identityToken)
      if (credentials && 'password' in credentials) {
        this.knownSecrets.add(credentials.password)
        this.knownSecrets.add(basicAuthorization(credentials).slice('Basic '.length))
      }

      return credentials
    })()
    try {
      return await this.credentials
    } catch (error) {
      // a missing variable is reported each time, not cached as "anonymous"
      this.credentials = undefined
      throw error
    }
  }

  private refused(): AuthError {
    const {host, name} = this.options
    return new AuthError('REGISTRY_UNAUTHORIZED', `the registry ${name} refused the credentials`, {
      details: {registry: name},
      suggestions: [`check the user name and password: docker login ${host}, or the variables named in the recipe`],
    })
  }

  private required(context: AuthContext): AuthError {
    const {host, name} = this.options
    const what = context.repository ? ` to ${context.action} ${context.repository}` : ''
    return new AuthError('REGISTRY_AUTH_REQUIRED', `the registry ${name} requires authentication${what}`, {
      details: {action: context.action, registry: name, repository: context.repository},
      suggestions: [
        `log in: docker login ${host}`,
        'or give auth for this registry in the recipe (usernameEnv and passwordEnv, or tokenEnv)',
      ],
    })
  }
}

function basicAuthorization(credentials: {password: string; username: string}): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
}
