/**
 * Loading a recipe with the kit's YAML loader: validated against the core schema and the installed
 * plugins' sections, with the host and registry names that sections refer to checked. Every problem found
 * is thrown at once, each with file, line, column and key path.
 */
import {
  type RecipeContext,
  RecipeError,
  type RecipeIssue,
  type RecipeRegistry,
  type SectionProvider,
} from '@transship/kit'
import {
  formatPath,
  type IssueLocator,
  loadYamlFile,
  nameList,
  parseYamlText,
  quote,
  YAML_LIMITS,
  type YamlDocumentSpec,
  type YamlFileSpec,
} from '@transship/kit/yaml'
import {dirname, join, resolve} from 'node:path'

import {type HostSpec, LOCAL_HOST, type RecipeData, recipeErrorMap, recipeSchema, type RegistrySpec} from './schema.js'

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
  const data = await loadYamlFile(file, {...recipeSpec(providers), ...RECIPE_FILE}, options)
  return toRecipe(data, {file, path: resolve(file)}, providers)
}

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
  return toRecipe(parseYamlText(text, source.file, recipeSpec(providers)), source, providers)
}

function fileIssue(file: string, message: string): RecipeIssue {
  return {file, message, path: ''}
}

/** How a recipe file that cannot be read is reported. */
const RECIPE_FILE: YamlFileSpec = {
  fileError(problem, file) {
    switch (problem.reason) {
      case 'directory': {
        return new RecipeError([fileIssue(file, 'is a directory, not a recipe file')], {
          code: 'RECIPE_NOT_A_FILE',
          suggestions:
            problem.files.length > 0
              ? [`give one of the recipes in it, e.g. ${join(file, problem.files[0]!)}`]
              : ['give the path of a recipe file (YAML, starting with `version: 1`)'],
        })
      }

      case 'not-a-file': {
        return new RecipeError([fileIssue(file, 'is not a regular file')], {code: 'RECIPE_NOT_A_FILE'})
      }

      case 'not-found': {
        return new RecipeError([fileIssue(file, 'no such file')], {
          cause: problem.cause,
          code: 'RECIPE_NOT_FOUND',
          suggestions: problem.suggestions,
        })
      }

      case 'unreadable': {
        return new RecipeError([fileIssue(file, `cannot be read: ${problem.detail}`)], {
          cause: problem.cause,
          code: 'RECIPE_UNREADABLE',
        })
      }
    }
  },
  names: /\.ya?ml$/i,
  regularOnly: true,
}

/** What a recipe is: the core schema and the installed plugins' sections, and the names they refer to. */
function recipeSpec(providers: readonly SectionProvider<unknown>[]): YamlDocumentSpec<RecipeData> {
  return {
    check: (data, issues) => checkReferences(issues, data, providers),
    empty: 'the recipe is empty: start with `version: 1`',
    errorMap: recipeErrorMap,
    kind: 'a recipe',
    multipleDocuments:
      'a recipe is a single YAML document: remove this "---" and what follows, or move it to a file of its own',
    notAMap: (what) => `a recipe is a map of keys starting with \`version: 1\`, not ${what}`,
    schema: recipeSchema(providers),
  }
}

function toRecipe(parsed: RecipeData, source: RecipeSource, providers: readonly SectionProvider<unknown>[]): Recipe {
  const hosts: Record<string, HostSpec> = {...parsed.hosts}
  if (!Object.hasOwn(hosts, LOCAL_HOST)) hosts[LOCAL_HOST] = {engine: 'local'}
  const sections = providers
    .filter((provider) => parsed[provider.section] !== undefined)
    .map((provider) => ({path: formatPath([provider.section]), provider, value: parsed[provider.section]}))

  return {
    dir: dirname(source.path),
    file: source.file,
    hosts,
    path: source.path,
    registries: {...parsed.registries},
    sections,
    version: parsed.version,
  }
}

// ---------------------------------------------------------------------------------------------------------
// references

function isPlainMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function knownList(kind: 'host' | 'registry', known: ReadonlySet<string>): string {
  if (known.size === 0) return `no ${kind === 'host' ? 'hosts' : 'registries'} are defined`
  return `known: ${nameList(known)}`
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
