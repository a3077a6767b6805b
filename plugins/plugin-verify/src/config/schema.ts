/**
 * The zod schema of a verification config (container-structure-test's v2 schema plus transship's
 * extensions, see types.ts). Every object is strict: an unknown key is an error, with a did-you-mean.
 * Every regex field must compile; `verifyErrorMap` words zod's issues for people editing YAML.
 */
import {describeValue, expectedNoun, literal, REQUIRED_MESSAGE, unknownKeyMessage} from '@transship/kit/yaml'
import {z} from 'zod'

import type {VerifyConfig} from './types.js'

/** The only schemaVersion accepted: container-structure-test's v2 schema. */
export const SCHEMA_VERSION = '2.0.0'

// ---------------------------------------------------------------------------------------------------------
// regexes

/** A leading Go (RE2) flag group such as `(?i)` or `(?ms)`: JavaScript has no inline flags, so they become flags. */
const GO_FLAGS = /^\(\?([ims]+)\)/

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: String.raw`\x00-\x7F`,
  blank: String.raw`\t `,
  cntrl: String.raw`\x00-\x1F\x7F`,
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@[-`{-~',
  space: String.raw`\t\n\v\f\r `,
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
}

/**
 * Compile a pattern of a config file with Go's (RE2) meaning, as container-structure-test matches them: unanchored,
 * `^` and `$` at the start and end of the whole text (unless `(?m)`), `.` not matching a newline (unless `(?s)`).
 * The RE2 spellings JavaScript lacks are translated: leading `(?i)`, `(?s)`, `(?m)` flags, `\A`, `\z`,
 * `(?P<name>…)` and `[[:alpha:]]`-style classes. Throws a SyntaxError for an invalid pattern.
 */
export function compilePattern(source: string): RegExp {
  const flags = GO_FLAGS.exec(source)
  const body = flags === null ? source : source.slice(flags[0].length)
  const translated = body
    .replaceAll(/(?<!\\)((?:\\\\)*)\\A/g, String.raw`$1(?<![\s\S])`)
    .replaceAll(/(?<!\\)((?:\\\\)*)\\z/g, String.raw`$1(?![\s\S])`)
    .replaceAll('(?P<', '(?<')
    .replaceAll(/\[:(\w+):\]/g, (match, name: string) => POSIX_CLASSES[name] ?? match)
  return new RegExp(translated, flags === null ? '' : [...new Set(flags[1])].join(''))
}

/** Why a pattern does not compile, or undefined when it does. */
export function patternError(source: string): string | undefined {
  try {
    compilePattern(source)
    return undefined
  } catch (error) {
    // V8: "Invalid regular expression: /(unclosed/: Unterminated group"; keep the reason
    const reason = (error as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')
    return `invalid regular expression ${JSON.stringify(source)}: ${reason}`
  }
}

/** A string that must compile as a regular expression. */
function pattern() {
  return z.string().superRefine((value, ctx) => {
    const error = patternError(value)
    if (error !== undefined) ctx.addIssue({code: 'custom', input: value, message: error})
  })
}

const patterns = (description: string) => z.array(pattern()).describe(description)

// ---------------------------------------------------------------------------------------------------------
// values

/**
 * Go's FileMode.String(): the type and special-bit letters (`dalTLDpSugct?`, in that order, or `-` for a
 * regular file) then `rwxrwxrwx`. The ls spellings of setuid, setgid and sticky (`-rwsr-xr-x`,
 * `drwxrwxrwt`) are accepted too.
 */
export const PERMISSIONS_PATTERN =
  /^(?:-|(?=[dalTLDpSugct?])d?a?l?T?L?D?p?S?u?g?c?t?\??)[r-][w-][xsS-][r-][w-][xsS-][r-][w-][xtT-]$/

const SHA256_PATTERN = /^[\dA-Fa-f]{64}$/

const nonEmpty = (description: string) => z.string().min(1).describe(description)

const seconds = (description: string) =>
  z
    .number()
    .positive({error: (iss) => `must be a positive number of seconds, got ${describeValue(iss.input)}`})
    .describe(description)

const command = z.array(z.string()).min(1, {error: 'a command needs at least its program'})

const envVarSchema = z
  .strictObject({
    isRegex: z.boolean().optional().describe('`value` is a regular expression (metadata envVars and labels)'),
    key: nonEmpty('the variable or label name'),
    value: z.string().default('').describe('"" when omitted'),
  })
  .superRefine(
    (env, ctx) => {
      if (env.isRegex !== true || typeof env.value !== 'string') return
      const error = patternError(env.value)
      if (error !== undefined) ctx.addIssue({code: 'custom', input: env.value, message: error, path: ['value']})
    },
    {when: (payload) => isPlainMap(payload.value)},
  )

/** A network mode as Docker takes it: none, host, bridge, default, container:ID or a network's name. */
const network = (description: string) =>
  z
    .string()
    .regex(/^[\w.:-]+$/, {
      error: (iss) =>
        `expected a network: none, host, bridge, default, container:NAME or a network's name, got ${describeValue(iss.input)}`,
    })
    .describe(description)

