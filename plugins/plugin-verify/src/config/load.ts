/**
 * Loading a verification config with the kit's YAML loader, read as container-structure-test reads it:
 * `.yaml`/`.yml` as YAML 1.1 (go-yaml v2), `.json` as encoding/json does (see dialects.ts). Every problem
 * found is thrown at once in a RecipeError, each with file, line, column and key path.
 */
import {UsageError} from '@transship/kit'
import {loadYamlFile, parseYamlText, YAML_LIMITS, type YamlDocumentSpec, type YamlFileSpec} from '@transship/kit/yaml'

import type {VerifyConfig} from './types.js'

import {applyJsonDefaults, canonicalJsonKeys, isJsonFile, withoutNulls} from './dialects.js'
import {SCHEMA_VERSION, verifyConfigSchema, verifyErrorMap} from './schema.js'

const START_HINT = `start with \`schemaVersion: "${SCHEMA_VERSION}"\``

export interface LoadVerifyConfigOptions {
  /** stops the loading (with the signal's reason) between its steps */
  signal?: AbortSignal
}

/** Read, parse and validate a config file. Throws a UsageError when it cannot be read, a RecipeError when invalid. */
export async function loadVerifyConfig(file: string, options: LoadVerifyConfigOptions = {}): Promise<VerifyConfig> {
  return loadYamlFile(file, {...configSpec(file), ...CONFIG_FILE}, options)
}

/** Parse and validate config text (YAML or JSON); `file` names it in messages. Throws a RecipeError. */
export function parseVerifyConfig(text: string, file: string): VerifyConfig {
  return parseYamlText(text, file, configSpec(file))
}

/** How a config file that cannot be read is reported; a pipe (`--config <(...)`) is read like a file. */
const CONFIG_FILE: YamlFileSpec = {
  fileError(problem, file) {
    switch (problem.reason) {
      case 'directory': {
        return new UsageError(`${file} is a directory, not a verification config file`, {code: 'NOT_A_FILE'})
      }

      case 'not-a-file': {
        return new UsageError(`${file} is not a file`, {code: 'NOT_A_FILE'})
      }

      case 'not-found': {
        return new UsageError(`verification config ${file} not found`, {
          cause: problem.cause,
          code: 'FILE_NOT_FOUND',
          details: {file},
          suggestions: problem.suggestions,
        })
      }

      case 'unreadable': {
        return new UsageError(`verification config ${file} cannot be read: ${problem.detail}`, {
          cause: problem.cause,
          code: 'FILE_UNREADABLE',
          details: {file},
        })
      }
    }
  },
  names: /\.(?:ya?ml|json)$/i,
}

function configSpec(file: string): YamlDocumentSpec<VerifyConfig> {
  const json = isJsonFile(file)
  return {
    empty: `the config is empty: ${START_HINT}`,
    errorMap: verifyErrorMap,
    kind: 'a verification config',
    multipleDocuments: 'a config is a single YAML document: give each further one in a file of its own',
    notAMap: (what) => `a config is a map of keys, not ${what}: ${START_HINT}`,
    prepare({data, doc}, issues) {
      if (!json) return withoutNulls(data)
      // keys in the schema's spelling, renamed in the document; its data read again (it has passed the limits)
      const keyProblems = canonicalJsonKeys(doc, verifyConfigSchema)
      for (const problem of keyProblems) issues.add(problem.path, 'key', problem.message)
      if (keyProblems.length > 0) return data
      const prepared = withoutNulls(doc.toJS({maxAliasCount: YAML_LIMITS.aliasExpansions}))
      applyJsonDefaults(prepared)
      return prepared
    },
    // go-yaml gives a string field the text of any scalar: `value: 8080` is the string "8080"
    scalarsAsStrings: true,
    schema: verifyConfigSchema,
    syntax: json ? 'JSON' : 'YAML',
    // container-structure-test reads YAML with go-yaml v2: YAML 1.1, where yes/no/on/off are booleans
    ...(json ? {} : {version: '1.1' as const}),
  }
}
