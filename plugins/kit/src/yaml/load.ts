/**
 * Loading a YAML (or JSON) file against a zod schema: read it within YAML_LIMITS, parse it keeping
 * positions, check that it is one map, validate it, and report every problem as a RecipeIssue with file,
 * line, column and key path (the first MAX_ISSUES of them, in file order), thrown at once in a RecipeError.
 * Recipes and verification configs are loaded here; what differs between them is their YamlDocumentSpec.
 */
import type {z} from 'zod'

import {readdir, stat} from 'node:fs/promises'
import {basename, dirname, extname, join, resolve} from 'node:path'
import {isMap, isScalar} from 'yaml'

import {RecipeError, type TransshipError} from '../errors.js'
import {describeValue} from './issues.js'
import {type KeyPath, type YamlPositions} from './paths.js'
import {IssueLocator, valueAt} from './schema-issues.js'
import {
  parseYamlSteps,
  readYamlFile,
  runSteps,
  runStepsAsync,
  type Steps,
  type YamlParseOptions,
  type YamlSource,
} from './source.js'
import {closest} from './suggest.js'

/** What a kind of file is, and how it is validated. */
export interface YamlDocumentSpec<T> {
  /** further checks of the data (references between its parts), made whether or not the schema accepted it */
  check?: (data: unknown, issues: IssueLocator) => void
  /** the message for an empty file: `the recipe is empty: start with ...` */
  empty: string
  /** the error map the schema is applied with: its messages are the issues' */
  errorMap: z.core.$ZodErrorMap
  /** what the file is, with its article, for messages: `a recipe` */
  kind: string
  /** what to say of a second document in the file */
  multipleDocuments: string
  /** the message for a file holding something else than a map, given what it holds (`a list`) */
  notAMap: (what: string) => string
  /**
   * The data the schema is given, made from the parsed file (the default: its data as parsed). Issues
   * added here are reported without validating further.
   */
  prepare?: (source: YamlSource, issues: IssueLocator) => unknown
  /**
   * Where the schema wants a string and the file has a plain number or boolean (`port: 8080`), take the
   * scalar's text, as go-yaml does for a string field.
   */
  scalarsAsStrings?: boolean
  schema: z.ZodType<T>
  /** the syntax named in messages (default YAML) */
  syntax?: 'JSON' | 'YAML'
  /** the YAML version the file is read as when it does not say (default 1.2) */
  version?: '1.1' | '1.2'
}

/**
 * Why a file could not be read; the caller words it (and chooses its error code). A directory comes with
 * the names in it that `YamlFileSpec.names` matches, sorted; a missing file with suggestions (a close name
 * in the same directory, if any, and where the path was looked up).
 */
export type YamlFileProblem =
  | {cause: unknown; detail: string; reason: 'unreadable'}
  | {cause: unknown; reason: 'not-found'; suggestions: string[]}
  | {files: string[]; reason: 'directory'}
  | {reason: 'not-a-file'}

export interface YamlFileSpec {
  /** the error thrown for a file that cannot be read */
  fileError: (problem: YamlFileProblem, file: string) => TransshipError
  /** the names of files of this kind (for suggestions): /\.ya?ml$/i */
  names: RegExp
  /** refuse anything but a regular file (a pipe, a device); else they are read up to the size limit */
  regularOnly?: boolean
}

export interface LoadYamlOptions {
  /** stops the loading (with the signal's reason) between its steps */
  signal?: AbortSignal
}

/** Read, parse and validate a file. Throws the spec's file error, or a RecipeError carrying every issue found. */
export async function loadYamlFile<T>(
  file: string,
  spec: YamlDocumentSpec<T> & YamlFileSpec,
  options: LoadYamlOptions = {},
): Promise<T> {
  const text = await readText(file, spec)
  return runStepsAsync(documentSteps(text, file, spec), options.signal)
}

/** Parse and validate text; `file` names it in messages. Throws a RecipeError carrying every issue found. */
export function parseYamlText<T>(text: string, file: string, spec: YamlDocumentSpec<T>): T {
  return runSteps(documentSteps(text, file, spec))
}

// ---------------------------------------------------------------------------------------------------------
// reading