const commandTestSchema = z.strictObject({
  args: z.array(z.string()).optional(),
  command: nonEmpty('the program to run (the image entrypoint is overridden)'),
  envVars: z.array(envVarSchema).optional(),
  excludedError: patterns('regexes stderr must not match').optional(),
  excludedOutput: patterns('regexes stdout must not match').optional(),
  exitCode: z.number().int().optional(),
  expectedError: patterns('regexes stderr must match').optional(),
  expectedOutput: patterns('regexes stdout must match').optional(),
  name: nonEmpty('the test name'),
  network: network(
    "the network the command joins (default: containerRunOptions.network, else the engine's)",
  ).optional(),
  setup: z
    .array(command)
    .optional()
    .describe('commands run before the test, each in its own container, committed (exit codes not checked, as CST)'),
  teardown: z.array(command).optional().describe('commands run after the test (a failure is a warning, as CST)'),
  timeout: seconds('seconds (default 60) before the command is killed and the test fails').optional(),
})

const fileExistenceTestSchema = z.strictObject({
  gid: z.number().int().min(-1).optional().describe('owning group id (-1: unchecked)'),
  isExecutableBy: z.enum(['any', 'group', 'other', 'owner']).optional(),
  linkTarget: z.string().optional().describe('a symlink: the target it must point at'),
  name: nonEmpty('the test name'),
  path: nonEmpty('the path inside the image'),
  permissions: z
    .string()
    .regex(PERMISSIONS_PATTERN, {
      error: (iss) =>
        `expected a mode as Go's FileMode.String() writes it, such as -rwxr-xr-x, drwxr-xr-x or Lrwxrwxrwx, got ${describeValue(iss.input)}`,
    })
    .optional()
    .describe("Go's FileMode.String(), e.g. -rwxr-xr-x, drwxr-xr-x, Lrwxrwxrwx"),
  sha256: z
    .string()
    .regex(SHA256_PATTERN, {
      error: (iss) => `expected a sha256 as 64 hexadecimal digits, got ${describeValue(iss.input)}`,
    })
    .optional()
    .describe('hex sha256 of the content'),
  shouldExist: z.boolean().optional().describe('default true'),
  uid: z.number().int().min(-1).optional().describe('owning user id (-1: unchecked)'),
})

const fileContentTestSchema = z.strictObject({
  excludedContents: patterns('regexes the content must not match').optional(),
  expectedContents: patterns('regexes the content must match').optional(),
  name: nonEmpty('the test name'),
  path: nonEmpty('the path inside the image'),
})

