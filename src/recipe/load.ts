/**
 * Loading a recipe: read the file, parse the YAML keeping positions, validate it against the core schema
 * and the installed plugins' sections, check the host and registry names sections refer to. Every problem
 * found becomes a RecipeIssue with file, line, column and key path; all of them are thrown at once (the
 * first MAX_ISSUES). The file is held to YAML_LIMITS (size, nesting, aliases), so that any file, however
 * large or hostile, is refused or validated in a moment.
 */
import type {z} from 'zod'

import {
  type RecipeContext,
  RecipeError,
  type RecipeIssue,
  type RecipeRegistry,
  type SectionProvider,
} from '@transship/kit'
import {
  type Anchor,
  describeValue,
  formatPath,
  IssueList,
  type KeyPath,
  parseYamlSteps,
  printable,
  quote,
  readYamlFile,
  REQUIRED_MESSAGE,
  runSteps,
  runStepsAsync,
  type Steps,
  YAML_LIMITS,
  type YamlParseOptions,
  type YamlPositions,
} from '@transship/kit/yaml'
import {readdir, stat} from 'node:fs/promises'
import {basename, dirname, extname, join, resolve} from 'node:path'
import {isMap} from 'yaml'

import {
  closest,
  expectedOf,
  type HostSpec,
  LOCAL_HOST,
  recipeErrorMap,
  recipeSchema,
  type RegistrySpec,
} from './schema.js'

/** More alias expansions than this in one document and it is refused (a "billion laughs" file). */
export const MAX_ALIAS_COUNT = YAML_LIMITS.aliasExpansions

export interface RecipeSection {
  /** key path of the section in the recipe, for messages (the section name) */
  path: string
  provider: SectionProvider<unknown>
  /** the section's value as parsed by the provider's schema */
  value: unknown
}

export interface Recipe {
  /** absolute directory of the recipe file, to resolve relative paths */
  dir: string
  /** the file as given, for messages */
  file: string
  /** every host by name, including the implicit `local` */
  hosts: Record<string, HostSpec>
  /** absolute path of the recipe file */
  path: string
  registries: Record<string, RegistrySpec>
  /** the sections present in the recipe, in provider order */
  sections: RecipeSection[]
  version: 1
}

/** What plugins are told about the recipe they plan for. */
export function recipeContext(recipe: Recipe): RecipeContext {
  return {
    dir: recipe.dir,
    file: recipe.file,
    hosts: Object.keys(recipe.hosts),
    registries: Object.keys(recipe.registries),
    registrySpecs: recipeRegistries(recipe),
  }
}

/** The recipe's registries, with CA paths made absolute (they are relative to the recipe's directory). */
export function recipeRegistries(recipe: Recipe): Record<string, RecipeRegistry> {
  return Object.fromEntries(
    Object.entries(recipe.registries).map(([name, spec]) => [
      name,
      {...spec, ca: spec.ca === undefined ? undefined : resolve(recipe.dir, spec.ca)},
    ]),
  )
}

export interface LoadRecipeOptions {
  /** stops the loading (with the signal's reason) between its steps */
  signal?: AbortSignal
}

/** Read, parse and validate a recipe file. Throws a RecipeError carrying every issue found. */
export async function loadRecipe(
  file: string,
  providers: readonly SectionProvider<unknown>[],
  options: LoadRecipeOptions = {},
): Promise<Recipe> {
  const path = resolve(file)
  const text = await readRecipeFile(file, path)
  return runStepsAsync(recipeSteps(text, {file, path}, providers), options.signal)
}

// ---------------------------------------------------------------------------------------------------------
// reading

function fileIssue(file: string, message: string): RecipeIssue {
  return {file, message, path: ''}
}

