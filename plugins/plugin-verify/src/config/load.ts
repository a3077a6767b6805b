/**
 * Loading a verification config: read the file, parse it (YAML or JSON, as container-structure-test
 * accepts both) keeping positions, validate it. Every problem found becomes a RecipeIssue with file, line,
 * column and key path, and all of them are thrown at once in a RecipeError (the first MAX_ISSUES). The
 * file is held to the kit's YAML_LIMITS (size, nesting, aliases), like a recipe.
 */
import type {z} from 'zod'

import {
  describeValue,
  formatPath,
  IssueList,
  type KeyPath,
  parseYamlSteps,
  printable,
  readYamlFile,
  RecipeError,
  REQUIRED_MESSAGE,
  runSteps,
  runStepsAsync,
  type Steps,
  TransshipError,
  UsageError,
  YAML_LIMITS,
  type YamlParseOptions,
  type YamlPositions,
} from '@transship/kit'
import {readdir, stat} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'
import {isMap, isScalar} from 'yaml'

import type {VerifyConfig} from './types.js'

import {applyJsonDefaults, canonicalJsonKeys, isJsonFile, withoutNulls} from './dialects.js'
import {closest, SCHEMA_VERSION, verifyConfigSchema, verifyErrorMap} from './schema.js'

/** More alias expansions than this in one document and it is refused (a "billion laughs" file). */
export const MAX_ALIAS_COUNT = YAML_LIMITS.aliasExpansions

const START_HINT = `start with \`schemaVersion: "${SCHEMA_VERSION}"\``

const KIND = 'a verification config'

export interface LoadVerifyConfigOptions {
  /** stops the loading (with the signal's reason) between its steps */
  signal?: AbortSignal
}

/** Read, parse and validate a config file. Throws a UsageError when it cannot be read, a RecipeError when invalid. */
export async function loadVerifyConfig(file: string, options: LoadVerifyConfigOptions = {}): Promise<VerifyConfig> {
  const path = resolve(file)
  let text: string
  try {
    const stats = await stat(path)
    if (stats.isDirectory()) {
      throw new UsageError(`${file} is a directory, not a verification config file`, {code: 'FILE_WRONG_TYPE'})
    }

    // a regular file, or a pipe (`--config <(...)`), read no further than the size limit
    text = await readYamlFile(path, {file, kind: KIND})
  } catch (error) {
    if (error instanceof TransshipError) throw error
    const {code} = error as NodeJS.ErrnoException
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UsageError(`verification config ${file} not found`, {
        cause: error,
        code: 'FILE_NOT_FOUND',
        details: {file},
        suggestions: await notFoundSuggestions(file, path),
      })
    }

    const reason = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (error as Error).message
    throw new UsageError(`verification config ${file} cannot be read: ${reason}`, {
      cause: error,
      code: 'FILE_UNREADABLE',
      details: {file},
    })
  }

  return runStepsAsync(configSteps(text, file), options.signal)
}

async function notFoundSuggestions(file: string, path: string): Promise<string[]> {
  let siblings: string[] = []
  try {
    const entries = await readdir(dirname(path), {withFileTypes: true})
    siblings = entries.filter((entry) => entry.isFile() && /\.(?:ya?ml|json)$/i.test(entry.name)).map((e) => e.name)
  } catch {
    // the directory is missing too
  }

  const match = closest(basename(path), siblings)
  const suggestions = match === undefined ? [] : [`did you mean ${join(dirname(file), match)}?`]
  suggestions.push(`check the path${file === path ? '' : ` (relative to ${process.cwd()})`}`)
  return suggestions
}

// ---------------------------------------------------------------------------------------------------------
// parsing

/** Parse and validate config text (YAML or JSON); `file` names it in messages. Throws a RecipeError. */
export function parseVerifyConfig(text: string, file: string): VerifyConfig {
  return runSteps(configSteps(text, file))
}

function parseOptions(file: string): YamlParseOptions {
  return {
    file,
    kind: KIND,
    multipleDocuments: 'a config is a single YAML document: give each further one in a file of its own',
    syntax: isJsonFile(file) ? 'JSON' : 'YAML',
    // container-structure-test reads YAML with go-yaml v2: YAML 1.1, where yes/no/on/off are booleans
    ...(isJsonFile(file) ? {} : {version: '1.1' as const}),
  }
}