const metadataTestSchema = z.strictObject({
  cmd: z.array(z.string()).optional().describe('omitted: unchecked; [] : must be empty'),
  entrypoint: z.array(z.string()).optional().describe('omitted: unchecked; [] : must be empty'),
  envVars: z.array(envVarSchema).optional(),
  exposedPorts: z.array(z.string()).optional(),
  healthcheck: z.boolean().optional().describe('the image has a HEALTHCHECK'),
  labels: z.array(envVarSchema).optional(),
  unboundEnvVars: z
    .array(z.preprocess((item) => (typeof item === 'string' ? {key: item} : item), envVarSchema))
    .optional()
    .describe('variables that must not be set: `- key: NAME` (only the key counts)'),
  unexposedPorts: z.array(z.string()).optional(),
  unmountedVolumes: z.array(z.string()).optional(),
  user: z.string().optional().describe('"": unchecked'),
  volumes: z.array(z.string()).optional(),
  workdir: z.string().optional().describe('"": unchecked'),
})

const WAIT_FOR = ['log', 'healthy', 'port'] as const

const waitTestSchema = z
  .strictObject({
    args: z.array(z.string()).optional().describe("arguments replacing the image's CMD"),
    envVars: z.array(envVarSchema).optional(),
    healthy: z.boolean().optional().describe("the container's healthcheck reports healthy"),
    log: pattern().optional().describe('a regex a log line (stdout or stderr) must match'),
    name: nonEmpty('the test name'),
    network: network(
      "the network the container joins (default: containerRunOptions.network, else the engine's)",
    ).optional(),
    port: z
      .number()
      .int()
      .min(1)
      .max(65_535)
      .optional()
      .describe('a TCP port inside the container accepts connections'),
    timeout: seconds('seconds (default 60)').optional(),
  })
  .superRefine(
    (test, ctx) => {
      if (test.healthy === false) {
        ctx.addIssue({
          code: 'custom',
          input: false,
          message: 'waits for nothing: use `healthy: true`, or wait for a log line or a port instead',
          path: ['healthy'],
        })
        return
      }

      const given = WAIT_FOR.filter((key) => (key === 'healthy' ? test.healthy === true : test[key] !== undefined))
      if (given.length === 1) return
      ctx.addIssue({
        code: 'custom',
        input: test,
        message:
          given.length === 0
            ? 'give what to wait for: one of log, healthy or port'
            : `wait for one thing only: give one of ${given.join(', ')}, not ${given.length === 2 ? 'both' : 'all'}`,
      })
    },
    {when: (payload) => isPlainMap(payload.value)},
  )

export const containerRunOptionsSchema = z.strictObject({
  allocateTty: z.boolean().optional().describe('run commands with a TTY (their output then all comes as stdout)'),
  bindMounts: z
    .array(
      z.string().regex(/^[^:]+:\/[^:]*(:[a-z,]+)?$/, {
        error: (iss) => `expected SOURCE:/TARGET[:OPTIONS] (as docker run -v), got ${describeValue(iss.input)}`,
      }),
    )
    .optional()
    .describe("paths of the engine's host (or volumes) mounted into the containers, as docker run -v"),
  capabilities: z.array(nonEmpty('a Linux capability')).optional().describe('Linux capabilities to add (--cap-add)'),
  envFile: z
    .string()
    .min(1)
    .optional()
    .describe('a dotenv file (relative: to the working directory, else to the test file) added to the environment'),
  envVars: z.array(z.string()).optional().describe("names of variables passed through from this process's environment"),
  network: network("the network containers join (default: the engine's default network)").optional(),
  privileged: z.boolean().optional(),
  user: z.string().optional(),
})

const licenseTestSchema = z.strictObject({
  debian: z.boolean().optional().describe('scan /usr/share/doc/*/copyright'),
  files: z.array(z.string()).optional(),
})

