/**
 * The core's part of the recipe schema (`version`, `hosts`, `registries`), merged with the sections that
 * installed plugins provide. Every object is strict: an unknown key is an error, with a did-you-mean.
 * `recipeErrorMap` turns zod's issues into short messages written for people editing YAML.
 */
import {ExitCode, HOST_ACCESSES, type SectionProvider, TransshipError, UsageError} from '@transship/kit'
import {describeValue, expectedNoun, literal, REQUIRED_MESSAGE, unknownKeyMessage} from '@transship/kit/yaml'
import {z} from 'zod'

import {parseEndpoint} from '../engine/endpoint.js'
import {parseDestination} from '../ssh/destination.js'

/** Recipe versions this core reads. */
export const SUPPORTED_VERSIONS = [1] as const

/** Sections transship knows of; each is handled by a plugin, and is an error when no plugin is installed. */
export const KNOWN_SECTIONS = ['images', 'rootfs', 'volumes', 'verify'] as const

/** Keys owned by the core; no plugin may claim them. */
export const CORE_KEYS = ['version', 'hosts', 'registries'] as const

/** The name of the host that is always defined: the local engine. */
export const LOCAL_HOST = 'local'

/** The remote engine socket used when a host with `ssh` names none. */
export const DEFAULT_REMOTE_SOCKET = '/var/run/docker.sock'

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]*$/
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/
/** `user@host[:port]`, `host`, an ~/.ssh/config alias, `[v6addr]:port`; `ssh://` may prefix it */
const SSH_TARGET_PATTERN = /^(?:ssh:\/\/)?(?:[^\s/:@]+@)?(?:\[[\dA-Fa-f:.]+\]|[^\s/:@[\]]+)(?::\d{1,5})?$/
/** `local`, `unix:///path` or an absolute socket path */
const ENGINE_PATTERN = /^(?:local|unix:\/\/\/.+|\/.+)$/
/** `host[:port][/path]`, optionally prefixed with https:// or http:// */
const REGISTRY_URL_PATTERN =
  /^(?:https?:\/\/)?(?:\[[\dA-Fa-f:.]+\]|[\dA-Za-z](?:[\dA-Za-z.-]*[\dA-Za-z])?)(?::\d{1,5})?(?:\/[\w./-]*)?$/

// ---------------------------------------------------------------------------------------------------------
// unknown keys: per-object hints (a specific message for a key, extra names to suggest)

interface UnknownKeyHints {
  /** a specific message for a key that is not allowed */
  messages?: Record<string, string>
  /** names to suggest besides the object's own keys */
  suggest?: readonly string[]
}

const unknownKeyHints = new WeakMap<object, UnknownKeyHints>()

function withUnknownKeyHints<T extends z.ZodType>(schema: T, hints: UnknownKeyHints): T {
  unknownKeyHints.set(schema, hints)
  return schema
}

// ---------------------------------------------------------------------------------------------------------
// messages

function plural(n: bigint | number, word: string): string {
  return `${n} ${word}${Number(n) === 1 ? '' : 's'}`
}

function shapeKeys(inst: unknown): string[] {
  const def = (inst as undefined | {_zod?: {def?: {shape?: Record<string, unknown>}}})?._zod?.def
  return def?.shape ? Object.keys(def.shape) : []
}

function unknownKeysMessage(iss: z.core.$ZodRawIssue<z.core.$ZodIssueUnrecognizedKeys>): string {
  const hints = iss.inst ? unknownKeyHints.get(iss.inst) : undefined
  const allowed = shapeKeys(iss.inst)
  const messages = hints?.messages ?? {}
  return iss.keys
    .map(
      (key) =>
        (Object.hasOwn(messages, key) ? messages[key] : undefined) ?? unknownKeyMessage(key, allowed, hints?.suggest),
    )
    .join('\n')
}

function unionMessage(iss: z.core.$ZodRawIssue<z.core.$ZodIssueInvalidUnion>): string {
  const {discriminator, options} = iss as {discriminator?: string; options?: unknown[]}
  if (discriminator === undefined || !Array.isArray(options)) return 'does not match any of the allowed forms'
  const input =
    iss.input !== null && typeof iss.input === 'object'
      ? (iss.input as Record<string, unknown>)[discriminator]
      : undefined
  return `expected one of ${options.map((v) => literal(v)).join(', ')}, got ${describeValue(input)}`
}