function* configSteps(text: string, file: string): Steps<VerifyConfig> {
  const parsed = yield* parseYamlSteps(text, parseOptions(file))
  const {doc, positions} = parsed
  let {data} = parsed
  if (data === null || data === undefined) {
    throw new RecipeError([{file, message: `the config is empty: ${START_HINT}`, path: ''}])
  }

  if (!isMap(doc.contents)) {
    throw new RecipeError([
      {
        file,
        ...positions.positionOf([], 'value'),
        message: `a config is a map of keys, not ${describeValue(data)}: ${START_HINT}`,
        path: '',
      },
    ])
  }

  const json = isJsonFile(file)
  if (json) {
    // keys in the schema's spelling, renamed in the document; its data read again (it has passed the limits)
    const keyProblems = canonicalJsonKeys(doc, verifyConfigSchema)
    if (keyProblems.length > 0) {
      const locator = new IssueLocator(positions, file, data)
      for (const problem of keyProblems) locator.add(problem.path, 'key', problem.message)
      throw new RecipeError(locator.issues.issues())
    }

    data = doc.toJS({maxAliasCount: YAML_LIMITS.aliasExpansions})
  }

  data = withoutNulls(data)
  if (json) applyJsonDefaults(data)
  let result = verifyConfigSchema.safeParse(data, {error: verifyErrorMap})
  yield
  if (!result.success && useScalarSources(positions, data, result.error.issues)) {
    result = verifyConfigSchema.safeParse(data, {error: verifyErrorMap})
    yield
  }

  if (result.success) return result.data
  const locator = new IssueLocator(positions, file, data)
  for (const issue of result.error.issues) locator.addZodIssue(issue, issue.path)
  throw new RecipeError(locator.issues.issues())
}

/**
 * container-structure-test reads YAML with go-yaml, which gives a string field the text of any scalar:
 * `value: 8080` is the string "8080". Do the same: where a string is expected and a plain number or
 * boolean is found, use its source text. Returns whether anything was changed.
 */
function useScalarSources(positions: YamlPositions, data: unknown, issues: readonly z.core.$ZodIssue[]): boolean {
  let changed = false
  for (const issue of issues) {
    if (issue.code !== 'invalid_type' || issue.expected !== 'string' || issue.path.length === 0) continue
    const {depth, node} = positions.locate(issue.path)
    if (depth !== issue.path.length || !isScalar(node) || node.source === undefined) continue
    if (typeof node.value !== 'number' && typeof node.value !== 'boolean') continue
    const parent = valueAt(data, issue.path.slice(0, -1))
    if (parent === null || typeof parent !== 'object') continue
    ;(parent as Record<PropertyKey, unknown>)[issue.path.at(-1) as PropertyKey] = node.source
    changed = true
  }

  return changed
}

// ---------------------------------------------------------------------------------------------------------
// key paths and their positions in the source

function valueAt(data: unknown, path: KeyPath): unknown {
  let value = data
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<PropertyKey, unknown>)[segment as string]
  }

  return value
}

function isPlainMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Characters of a message past which it is cut. */
const MESSAGE_LENGTH = 1000

class IssueLocator {
  readonly issues: IssueList

  constructor(
    private readonly positions: YamlPositions,
    private readonly file: string,
    private readonly data: unknown,
  ) {
    this.issues = new IssueList(file)
  }

  add(path: KeyPath, anchor: 'key' | 'value', message: string): void {
    const at = this.positions.positionOf(path, anchor)
    // the schema's messages may quote the file: shown escaped and shortened, like the rest
    this.issues.add({file: this.file, ...at, message: printable(message, MESSAGE_LENGTH), path: formatPath(path)})
  }

  addZodIssue(issue: z.core.$ZodIssue, path: KeyPath): void {
    if (issue.code === 'unrecognized_keys') {
      const lines = issue.message.split('\n')
      for (const [i, key] of issue.keys.entries()) {
        const message = lines.length === issue.keys.length ? (lines[i] ?? issue.message) : issue.message
        this.add([...path, key], 'key', message)
      }

      return
    }

    if (issue.code === 'invalid_union') {
      // no unions in the schema today; report the first branch's problems should one be added
      const branch = issue.errors[0]
      if (branch !== undefined && branch.length > 0) {
        for (const inner of branch) this.addZodIssue(inner, [...path, ...inner.path])
        return
      }
    }

    const key = path.at(-1)
    const parentPath = path.slice(0, -1)
    const parent = valueAt(this.data, parentPath)
    if (path.length > 0 && isPlainMap(parent) && !Object.hasOwn(parent, key as string)) {
      const why = issue.message === REQUIRED_MESSAGE ? '' : `: ${issue.message}`
      this.add(parentPath, 'value', `missing required key ${JSON.stringify(String(key))}${why}`)
      return
    }

    this.add(path, 'value', issue.message)
  }
}
