/**
 * Loading a verification config: read the file, parse it (YAML or JSON, as container-structure-test
 * accepts both) keeping positions, validate it. Every problem found becomes a RecipeIssue with file, line,
 * column and key path, and all of them are thrown at once in a RecipeError.
 */
import type {z} from 'zod'

import {
  dedupeIssues,
  describeValue,
  formatPath,
  type KeyPath,
  locate,
  positionOf,
  RecipeError,
  type RecipeIssue,
  REQUIRED_MESSAGE,
  sortIssues,
  UsageError,
} from '@transship/kit'
import {readdir, readFile, stat} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'
import {type Document, isMap, isScalar, LineCounter, parseDocument, type YAMLError} from 'yaml'

import type {VerifyConfig} from './types.js'

import {applyJsonDefaults, canonicalJsonKeys, isJsonFile, withoutNulls} from './dialects.js'
import {closest, SCHEMA_VERSION, verifyConfigSchema, verifyErrorMap} from './schema.js'

/** More alias expansions than this in one document and it is refused (a "billion laughs" file). */
export const MAX_ALIAS_COUNT = 100

const START_HINT = `start with \`schemaVersion: "${SCHEMA_VERSION}"\``

/** Read, parse and validate a config file. Throws a UsageError when it cannot be read, a RecipeError when invalid. */
export async function loadVerifyConfig(file: string): Promise<VerifyConfig> {
  const path = resolve(file)
  let text: string
  try {
    const stats = await stat(path)
    if (stats.isDirectory()) {
      throw new UsageError(`${file} is a directory, not a verification config file`, {code: 'NOT_A_FILE'})
    }

    text = await readFile(path, 'utf8')
  } catch (error) {
    if (error instanceof UsageError) throw error
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

  return parseVerifyConfig(text, file)
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
  const lineCounter = new LineCounter()
  const json = isJsonFile(file)
  // container-structure-test reads YAML with go-yaml v2: YAML 1.1, where yes/no/on/off are booleans
  const doc = parseDocument(text, {
    lineCounter,
    merge: true,
    prettyErrors: false,
    uniqueKeys: true,
    ...(json ? {} : {version: '1.1' as const}),
  })

  const yamlProblems = [...doc.errors, ...doc.warnings]
  if (yamlProblems.length > 0) {
    throw new RecipeError(
      sortIssues(dedupeIssues(yamlProblems.map((problem) => yamlIssue(problem, lineCounter, file, text)))),
    )
  }

  const {contents} = doc
  if (contents === null || (isScalar(contents) && contents.value === null)) {
    throw new RecipeError([{file, message: `the config is empty: ${START_HINT}`, path: ''}])
  }

  const keyProblems = json ? canonicalJsonKeys(doc, verifyConfigSchema) : []
  let data: unknown
  try {
    data = withoutNulls(doc.toJS({maxAliasCount: MAX_ALIAS_COUNT}))
  } catch (error) {
    const message = /excessive alias count/i.test((error as Error).message)
      ? `its anchors and aliases expand too much (more than ${MAX_ALIAS_COUNT} aliases): refused`
      : `invalid YAML: ${lowerFirst((error as Error).message)}`
    throw new RecipeError([{file, message, path: ''}], {cause: error})
  }

  if (!isMap(contents)) {
    throw new RecipeError([
      {
        file,
        ...positionOf(doc, lineCounter, [], 'value'),
        message: `a config is a map of keys, not ${describeValue(data)}: ${START_HINT}`,
        path: '',
      },
    ])
  }

  if (keyProblems.length > 0) {
    const locator = new IssueLocator(doc, lineCounter, file, data)
    for (const problem of keyProblems) locator.add(problem.path, 'key', problem.message)
    throw new RecipeError(sortIssues(dedupeIssues(locator.issues)))
  }

  if (json) applyJsonDefaults(data)
  let result = verifyConfigSchema.safeParse(data, {error: verifyErrorMap})
  if (!result.success && useScalarSources(doc, data, result.error.issues)) {
    result = verifyConfigSchema.safeParse(data, {error: verifyErrorMap})
  }

  if (result.success) return result.data
  const locator = new IssueLocator(doc, lineCounter, file, data)
  for (const issue of result.error.issues) locator.addZodIssue(issue, issue.path)
  throw new RecipeError(sortIssues(dedupeIssues(locator.issues)))
}

/**
 * container-structure-test reads YAML with go-yaml, which gives a string field the text of any scalar:
 * `value: 8080` is the string "8080". Do the same: where a string is expected and a plain number or
 * boolean is found, use its source text. Returns whether anything was changed.
 */
function useScalarSources(doc: Document, data: unknown, issues: readonly z.core.$ZodIssue[]): boolean {
  let changed = false
  for (const issue of issues) {
    if (issue.code !== 'invalid_type' || issue.expected !== 'string' || issue.path.length === 0) continue
    const {depth, node} = locate(doc, issue.path)
    if (depth !== issue.path.length || !isScalar(node) || node.source === undefined) continue
    if (typeof node.value !== 'number' && typeof node.value !== 'boolean') continue
    const parent = valueAt(data, issue.path.slice(0, -1))
    if (parent === null || typeof parent !== 'object') continue
    ;(parent as Record<PropertyKey, unknown>)[issue.path.at(-1) as PropertyKey] = node.source
    changed = true
  }

  return changed
}

function lowerFirst(message: string): string {
  return /^[A-Z][a-z]/.test(message) ? message[0]!.toLowerCase() + message.slice(1) : message
}

function yamlIssue(problem: YAMLError, lineCounter: LineCounter, file: string, text: string): RecipeIssue {
  const {col, line} = problem.linePos?.[0] ?? lineCounter.linePos(problem.pos[0])
  const where = {column: col, file, line}
  switch (problem.code) {
    case 'DUPLICATE_KEY': {
      const key = text.slice(problem.pos[0], problem.pos[1]).trim()
      return {...where, message: `duplicate key ${key ? `${key} ` : ''}(each key may appear once in a map)`, path: ''}
    }

    case 'MULTIPLE_DOCS': {
      return {
        ...where,
        message: 'a config is a single YAML document: give each further one in a file of its own',
        path: '',
      }
    }

    default: {
      return {
        ...where,
        message: `invalid ${looksLikeJson(file) ? 'JSON' : 'YAML'}: ${lowerFirst(problem.message)}`,
        path: '',
      }
    }
  }
}

function looksLikeJson(file: string): boolean {
  return /\.json$/i.test(file)
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

class IssueLocator {
  readonly issues: RecipeIssue[] = []

  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    private readonly file: string,
    private readonly data: unknown,
  ) {}

  add(path: KeyPath, anchor: 'key' | 'value', message: string): void {
    const at = positionOf(this.doc, this.lineCounter, path, anchor)
    this.issues.push({file: this.file, ...at, message, path: formatPath(path)})
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