function sizeMessage(iss: z.core.$ZodRawIssue<z.core.$ZodIssueTooBig | z.core.$ZodIssueTooSmall>): string {
  const small = iss.code === 'too_small'
  const limit = small ? iss.minimum : iss.maximum
  switch (iss.origin) {
    case 'array':
    case 'set': {
      return small ? `needs at least ${plural(limit, 'item')}` : `takes at most ${plural(limit, 'item')}`
    }

    case 'string': {
      if (small && Number(limit) <= 1) return 'must not be empty'
      return `must be at ${small ? 'least' : 'most'} ${plural(limit, 'character')} long`
    }

    default: {
      if (iss.inclusive) return `must be at ${small ? 'least' : 'most'} ${String(limit)}`
      return `must be ${small ? 'more' : 'less'} than ${String(limit)}`
    }
  }
}

/**
 * The error map the loader parses recipes with. For unknown keys it gives one line per key, in the order
 * of the issue's `keys`, each `unknown key "x" (did you mean "y"?)` or the object's specific hint. A missing
 * value gets REQUIRED_MESSAGE, which the loader turns into `missing required key "x"`.
 */
export const recipeErrorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'unrecognized_keys') return unknownKeysMessage(iss)
  if (iss.input === undefined && iss.code !== 'custom') return REQUIRED_MESSAGE
  switch (iss.code) {
    case 'invalid_format': {
      if (iss.format === 'regex')
        return `${describeValue(iss.input)} does not match ${iss.pattern ?? 'the expected pattern'}`
      return `expected a valid ${iss.format}, got ${describeValue(iss.input)}`
    }

    case 'invalid_key': {
      return iss.issues[0]?.message ?? 'invalid key'
    }

    case 'invalid_type': {
      return `expected ${expectedNoun(iss.expected)}, got ${describeValue(iss.input)}`
    }

    case 'invalid_union': {
      return unionMessage(iss)
    }

    case 'invalid_value': {
      const values = iss.values.map((v) => literal(v))
      const expected = values.length === 1 ? values[0] : `one of ${values.join(', ')}`
      return `expected ${expected}, got ${describeValue(iss.input)}`
    }

    case 'not_multiple_of': {
      return `must be a multiple of ${String(iss.divisor)}`
    }

    case 'too_big':
    case 'too_small': {
      return sizeMessage(iss)
    }
  }

  // anything else: zod's own message
  return null
}

// ---------------------------------------------------------------------------------------------------------
// core schema

const hostName = z.string().regex(NAME_PATTERN, {
  error: 'host names use lowercase letters, digits, ".", "_" and "-", and start with a letter or digit',
})

const registryName = z.string().regex(NAME_PATTERN, {
  error: 'registry names use lowercase letters, digits, ".", "_" and "-", and start with a letter or digit',
})

const envName = (what: string) =>
  z
    .string()
    .regex(ENV_NAME_PATTERN, {
      error: (iss) =>
        `${describeValue(iss.input)} is not an environment variable name (letters, digits and "_", not starting with a digit)`,
    })
    .describe(what)

const path = (what: string) => z.string().min(1).describe(what)

/** The message of the host grammar's own parser (parseEndpoint, parseDestination), as an issue of this key. */
function grammarIssue(ctx: z.RefinementCtx, parse: () => unknown): void {
  try {
    parse()
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    ctx.addIssue({code: 'custom', message: error.message})
  }
}

const SSH_ONLY_KEYS = ['identityFile', 'knownHosts', 'acceptNewHostKey'] as const

