/**
 * Loading a recipe: read the file, parse the YAML keeping positions, validate it against the core schema
 * and the installed plugins' sections, check the host and registry names sections refer to. Every problem
 * found becomes a RecipeIssue with file, line, column and key path; all of them are thrown at once.
 */
import type {z} from 'zod'

import {
  type Anchor,
  dedupeIssues,
  describeValue,
  formatPath,
  keyName,
  type KeyPath,
  pathOfAncestry,
  positionOf,
  type RecipeContext,
  RecipeError,
  type RecipeIssue,
  type RecipeRegistry,
  REQUIRED_MESSAGE,
  type SectionProvider,
  sortIssues,
} from '@transship/kit'
import {readdir, readFile, stat} from 'node:fs/promises'
import {basename, dirname, extname, join, resolve} from 'node:path'
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  visit,
  type YAMLError,
} from 'yaml'

import {closest, type HostSpec, LOCAL_HOST, recipeErrorMap, recipeSchema, type RegistrySpec} from './schema.js'

/** More alias expansions than this in one document and it is refused (a "billion laughs" file). */
export const MAX_ALIAS_COUNT = 100

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

/** Read, parse and validate a recipe file. Throws a RecipeError carrying every issue found. */
export async function loadRecipe(file: string, providers: readonly SectionProvider<unknown>[]): Promise<Recipe> {
  const path = resolve(file)
  const text = await readRecipeFile(file, path)
  return parseRecipe(text, {file, path}, providers)
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

    return await readFile(path, 'utf8')
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

/** Parse and validate recipe text; `loadRecipe` without the file reading. */
export function parseRecipe(
  text: string,
  source: RecipeSource,
  providers: readonly SectionProvider<unknown>[],
): Recipe {
  const {file} = source
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, merge: true, prettyErrors: false, uniqueKeys: true})

  const yamlProblems = [...doc.errors, ...doc.warnings]
  if (yamlProblems.length > 0) {
    throw new RecipeError(
      sortIssues(dedupeIssues(yamlProblems.map((problem) => yamlIssue(problem, doc, lineCounter, file, text)))),
    )
  }

  const {contents} = doc
  if (contents === null || (isScalar(contents) && contents.value === null)) {
    throw new RecipeError([fileIssue(file, 'the recipe is empty: start with `version: 1`')])
  }

  const aliasIssues = aliasAndMergeIssues(doc, lineCounter, file)
  if (aliasIssues.length > 0) throw new RecipeError(aliasIssues)

  let data: unknown
  try {
    data = doc.toJS({maxAliasCount: MAX_ALIAS_COUNT})
  } catch (error) {
    const message = /excessive alias count/i.test((error as Error).message)
      ? `its anchors and aliases expand too much (more than ${MAX_ALIAS_COUNT} aliases): refused`
      : `invalid YAML: ${lowerFirst((error as Error).message)}`
    throw new RecipeError([fileIssue(file, message)], {cause: error})
  }

  if (!isMap(contents)) {
    const at = positionOf(doc, lineCounter, [], 'value')
    throw new RecipeError([
      {
        file,
        ...at,
        message: `a recipe is a map of keys starting with \`version: 1\`, not ${describeValue(data)}`,
        path: '',
      },
    ])
  }

  const locator = new IssueLocator(doc, lineCounter, file, data)
  const schema = recipeSchema(providers)
  const result = schema.safeParse(data, {error: recipeErrorMap})
  if (!result.success) locator.addZodIssues(result.error.issues, [])
  checkReferences(locator, data, providers)

  if (locator.issues.length > 0 || !result.success) {
    throw new RecipeError(sortIssues(dedupeIssues(locator.issues)))
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

function lowerFirst(message: string): string {
  return /^[A-Z][a-z]/.test(message) ? message[0]!.toLowerCase() + message.slice(1) : message
}

function yamlIssue(
  problem: YAMLError,
  doc: Document,
  lineCounter: LineCounter,
  file: string,
  text: string,
): RecipeIssue {
  const offset = problem.pos[0]
  const {col, line} = problem.linePos?.[0] ?? lineCounter.linePos(offset)
  const where = {column: col, file, line}
  switch (problem.code) {
    case 'DUPLICATE_KEY': {
      const duplicate = findPairWithKeyAt(doc, offset)
      if (duplicate) {
        const first = duplicate.firstOffset === undefined ? undefined : lineCounter.linePos(duplicate.firstOffset).line
        return {
          ...where,
          message: `duplicate key "${duplicate.key}"${first === undefined ? '' : ` (first on line ${first})`}`,
          path: formatPath(duplicate.path),
        }
      }

      return {...where, message: `duplicate key ${JSON.stringify(text.slice(offset, problem.pos[1]))}`, path: ''}
    }

    case 'MULTIPLE_DOCS': {
      return {
        ...where,
        message:
          'a recipe is a single YAML document: remove this "---" and what follows, or move it to a file of its own',
        path: '',
      }
    }

    default: {
      return {...where, message: `invalid YAML: ${lowerFirst(problem.message)}`, path: ''}
    }
  }
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && typeof key.value === 'symbol' && key.value.description === '<<'
}

/**
 * Aliases (`*name`) whose anchor (`&name`) is not defined before them, and merge keys (`<<`) given
 * something other than maps: found here, where their position is known, rather than while converting.
 */
function aliasAndMergeIssues(doc: Document, lineCounter: LineCounter, file: string): RecipeIssue[] {
  const issues: RecipeIssue[] = []
  const add = (node: Node, path: PropertyKey[], message: string) => {
    const {col, line} = lineCounter.linePos(node.range?.[0] ?? 0)
    issues.push({column: col, file, line, message, path: formatPath(path)})
  }

  const isMapLike = (node: unknown) => isMap(isAlias(node) ? node.resolve(doc) : node)
  visit(doc, {
    Alias(_, alias, ancestry) {
      if (alias.resolve(doc) !== undefined) return
      add(
        alias,
        pathOfAncestry(ancestry, alias),
        `unknown anchor "${alias.source}": define it with &${alias.source} before its alias *${alias.source}`,
      )
    },
    Pair(_, pair, ancestry) {
      if (!isMergeKey(pair.key)) return
      const {value} = pair
      const ok = isMapLike(value) || (isSeq(value) && value.items.every((item) => isMapLike(item)))
      if (!ok && isAlias(value) && value.resolve(doc) === undefined) return // reported as an unknown anchor
      if (!ok) {
        add(
          (value ?? pair.key) as Node,
          pathOfAncestry(ancestry.slice(0, -1), ancestry.at(-1)),
          'a merge key "<<" takes a map, an alias of one, or a list of them',
        )
      }
    },
  })
  return issues
}

/** The pair whose key starts at `offset`, its key path and where the same key first appears in its map. */
function findPairWithKeyAt(
  doc: Document,
  offset: number,
): undefined | {firstOffset: number | undefined; key: string; path: PropertyKey[]} {
  let found: undefined | {firstOffset: number | undefined; key: string; path: PropertyKey[]}
  visit(doc, {
    Pair(_, pair, ancestry) {
      const key = pair.key as Node | null
      if (key?.range?.[0] !== offset) return
      const name = keyName(key)
      const parent = ancestry.at(-1)
      const first = isMap(parent) ? parent.items.find((item) => item !== pair && keyName(item.key) === name) : undefined
      found = {
        firstOffset: (first?.key as Node | undefined)?.range?.[0],
        key: name,
        path: [...pathOfAncestry(ancestry.slice(0, -1), parent), name],
      }
      return visit.BREAK
    },
  })
  return found
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

class IssueLocator {
  readonly issues: RecipeIssue[] = []

  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    private readonly file: string,
    readonly data: unknown,
  ) {}

  add(path: KeyPath, anchor: Anchor, message: string): void {
    const at = positionOf(this.doc, this.lineCounter, path, anchor)
    this.issues.push({file: this.file, ...at, message, path: formatPath(path)})
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

    const expected = branches.map((branch) => {
      const message = branch[0]?.message ?? ''
      return message.replace(/^expected (.*), got .*$/, '$1')
    })
    this.add(
      path,
      'value',
      `expected ${[...new Set(expected)].join(' or ')}, got ${describeValue(valueAt(this.data, path))}`,
    )
  }
}

function checkReferences(locator: IssueLocator, data: unknown, providers: readonly SectionProvider<unknown>[]): void {
  if (!isPlainMap(data)) return
  const hostNames = new Set(isPlainMap(data.hosts) ? Object.keys(data.hosts) : [])
  hostNames.add(LOCAL_HOST)
  const registryNames = new Set(isPlainMap(data.registries) ? Object.keys(data.registries) : [])

  for (const provider of providers) {
    const raw = data[provider.section]
    if (raw === undefined || provider.references === undefined) continue
    // each section on its own, so that one invalid section does not hide the references of another
    const section = provider.schema.safeParse(raw, {error: recipeErrorMap})
    if (!section.success) continue
    for (const reference of provider.references(section.data)) {
      const known = reference.kind === 'host' ? hostNames : registryNames
      if (known.has(reference.name)) continue
      const names = [...known].sort()
      const list =
        names.length > 0
          ? `known: ${names.join(', ')}`
          : `no ${reference.kind === 'host' ? 'hosts' : 'registries'} are defined`
      locator.add(
        [provider.section, ...reference.path],
        'value',
        `unknown ${reference.kind} ${JSON.stringify(reference.name)} (${list})`,
      )
    }
  }
}
