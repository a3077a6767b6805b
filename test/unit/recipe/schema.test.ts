import {TransshipError} from '@transship/kit'
import {formatPath} from '@transship/kit/yaml'
import {readFile} from 'node:fs/promises'
import {describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {hostEngine, recipeErrorMap, recipeJsonSchema, recipeSchema} from '../../../src/recipe/schema.js'
import {imagesProvider, pushProvider, tagsProvider} from './fake-providers.js'

type JsonSchema = Record<string, unknown>

function kindOf(value: unknown): string {
  return Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value
}

function typeMatches(type: string, value: unknown): boolean {
  return type === kindOf(value) || (type === 'integer' && Number.isInteger(value))
}

function objectViolations(schema: JsonSchema, object: Record<string, unknown>, at: string): string[] {
  const out: string[] = []
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>
  for (const key of (schema.required ?? []) as string[]) if (!(key in object)) out.push(`${at}.${key}: required`)
  for (const [key, child] of Object.entries(object)) {
    if (schema.propertyNames) out.push(...violations(schema.propertyNames as JsonSchema, key, `${at}{${key}}`))
    const childSchema = properties[key] ?? schema.additionalProperties
    if (childSchema === false) out.push(`${at}.${key}: not allowed`)
    else if (typeof childSchema === 'object') out.push(...violations(childSchema as JsonSchema, child, `${at}.${key}`))
  }

  return out
}

/**
 * Just enough of JSON Schema to check that the schema accepts what users write and refuses typos: type,
 * properties, required, additionalProperties, propertyNames, items, const, enum, pattern, minLength, anyOf.
 */
function violations(schema: JsonSchema, value: unknown, at = '$'): string[] {
  if (typeof schema.type === 'string' && !typeMatches(schema.type, value)) {
    return [`${at}: expected ${schema.type}, got ${kindOf(value)}`]
  }

  const out: string[] = []
  if ('const' in schema && schema.const !== value) out.push(`${at}: expected ${String(schema.const)}`)
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) out.push(`${at}: not in enum`)
  if (typeof value === 'string' && typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) {
    out.push(`${at}: pattern`)
  }

  if (typeof value === 'string' && typeof schema.minLength === 'number' && value.length < schema.minLength) {
    out.push(`${at}: minLength`)
  }

  const anyOf = schema.anyOf as JsonSchema[] | undefined
  if (anyOf && !anyOf.some((option) => violations(option, value, at).length === 0)) out.push(`${at}: no anyOf branch`)
  if (Array.isArray(value) && schema.items) {
    for (const [i, item] of value.entries()) out.push(...violations(schema.items as JsonSchema, item, `${at}[${i}]`))
  }

  if (kindOf(value) === 'object') out.push(...objectViolations(schema, value as Record<string, unknown>, at))
  return out
}

describe('recipeJsonSchema', () => {
  const schema = recipeJsonSchema([imagesProvider])

  it('describes the core keys and the installed sections, and allows nothing else', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#')
    expect(schema.title).toBe('transship recipe')
    expect(schema).not.toHaveProperty('$id')
    expect(schema.type).toBe('object')
    expect(schema.additionalProperties).toBe(false)
    expect(schema.required).toEqual(['version'])
    const properties = schema.properties as Record<string, JsonSchema>
    expect(Object.keys(properties)).toEqual(['version', 'hosts', 'registries', 'images'])
    expect(properties.hosts).toMatchObject({propertyNames: {pattern: '^[a-z0-9][a-z0-9_.-]*$'}, type: 'object'})
    expect(properties.hosts?.additionalProperties).toMatchObject({additionalProperties: false, type: 'object'})
    expect(properties.images).toMatchObject({items: {additionalProperties: false, required: ['ref']}, type: 'array'})
  })

  it('sets $id when asked', () => {
    expect(recipeJsonSchema([], {id: 'https://example.com/schema.json'}).$id).toBe('https://example.com/schema.json')
  })

  it('accepts the recipes users write', async () => {
    const recipe: unknown = parse(await readFile(new URL('../../fixtures/recipes/valid.yaml', import.meta.url), 'utf8'))
    expect(violations(schema, recipe)).toEqual([])
    expect(violations(schema, {version: 1})).toEqual([])
  })

  it('refuses typos, secrets and sections with no plugin', () => {
    expect(violations(schema, {imgaes: [], version: 1})).toEqual(['$.imgaes: not allowed'])
    expect(violations(schema, {hosts: {edge: {sssh: 'a@b'}}, version: 1})).toEqual(['$.hosts.edge.sssh: not allowed'])
    expect(violations(schema, {registries: {corp: {auth: {password: 'x'}, url: 'r.example.com'}}, version: 1})).toEqual(
      ['$.registries.corp.auth.password: not allowed'],
    )
    expect(violations(schema, {version: 1, volumes: []})).toEqual(['$.volumes: not allowed'])
    expect(violations(schema, {hosts: {'My Host': {}}, version: 2})).toEqual([
      '$.hosts{My Host}: pattern',
      '$.version: expected 1',
    ])
  })

  it('includes a plugin schema with unions', () => {
    const properties = recipeJsonSchema([pushProvider, tagsProvider]).properties as Record<string, JsonSchema>
    expect(Object.keys(properties)).toEqual(['version', 'hosts', 'registries', 'push', 'tags'])
    expect(properties.tags).toHaveProperty('anyOf')
  })
})

describe('recipeSchema', () => {
  it('refuses a plugin that claims a core key or a section another plugin has', () => {
    expect(() => recipeSchema([{...imagesProvider, section: 'hosts'}])).toThrow(TransshipError)
    expect(() => recipeSchema([imagesProvider, {...imagesProvider, plugin: 'other'}])).toThrow(
      'plugins @example/plugin-images and other both handle section "images"',
    )
  })

  it('gives a section no installed plugin handles its own message', () => {
    const result = recipeSchema([]).safeParse({images: [], version: 1}, {error: recipeErrorMap})
    expect(result.error?.issues.map((issue) => issue.message)).toEqual(['no installed plugin handles section "images"'])
  })

  it('types the core keys', () => {
    const result = recipeSchema([]).safeParse({hosts: {a: {ssh: 'a@b'}}, version: 1})
    expect(result.data?.hosts?.a?.ssh).toBe('a@b')
  })
})

describe('helpers', () => {
  it('renders key paths', () => {
    expect(formatPath(['images', 0, 'copy', 1])).toBe('images[0].copy[1]')
    expect(formatPath(['hosts', 'edge', 'ssh'])).toBe('hosts.edge.ssh')
    expect(formatPath(['hosts', 'my host'])).toBe('hosts["my host"]')
    expect(formatPath(['hosts', 'my.mirror', 'engine'])).toBe('hosts["my.mirror"].engine')
    expect(formatPath([])).toBe('')
  })

  it('gives each host its engine', () => {
    expect(hostEngine({})).toBe('local')
    expect(hostEngine({ssh: 'a@b'})).toBe('/var/run/docker.sock')
    expect(hostEngine({engine: '/run/docker.sock', ssh: 'a@b'})).toBe('/run/docker.sock')
  })
})