export const verifyConfigSchema = z
  .strictObject({
    commandTests: z.array(commandTestSchema).optional(),
    containerRunOptions: containerRunOptionsSchema.optional(),
    fileContentTests: z.array(fileContentTestSchema).optional(),
    fileExistenceTests: z.array(fileExistenceTestSchema).optional(),
    globalEnvVars: z.array(envVarSchema).optional(),
    licenseTests: z.array(licenseTestSchema).optional(),
    metadataTest: metadataTestSchema.optional(),
    schemaVersion: z.literal(SCHEMA_VERSION, {
      error: (iss) =>
        iss.input === undefined
          ? undefined
          : `expected "${SCHEMA_VERSION}" (the container-structure-test v2 schema), got ${describeValue(iss.input)}`,
    }),
    waitTests: z.array(waitTestSchema).optional(),
  })
  .describe('transship verification config: container-structure-test v2 schema, plus extensions')

/** The config's JSON Schema, for editors (e.g. yaml-language-server's `# yaml-language-server: $schema=`). */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(verifyConfigSchema, {io: 'input', unrepresentable: 'any'}) as Record<string, unknown>
}

// the schema and types.ts describe the same thing (schemaVersion is narrowed to the one version accepted)
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
type Parsed = z.output<typeof verifyConfigSchema>
type Assert<T extends true> = T
/** Compiles only while the schema's output is exactly VerifyConfig (with schemaVersion "2.0.0"). */
export type SchemaMatchesTypes = Assert<
  [
    Same<Parsed['schemaVersion'], typeof SCHEMA_VERSION>,
    Same<Omit<Parsed, 'schemaVersion'>, Omit<VerifyConfig, 'schemaVersion'>>,
  ] extends [true, true]
    ? true
    : false
>

// ---------------------------------------------------------------------------------------------------------
// messages

function isPlainMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function shapeKeys(inst: unknown): string[] {
  const def = (inst as undefined | {_zod?: {def?: {shape?: Record<string, unknown>}}})?._zod?.def
  return def?.shape ? Object.keys(def.shape) : []
}

function sizeMessage(iss: z.core.$ZodRawIssue<z.core.$ZodIssueTooBig | z.core.$ZodIssueTooSmall>): string {
  const small = iss.code === 'too_small'
  const limit = small ? iss.minimum : iss.maximum
  if (iss.origin === 'string' && small && Number(limit) <= 1) return 'must not be empty'
  if (iss.origin === 'array') return `needs at ${small ? 'least' : 'most'} ${String(limit)} item(s)`
  if (iss.origin === 'string') return `must be at ${small ? 'least' : 'most'} ${String(limit)} character(s) long`
  if (iss.inclusive) return `must be at ${small ? 'least' : 'most'} ${String(limit)}, got ${describeValue(iss.input)}`
  return `must be ${small ? 'more' : 'less'} than ${String(limit)}, got ${describeValue(iss.input)}`
}

/**
 * The error map configs are parsed with. Unknown keys get one line per key, in the order of the issue's
 * `keys` (the loader splits them). A missing value gets REQUIRED_MESSAGE.
 */
export const verifyErrorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'unrecognized_keys') {
    const allowed = shapeKeys(iss.inst)
    return iss.keys.map((key) => unknownKeyMessage(key, allowed)).join('\n')
  }

  if (iss.input === undefined && iss.code !== 'custom') return REQUIRED_MESSAGE
  switch (iss.code) {
    case 'invalid_format': {
      return `${describeValue(iss.input)} does not match ${iss.pattern ?? `the ${iss.format} format`}`
    }

    case 'invalid_type': {
      return `expected ${expectedNoun(iss.expected)}, got ${describeValue(iss.input)}`
    }

    case 'invalid_value': {
      const values = iss.values.map((v) => literal(v))
      const expected = values.length === 1 ? values[0] : `one of ${values.join(', ')}`
      return `expected ${expected}, got ${describeValue(iss.input)}`
    }

    case 'too_big':
    case 'too_small': {
      return sizeMessage(iss)
    }

    default: {
      break
    }
  }
}
