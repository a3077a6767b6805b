// Recipes for end-to-end tests, written as typed objects and serialised with the yaml package, so that a test
// says which keys and values it means and the YAML syntax is the library's concern.
import type {z} from 'zod'

import {writeFile} from 'node:fs/promises'
import YAML from 'yaml'

import type {imageSchema} from '../../plugins/plugin-images/src/section.js'
import type {rootfsImageSchema} from '../../plugins/plugin-rootfs/src/section.js'
import type {verifyEntrySchema} from '../../plugins/plugin-verify/src/section.js'
import type {volumeSchema} from '../../plugins/plugin-volumes/src/section.js'
import type {hostSpecSchema, registrySpecSchema} from '../../src/recipe/schema.js'

/** A recipe as a user writes it: each section typed by the schema that reads it. */
export interface RecipeSpec {
  hosts?: Record<string, z.input<typeof hostSpecSchema>>
  images?: z.input<typeof imageSchema>[]
  registries?: Record<string, z.input<typeof registrySpecSchema>>
  rootfs?: z.input<typeof rootfsImageSchema>[]
  verify?: z.input<typeof verifyEntrySchema>[]
  /** default 1 */
  version?: number
  volumes?: z.input<typeof volumeSchema>[]
}

export interface Recipe {
  /** the recipe as YAML */
  readonly text: string
  /** writes the YAML to `file`; returns `file` */
  write(file: string): Promise<string>
}

/** The order a user reads a recipe in: the hosts and registries first, then each section after what it uses. */
const KEY_ORDER = ['version', 'hosts', 'registries', 'rootfs', 'images', 'volumes', 'verify'] as const

/** The key that names each item of a section, written first (as in the README's recipes). */
const NAME_KEYS = ['ref', 'name', 'image']

/**
 * A recipe in block style: `version: 1` and the sections in KEY_ORDER, each item with its name key first, so
 * that the line a value lands on is the one a reader expects.
 */
export function recipeYaml(spec: RecipeSpec): Recipe {
  const full: RecipeSpec = {version: 1, ...spec}
  const ordered: Record<string, unknown> = {}
  for (const key of KEY_ORDER) {
    const value = full[key]
    if (value !== undefined) ordered[key] = Array.isArray(value) ? value.map((item) => nameFirst(item)) : value
  }

  // lineWidth 0: long values (a huge reference) stay on their line, as a user would write them
  const text = YAML.stringify(ordered, {lineWidth: 0})
  return {
    text,
    async write(file) {
      await writeFile(file, text)
      return file
    },
  }
}

function nameFirst(item: object): object {
  const name = NAME_KEYS.find((key) => key in item)
  if (!name) return item
  const {[name]: value, ...rest} = item as Record<string, unknown>
  return {[name]: value, ...rest}
}
