/**
 * How container-structure-test reads its two file formats, where they differ from plain YAML:
 * - `.yaml`/`.yml` with go-yaml v2: YAML 1.1 (yes/no/on/off are booleans), null leaves a field unset;
 * - `.json` with encoding/json, which knows no yaml tags: keys match the Go field names in any case, so the TTY
 *   option is `tty` there (not `allocateTty`), and the defaults are Go's zero values, not the ones the YAML
 *   reader sets: a file existence test without `shouldExist` means "must not exist", without uid/gid "owned by 0".
 */
import type {z} from 'zod'

import {type Document, isMap, isScalar, isSeq, type Node} from 'yaml'

import {containerRunOptionsSchema} from './schema.js'

/** Whether `file` is read as JSON (CST decides by the name's extension). */
export function isJsonFile(file: string): boolean {
  return /\.json$/i.test(file)
}

export interface KeyProblem {
  message: string
  /** the key node's path */
  path: Array<number | string>
}

/**
 * Renames the keys of a JSON document to the schema's spelling where they match in another case (encoding/json
 * matches case-insensitively), in place, so that positions stay right. `allocateTty` is a problem: in JSON CST
 * reads the option from `tty` (its Go field is TTY) and ignores `allocateTty`.
 */
export function canonicalJsonKeys(doc: Document, schema: z.ZodType): KeyProblem[] {
  const problems: KeyProblem[] = []
  walk(doc.contents as Node | null, schema, [], problems)
  return problems
}

function walk(
  node: Node | null | undefined,
  schema: undefined | z.ZodType,
  path: Array<number | string>,
  out: KeyProblem[],
): void {
  const shape = objectShape(schema)
  if (isMap(node) && shape) {
    const keys = Object.keys(shape)
    const isRunOptions = unwrap(schema) === (containerRunOptionsSchema as unknown)
    for (const pair of node.items) {
      if (!isScalar(pair.key) || typeof pair.key.value !== 'string') continue
      const given = pair.key.value
      if (isRunOptions && given === 'allocateTty') {
        out.push({
          message:
            'in a JSON test file container-structure-test reads the TTY option as "tty" (its Go field TTY) and ignores "allocateTty": write "tty"',
          path: [...path, given],
        })
        continue
      }

      const lower = given.toLowerCase()
      let canonical = keys.includes(given) ? given : keys.find((key) => key.toLowerCase() === lower)
      if (isRunOptions && lower === 'tty') canonical = 'allocateTty'
      if (canonical !== undefined && canonical !== given) pair.key.value = canonical
      walk(
        pair.value as Node | null,
        canonical === undefined ? undefined : shape[canonical],
        [...path, canonical ?? given],
        out,
      )
    }

    return
  }

  const element = arrayElement(schema)
  if (isSeq(node) && element) {
    for (const [index, item] of node.items.entries()) walk(item as Node | null, element, [...path, index], out)
  }
}

interface Def {
  element?: z.ZodType
  in?: z.ZodType
  innerType?: z.ZodType
  out?: z.ZodType
  shape?: Record<string, z.ZodType>
  type?: string
}

function defOf(schema: unknown): Def | undefined {
  return (schema as undefined | {_zod?: {def?: Def}})?._zod?.def
}

/** The schema below optional/default/nullable/pipe wrappers. */
function unwrap(schema: unknown): unknown {
  let current = schema
  for (let depth = 0; depth < 10; depth++) {
    const def = defOf(current)
    if (!def) return current
    if (def.innerType) current = def.innerType
    else if (def.type === 'pipe') current = def.out
    else return current
  }

  return current
}

function objectShape(schema: unknown): Record<string, z.ZodType> | undefined {
  return defOf(unwrap(schema))?.shape
}

function arrayElement(schema: unknown): undefined | z.ZodType {
  const def = defOf(unwrap(schema))
  return def?.type === 'array' ? def.element : undefined
}

/** Removes null values from maps, recursively (go-yaml and encoding/json leave such fields unset). */
export function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => withoutNulls(item))
  if (value === null || typeof value !== 'object') return value
  const result: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) if (item !== null) result[key] = withoutNulls(item)
  return result
}

/** encoding/json's defaults of a file existence test: the Go zero values (the YAML reader sets true, -1, -1). */
export function applyJsonDefaults(data: unknown): void {
  const tests = (data as undefined | {fileExistenceTests?: unknown})?.fileExistenceTests
  if (!Array.isArray(tests)) return
  for (const test of tests) {
    if (test === null || typeof test !== 'object' || Array.isArray(test)) continue
    const record = test as Record<string, unknown>
    record.shouldExist ??= false
    record.uid ??= 0
    record.gid ??= 0
  }
}