async function readRecipeFile(file: string, path: string): Promise<string> {
  try {
    const stats = await stat(path)
    if (stats.isDirectory()) {
      const inside = await yamlFilesIn(path)
      throw new RecipeError([fileIssue(file, 'is a directory, not a recipe file')], {
        code: 'RECIPE_NOT_A_FILE',
        suggestions:
          inside.length > 0
            ? [`give one of the recipes in it, e.g. ${join(file, inside[0] ?? '')}`]
            : ['give the path of a recipe file (YAML, starting with `version: 1`)'],
      })
    }

    if (!stats.isFile()) {
      throw new RecipeError([fileIssue(file, 'is not a regular file')], {code: 'RECIPE_NOT_A_FILE'})
    }

    return await readYamlFile(path, {file, kind: RECIPE})
  } catch (error) {
    if (error instanceof RecipeError) throw error
    const {code} = error as NodeJS.ErrnoException
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new RecipeError([fileIssue(file, 'no such file')], {
        cause: error,
        code: 'RECIPE_NOT_FOUND',
        suggestions: await notFoundSuggestions(file, path),
      })
    }

    const reason = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (error as Error).message
    throw new RecipeError([fileIssue(file, `cannot be read: ${reason}`)], {cause: error, code: 'RECIPE_UNREADABLE'})
  }
}

async function yamlFilesIn(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, {withFileTypes: true})
    return entries
      .filter((entry) => entry.isFile() && /\.ya?ml$/i.test(entry.name))
      .map((entry) => entry.name)
      .sort()
  } catch {
    return []
  }
}

async function notFoundSuggestions(file: string, path: string): Promise<string[]> {
  const siblings = await yamlFilesIn(dirname(path))
  const name = basename(path)
  const stem = extname(name) ? name.slice(0, -extname(name).length) : name
  const match =
    siblings.find((sibling) => sibling.slice(0, -extname(sibling).length) === stem) ?? closest(name, siblings)
  const suggestions = match === undefined ? [] : [`did you mean ${join(dirname(file), match)}?`]
  suggestions.push(`check the path${file === path ? '' : ` (relative to ${process.cwd()})`}`)
  return suggestions
}

// ---------------------------------------------------------------------------------------------------------
// parsing

export interface RecipeSource {
  /** the file as given, for messages */
  file: string
  /** absolute path of the file */
  path: string
}

const RECIPE = 'a recipe'

function parseOptions(file: string): YamlParseOptions {
  return {
    file,
    kind: RECIPE,
    multipleDocuments:
      'a recipe is a single YAML document: remove this "---" and what follows, or move it to a file of its own',
  }
}

/** Parse and validate recipe text; `loadRecipe` without the file reading. */
export function parseRecipe(
  text: string,
  source: RecipeSource,
  providers: readonly SectionProvider<unknown>[],
): Recipe {
  return runSteps(recipeSteps(text, source, providers))
}

function* recipeSteps(
  text: string,
  source: RecipeSource,
  providers: readonly SectionProvider<unknown>[],
): Steps<Recipe> {
  const {file} = source
  const {data, doc, positions} = yield* parseYamlSteps(text, parseOptions(file))
  if (data === null || data === undefined) {
    throw new RecipeError([fileIssue(file, 'the recipe is empty: start with `version: 1`')])
  }

  if (!isMap(doc.contents)) {
    const at = positions.positionOf([], 'value')
    throw new RecipeError([
      {
        file,
        ...at,
        message: `a recipe is a map of keys starting with \`version: 1\`, not ${describeValue(data)}`,
        path: '',
      },
    ])
  }

  const locator = new IssueLocator(positions, file, data)
  const schema = recipeSchema(providers)
  const result = schema.safeParse(data, {error: recipeErrorMap})
  yield
  if (!result.success) locator.addZodIssues(result.error.issues, [])
  checkReferences(locator, data, providers)

  if (locator.issues.size > 0 || !result.success) {
    throw new RecipeError(locator.issues.issues())
  }

  const parsed = result.data
  const hosts: Record<string, HostSpec> = {...parsed.hosts}
  if (!Object.hasOwn(hosts, LOCAL_HOST)) hosts[LOCAL_HOST] = {engine: 'local'}
  const sections = providers
    .filter((provider) => parsed[provider.section] !== undefined)
    .map((provider) => ({path: formatPath([provider.section]), provider, value: parsed[provider.section]}))

  return {
    dir: dirname(source.path),
    file,
    hosts,
    path: source.path,
    registries: {...parsed.registries},
    sections,
    version: parsed.version,
  }
}

// ---------------------------------------------------------------------------------------------------------
// validation issues

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

type ZodIssue = z.core.$ZodIssue

/** Characters of a message past which it is cut. */
const MESSAGE_LENGTH = 1000