export const hostSpecSchema = z
  .strictObject({
    acceptNewHostKey: z
      .boolean()
      .optional()
      .describe('trust and record the SSH host key on first connection when known_hosts has none (default false)'),
    access: z
      .enum(HOST_ACCESSES)
      .optional()
      .describe(
        'how volume data on this host is read and written: root (the SSH user is root), sudo (sudo -n, no password), engine (a helper container on its engine: for users of the docker group), or auto (default: the first of those that works)',
      ),
    description: z.string().optional().describe('free text, for people'),
    engine: z
      .string()
      .regex(ENGINE_PATTERN, {
        error: (iss) =>
          `expected "local", an absolute socket path such as /var/run/docker.sock, or unix:///path, got ${describeValue(iss.input)}`,
      })
      .superRefine((value, ctx) => {
        if (value !== 'local' && ENGINE_PATTERN.test(value)) grammarIssue(ctx, () => parseEndpoint(value, 'engine'))
      })
      .optional()
      .describe(
        'the Docker engine: without ssh, "local" (default: DOCKER_HOST or the current docker context), unix:///path or a socket path; with ssh, the remote socket path (default /var/run/docker.sock)',
      ),
    helperImage: z
      .string()
      .min(1)
      .optional()
      .describe('image of the helper container for access: engine (needs GNU tar; default debian:bookworm-slim)'),
    identityFile: path('private key file for SSH (default: ssh-agent and ~/.ssh/config)').optional(),
    knownHosts: path('known_hosts file that SSH host keys are checked against (default ~/.ssh/known_hosts)').optional(),
    ssh: z
      .string()
      .regex(SSH_TARGET_PATTERN, {
        error: (iss) => `expected user@host[:port] or an ~/.ssh/config host alias, got ${describeValue(iss.input)}`,
      })
      .superRefine((value, ctx) => {
        if (SSH_TARGET_PATTERN.test(value)) grammarIssue(ctx, () => parseDestination(value))
      })
      .optional()
      .describe('reach the engine over SSH: user@host[:port] or an ~/.ssh/config host alias'),
  })
  .superRefine((host, ctx) => {
    if (host.ssh === undefined) {
      for (const key of SSH_ONLY_KEYS) {
        if (host[key] !== undefined)
          ctx.addIssue({code: 'custom', message: `"${key}" is only used with "ssh"`, path: [key]})
      }
    } else if (host.engine === 'local') {
      ctx.addIssue({
        code: 'custom',
        message: `"local" is this machine's engine and cannot be reached over ssh: give the remote socket path (default ${DEFAULT_REMOTE_SOCKET})`,
        path: ['engine'],
      })
    }
  })
  .describe('a Docker engine: the local one, or one reached over SSH')

const SECRET_HINTS = {
  password: 'secrets are not written in recipes: name an environment variable with passwordEnv',
  token: 'secrets are not written in recipes: name an environment variable with tokenEnv',
}

const registryAuthSchema = withUnknownKeyHints(
  z
    .strictObject({
      passwordEnv: envName('environment variable holding the password').optional(),
      tokenEnv: envName('environment variable holding an identity token').optional(),
      username: z.string().min(1).optional().describe('user name'),
      usernameEnv: envName('environment variable holding the user name').optional(),
    })
    .superRefine((auth, ctx) => {
      if (auth.username !== undefined && auth.usernameEnv !== undefined) {
        ctx.addIssue({code: 'custom', message: 'give "username" or "usernameEnv", not both', path: ['usernameEnv']})
      }

      if (auth.passwordEnv !== undefined && auth.tokenEnv !== undefined) {
        ctx.addIssue({code: 'custom', message: 'give "passwordEnv" or "tokenEnv", not both', path: ['tokenEnv']})
      }
    })
    .describe('credentials, by environment variable name only (default: the Docker credential store and helpers)'),
  {messages: SECRET_HINTS},
)

export const registrySpecSchema = z
  .strictObject({
    auth: registryAuthSchema.optional(),
    ca: path('CA certificate file (PEM) the registry certificate is checked against').optional(),
    insecure: z.boolean().optional().describe('allow plain HTTP or an unverified certificate (default false)'),
    url: z
      .string()
      .regex(REGISTRY_URL_PATTERN, {
        error: (iss) =>
          typeof iss.input === 'string' && /^[a-z][\d+.a-z-]*:\/\//i.test(iss.input) && !/^https?:\/\//i.test(iss.input)
            ? `only https:// or http:// may prefix a registry address, got ${describeValue(iss.input)}`
            : `expected a registry address such as registry.example.com[:port][/path], got ${describeValue(iss.input)}`,
      })
      .describe('host[:port][/path]; https:// or http:// may prefix it'),
  })
  .describe('a container registry')