async function readText(file: string, spec: YamlDocumentSpec<unknown> & YamlFileSpec): Promise<string> {
  const path = resolve(file)
  let problem: YamlFileProblem
  try {
    const stats = await stat(path)
    if (stats.isDirectory()) {
      problem = {files: await filesIn(path, spec.names), reason: 'directory'}
    } else if (spec.regularOnly && !stats.isFile()) {
      problem = {reason: 'not-a-file'}
    } else {
      // a regular file, or a pipe (`--config <(...)`), read no further than the size limit
      return await readYamlFile(path, {file, kind: spec.kind})
    }
  } catch (error) {
    if (error instanceof RecipeError) throw error
    const {code} = error as NodeJS.ErrnoException
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      problem = {cause: error, reason: 'not-found', suggestions: await notFoundSuggestions(file, path, spec.names)}
    } else {
      const detail = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (error as Error).message
      problem = {cause: error, detail, reason: 'unreadable'}
    }
  }

  throw spec.fileError(problem, file)
}

async function filesIn(dir: string, names: RegExp): Promise<string[]> {
  try {
    const entries = await readdir(dir, {withFileTypes: true})
    return entries
      .filter((entry) => entry.isFile() && names.test(entry.name))
      .map((entry) => entry.name)
      .sort()
  } catch {
    return [] // the directory is missing too, or unreadable
  }
}

function stem(name: string): string {
  return name.slice(0, name.length - extname(name).length)
}

/** `did you mean x.yaml?` (the same name with another extension, else the closest), and where the path was looked up. */
async function notFoundSuggestions(file: string, path: string, names: RegExp): Promise<string[]> {
  const siblings = await filesIn(dirname(path), names)
  const name = basename(path)
  const match = siblings.find((sibling) => stem(sibling) === stem(name)) ?? closest(name, siblings)
  const suggestions = match === undefined ? [] : [`did you mean ${join(dirname(file), match)}?`]
  suggestions.push(`check the path${file === path ? '' : ` (relative to ${process.cwd()})`}`)
  return suggestions
}

// ---------------------------------------------------------------------------------------------------------
// parsing and validating

function* documentSteps<T>(text: string, file: string, spec: YamlDocumentSpec<T>): Steps<T> {
  const parseOptions: YamlParseOptions = {
    file,
    kind: spec.kind,
    multipleDocuments: spec.multipleDocuments,
    syntax: spec.syntax,
    version: spec.version,
  }
  const source = yield* parseYamlSteps(text, parseOptions)
  const {doc, positions} = source
  let {data} = source
  if (data === null || data === undefined) {
    throw new RecipeError([{file, message: spec.empty, path: ''}])
  }

  if (!isMap(doc.contents)) {
    const at = positions.positionOf([], 'value')
    throw new RecipeError([{file, ...at, message: spec.notAMap(describeValue(data)), path: ''}])
  }

  if (spec.prepare) {
    const prepared = new IssueLocator(positions, file, data)
    data = spec.prepare(source, prepared)
    if (prepared.size > 0) throw new RecipeError(prepared.report())
  }

  let result = spec.schema.safeParse(data, {error: spec.errorMap})
  yield
  if (!result.success && spec.scalarsAsStrings && useScalarSources(positions, data, result.error.issues)) {
    result = spec.schema.safeParse(data, {error: spec.errorMap})
    yield
  }

  const issues = new IssueLocator(positions, file, data)
  if (!result.success) issues.addZodIssues(result.error.issues)
  spec.check?.(data, issues)
  if (result.success && issues.size === 0) return result.data
  throw new RecipeError(issues.report())
}

/**
 * Where a string is expected and a plain number or boolean is found, use its source text (go-yaml gives
 * a string field the text of any scalar: `value: 8080` is the string "8080"). Returns whether anything changed.
 */
function useScalarSources(positions: YamlPositions, data: unknown, issues: readonly z.core.$ZodIssue[]): boolean {
  let changed = false
  for (const issue of issues) {
    if (issue.code !== 'invalid_type' || issue.expected !== 'string' || issue.path.length === 0) continue
    const {depth, node} = positions.locate(issue.path as KeyPath)
    if (depth !== issue.path.length || !isScalar(node) || node.source === undefined) continue
    if (typeof node.value !== 'number' && typeof node.value !== 'boolean') continue
    const parent = valueAt(data, issue.path.slice(0, -1))
    if (parent === null || typeof parent !== 'object') continue
    ;(parent as Record<PropertyKey, unknown>)[issue.path.at(-1) as PropertyKey] = node.source
    changed = true
  }

  return changed
}