class IssueLocator {
  readonly issues: IssueList

  constructor(
    private readonly positions: YamlPositions,
    private readonly file: string,
    readonly data: unknown,
  ) {
    this.issues = new IssueList(file)
  }

  add(path: KeyPath, anchor: Anchor, message: string): void {
    const at = this.positions.positionOf(path, anchor)
    // the schema's messages may quote the file: shown escaped and shortened, like the rest
    this.issues.add({file: this.file, ...at, message: printable(message, MESSAGE_LENGTH), path: formatPath(path)})
  }

  addZodIssues(issues: readonly ZodIssue[], prefix: KeyPath): void {
    for (const issue of issues) this.addZodIssue(issue, [...prefix, ...issue.path])
  }

  private addZodIssue(issue: ZodIssue, path: PropertyKey[]): void {
    switch (issue.code) {
      case 'invalid_key': {
        this.add(path, 'key', issue.message)
        return
      }

      case 'invalid_union': {
        if (issue.errors.length > 0) {
          this.addUnionIssue(issue.errors, path)
          return
        }

        break
      }

      case 'unrecognized_keys': {
        const lines = issue.message.split('\n')
        for (const [i, key] of issue.keys.entries()) {
          this.add(
            [...path, key],
            'key',
            lines.length === issue.keys.length ? (lines[i] ?? issue.message) : issue.message,
          )
        }

        return
      }

      default: {
        break
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

  /** A value that matches no branch of a union: report the branch it came closest to. */
  private addUnionIssue(branches: ReadonlyArray<readonly ZodIssue[]>, path: PropertyKey[]): void {
    const wrongKind = (branch: readonly ZodIssue[]) =>
      branch.length === 1 &&
      branch[0]!.path.length === 0 &&
      (branch[0]!.code === 'invalid_type' || branch[0]!.code === 'invalid_value')
    const candidates = branches.filter((branch) => !wrongKind(branch))
    if (candidates.length > 0) {
      const closestBranch = candidates.reduce((best, branch) => (branch.length < best.length ? branch : best))
      this.addZodIssues(closestBranch, path)
      return
    }

    const expected = branches.map((branch) => (branch[0] ? expectedOf(branch[0]) : undefined) ?? 'something else')
    this.add(
      path,
      'value',
      `expected ${[...new Set(expected)].join(' or ')}, got ${describeValue(valueAt(this.data, path))}`,
    )
  }
}

/** The names listed after an unknown host or registry. */
const LISTED_NAMES = 20

function knownList(kind: 'host' | 'registry', known: ReadonlySet<string>): string {
  if (known.size === 0) return `no ${kind === 'host' ? 'hosts' : 'registries'} are defined`
  const names = [...known].sort()
  const listed = names.slice(0, LISTED_NAMES).map((name) => printable(name, 60))
  const more = names.length - listed.length
  return `known: ${listed.join(', ')}${more > 0 ? ` and ${more} more` : ''}`
}

function checkReferences(locator: IssueLocator, data: unknown, providers: readonly SectionProvider<unknown>[]): void {
  if (!isPlainMap(data)) return
  const hostNames = new Set(isPlainMap(data.hosts) ? Object.keys(data.hosts) : [])
  hostNames.add(LOCAL_HOST)
  const registryNames = new Set(isPlainMap(data.registries) ? Object.keys(data.registries) : [])
  // listed once per kind: a recipe may name thousands of hosts, and refer to unknown ones as often
  const lists = new Map<'host' | 'registry', string>()

  for (const provider of providers) {
    const raw = data[provider.section]
    if (raw === undefined || provider.references === undefined) continue
    // each section on its own, so that one invalid section does not hide the references of another
    const section = provider.schema.safeParse(raw, {error: recipeErrorMap})
    if (!section.success) continue
    for (const reference of provider.references(section.data)) {
      const known = reference.kind === 'host' ? hostNames : registryNames
      if (known.has(reference.name)) continue
      let list = lists.get(reference.kind)
      if (list === undefined) {
        list = knownList(reference.kind, known)
        lists.set(reference.kind, list)
      }

      locator.add(
        [provider.section, ...reference.path],
        'value',
        `unknown ${reference.kind} ${quote(reference.name, 60)} (${list})`,
      )
    }
  }
}