export type HostSpec = z.output<typeof hostSpecSchema>
export type RegistrySpec = z.output<typeof registrySpecSchema>
export type RegistryAuth = NonNullable<RegistrySpec['auth']>

/** The engine of a host: `local`, or for a host reached over SSH the remote socket path. */
export function hostEngine(host: HostSpec): string {
  if (host.engine !== undefined) return host.engine
  return host.ssh === undefined ? 'local' : DEFAULT_REMOTE_SOCKET
}

const versionSchema = z
  .literal(SUPPORTED_VERSIONS[0], {
    error(iss) {
      if (iss.input === undefined) return 'recipes start with `version: 1`'
      const supported = `supported versions: ${SUPPORTED_VERSIONS.join(', ')}`
      return typeof iss.input === 'number' || typeof iss.input === 'string'
        ? `${literal(iss.input)} is not supported (${supported})`
        : `expected a version number, got ${describeValue(iss.input)} (${supported})`
    },
  })
  .describe('the recipe format version')

/** What a valid recipe parses to: the core keys typed, plugin sections as their providers' output. */
export interface RecipeData {
  [section: string]: unknown
  hosts?: Record<string, HostSpec>
  registries?: Record<string, RegistrySpec>
  version: 1
}

function checkProviders(providers: readonly SectionProvider<unknown>[]): void {
  const owners = new Map<string, string>()
  for (const provider of providers) {
    if ((CORE_KEYS as readonly string[]).includes(provider.section)) {
      throw new TransshipError(
        'PLUGIN_CONFLICT',
        ExitCode.Failed,
        `plugin ${provider.plugin} claims "${provider.section}", a key of the transship core`,
      )
    }

    const owner = owners.get(provider.section)
    if (owner !== undefined) {
      throw new TransshipError(
        'PLUGIN_CONFLICT',
        ExitCode.Failed,
        `plugins ${owner} and ${provider.plugin} both handle section "${provider.section}"`,
        {suggestions: ['uninstall one of them (transship plugins uninstall <name>)']},
      )
    }

    owners.set(provider.section, provider.plugin)
  }
}

function buildSchema(providers: readonly SectionProvider<unknown>[]) {
  checkProviders(providers)
  const shape: Record<string, z.ZodType> = {
    version: versionSchema,
    hosts: z
      .record(hostName, hostSpecSchema)
      .optional()
      .describe(`the Docker engines the recipe works on, by name; "${LOCAL_HOST}" is always defined`),
    registries: z.record(registryName, registrySpecSchema).optional().describe('container registries, by name'),
  }
  for (const provider of providers) {
    shape[provider.section] = (provider.schema as z.ZodType).optional()
  }

  const installed = new Set(providers.map((p) => p.section))
  const missing = KNOWN_SECTIONS.filter((section) => !installed.has(section))
  return withUnknownKeyHints(z.strictObject(shape), {
    messages: Object.fromEntries(
      missing.map((section) => [section, `no installed plugin handles section "${section}"`]),
    ),
    suggest: missing,
  })
}

/** The whole recipe schema: the core keys and one optional key per installed plugin section. */
export function recipeSchema(providers: readonly SectionProvider<unknown>[]): z.ZodType<RecipeData> {
  return buildSchema(providers) as unknown as z.ZodType<RecipeData>
}

export interface RecipeJsonSchemaOptions {
  /** the `$id` of the schema, e.g. the URL it is published at */
  id?: string
}

/** The recipe schema as JSON Schema (draft-07, which YAML editors understand), for `# yaml-language-server: $schema=`. */
export function recipeJsonSchema(
  providers: readonly SectionProvider<unknown>[],
  options: RecipeJsonSchemaOptions = {},
): Record<string, unknown> {
  const generated = z.toJSONSchema(buildSchema(providers), {
    io: 'input',
    target: 'draft-07',
    unrepresentable: 'any',
  }) as Record<string, unknown>
  const {$schema, ...rest} = generated
  return {
    $schema,
    ...(options.id === undefined ? {} : {$id: options.id}),
    title: 'transship recipe',
    ...rest,
  }
}
