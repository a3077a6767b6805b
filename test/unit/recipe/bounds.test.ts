// Hostile recipes, generated here (deterministically): every one is refused or validated in a moment, with
// a RecipeError (exit 2) that names the file and says what is wrong, never a crash or a hang.
import {RecipeError} from '@transship/kit'
import {MAX_ISSUES, YAML_LIMITS, YamlErrorCode} from '@transship/kit/yaml'
import {mkdtemp, rm, truncate, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadRecipe, parseRecipe} from '../../../src/recipe/load.js'
import {issueLines as messages, type Refusal, refusal as refuse} from '../../helpers/yaml-refusal.js'
import {imagesProvider} from './fake-providers.js'

/** Far more than the bounded code takes on a busy machine, far less than the unbounded one took. */
const GENEROUS_MS = 15_000
/** For the tests that time themselves: room for the bound, and the generating and checking around it. */
const TIMEOUT = {timeout: 60_000}

/* eslint-disable no-bitwise -- arithmetic modulo 2^32 */
/** Bytes from a fixed linear congruential sequence: the same on every run. */
function pseudoRandomBytes(length: number, seed = 12_345): Buffer {
  const bytes = Buffer.alloc(length)
  let state = seed
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0
    bytes[i] = state >>> 24
  }

  return bytes
}
/* eslint-enable no-bitwise */

/** Characters a terminal acts on (C0 but tab, DEL, C1). */
function hasControlCharacters(text: string): boolean {
  return [...text].some((char) => {
    const code = char.codePointAt(0)!
    return (code < 0x20 && code !== 0x09) || (code >= 0x7f && code <= 0x9f)
  })
}

/** `x:` holding a value inside `levels` maps and lists, the top map included. */
function nested(levels: number): string {
  return `version: 1\nx: ${'['.repeat(levels - 1)}1${']'.repeat(levels - 1)}\n`
}

function lines(count: number, line: (i: number) => string, head = 'version: 1'): string {
  const out = [head]
  for (let i = 0; i < count; i++) out.push(line(i))
  return `${out.join('\n')}\n`
}

function refusal(text: string): Refusal {
  return refuse(() => parseRecipe(text, {file: 'r.yaml', path: '/tmp/r.yaml'}, [imagesProvider]))
}

describe('recipe size', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'recipe-bounds-'))
  })
  afterAll(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  it('refuses a 50 MB file by its size, without reading it', async () => {
    const file = join(dir, 'huge.yaml')
    await writeFile(file, 'version: 1\n')
    await truncate(file, 50_000_000) // sparse: the size is there, the bytes need not be read
    const started = performance.now()
    const error = await loadRecipe(file, [imagesProvider]).catch((error_: unknown) => error_)
    expect(performance.now() - started).toBeLessThan(5000)
    expect(error).toBeInstanceOf(RecipeError)
    expect(error).toMatchObject({code: YamlErrorCode.TooLarge, exit: 2})
    expect((error as RecipeError).message).toBe(
      `${file}: is 50.0 MB (50000000 bytes); a recipe may be at most 500 kB: check that it is the file you meant`,
    )
  })

  it('takes a file at the limit, and refuses one byte more', async () => {
    const file = join(dir, 'limit.yaml')
    const text = `version: 1\n${'#'.repeat(YAML_LIMITS.bytes - 12)}\n`
    expect(Buffer.byteLength(text)).toBe(YAML_LIMITS.bytes)
    await writeFile(file, text)
    await expect(loadRecipe(file, [imagesProvider])).resolves.toMatchObject({version: 1})
    await writeFile(file, `${text}\n`)
    await expect(loadRecipe(file, [imagesProvider])).rejects.toMatchObject({code: YamlErrorCode.TooLarge})
  })

  it('refuses text over the limit given to parseRecipe', () => {
    const {error} = refusal(`version: 1\n${'#'.repeat(YAML_LIMITS.bytes)}\n`)
    expect(error.code).toBe(YamlErrorCode.TooLarge)
  })
})

describe('recipe nesting', () => {
  it('refuses 400 kB of "[" at the first level too deep, at once', () => {
    const {error, ms} = refusal(`version: 1\nx: ${'['.repeat(400_000)}`)
    expect(ms).toBeLessThan(5000)
    expect(error.code).toBe(YamlErrorCode.TooDeep)
    expect(messages(error)).toEqual([
      `r.yaml:2:${3 + YAML_LIMITS.depth}: maps and lists nested more than ${YAML_LIMITS.depth} levels deep: refused (a recipe needs a handful; look for brackets left open)`,
    ])
  })

  it.each([
    ['flow maps', (n: number) => `version: 1\nx: ${'{a: '.repeat(n)}`],
    ['compact lists', (n: number) => `version: 1\nx:\n${'- '.repeat(n)}1\n`],
    ['explicit keys', (n: number) => `version: 1\nx:\n${'? '.repeat(n)}1\n`],
    ['indentation', (n: number) => lines(n, (i) => `${' '.repeat(i + 1)}k${i}:`, 'version: 1\nx:')],
  ])('refuses deep %s the same way', (_, make) => {
    const {error, ms} = refusal(make(300))
    expect(ms).toBeLessThan(5000)
    expect(error.code).toBe(YamlErrorCode.TooDeep)
    expect(error.issues).toHaveLength(1)
    expect(error.issues[0]!.line).toBeGreaterThan(1)
  })

  it('takes 64 levels, and refuses 65', () => {
    // 64 levels with the top map: parsed, then validated as usual
    expect(messages(refusal(nested(YAML_LIMITS.depth)).error)).toEqual([
      `r.yaml:2:1 x: unknown key "x" (allowed: hosts, images, registries, version)`,
    ])
    expect(refusal(nested(YAML_LIMITS.depth + 1)).error.code).toBe(YamlErrorCode.TooDeep)
  })

  it('counts what aliases stand for', () => {
    const chain = lines(20, (i) => `a${i + 1}: &a${i + 1} [[[[[[[[*a${i}]]]]]]]]`, 'version: 1\na0: &a0 [1]')
    const {error} = refusal(chain)
    expect(error.code).toBe(YamlErrorCode.TooDeep)
    expect(messages(error)[0]).toMatch(
      /^r\.yaml:\d+:\d+: maps and lists nested more than 64 levels deep with what \*a\d+ stands for: refused/,
    )
  })
})

describe('recipe anchors and aliases', () => {
  it('classifies the expansion limit by its error class, not its text', async () => {
    const {error} = refusal(
      [
        'version: 1',
        'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
        'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
        'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      ].join('\n'),
    )
    expect(error.code).toBe(YamlErrorCode.AliasExpansion)
    expect(error.cause).toBeInstanceOf(ReferenceError)
    expect(messages(error)).toEqual([
      'r.yaml: its anchors and aliases expand too much (more than 100 aliases): refused',
    ])
  })

  it('refuses more anchors and aliases than any recipe needs', TIMEOUT, () => {
    const {error, ms} = refusal(lines(2000, (i) => `k${i}: [&a${i} x, *a${i}]`))
    expect(ms).toBeLessThan(GENEROUS_MS)
    expect(error.code).toBe(YamlErrorCode.TooManyAnchors)
    expect(messages(error)).toEqual([
      `r.yaml:502:14: more than ${YAML_LIMITS.anchorsAndAliases} anchors (&name) and aliases (*name): refused (a recipe needs a few)`,
    ])
  })

  it('refuses an alias inside its own anchor (data that would contain itself)', () => {
    expect(messages(refusal('version: 1\nhosts: &h\n  a: *h\n').error)).toEqual([
      'r.yaml:3:6 hosts.a: alias *h is inside its own anchor &h: the data would contain itself',
    ])
  })
})

describe('recipe issues, many of them', () => {
  it('validates 50k unknown keys in linear time and reports the first 100', TIMEOUT, () => {
    const {error, ms} = refusal(lines(50_000, (i) => `k${i}: 0`))
    expect(ms).toBeLessThan(GENEROUS_MS)
    expect(error.code).toBe('RECIPE_INVALID')
    const shown = messages(error)
    expect(shown).toHaveLength(MAX_ISSUES + 1)
    expect(shown[0]).toBe('r.yaml:2:1 k0: unknown key "k0" (allowed: hosts, images, registries, version)')
    expect(shown[MAX_ISSUES - 1]).toBe(
      'r.yaml:101:1 k99: unknown key "k99" (allowed: hosts, images, registries, version)',
    )
    expect(shown[MAX_ISSUES]).toBe(
      'r.yaml: and 49900 more issues (only the first 100 are listed): fix these and run again',
    )
  })

  it('keeps its did-you-mean among many unknown keys', TIMEOUT, () => {
    const {error} = refusal(lines(30_000, (i) => (i === 50 ? 'imgaes: []' : `zz${i}: 0`)))
    expect(messages(error)[50]).toBe('r.yaml:52:1 imgaes: unknown key "imgaes" (did you mean "images"?)')
    expect(error.issues.at(-1)!.message).toMatch(/^and 29900 more issues/)
  })

  it('finds 40k duplicate keys in linear time', TIMEOUT, () => {
    const {error, ms} = refusal(lines(40_000, () => '    ssh: x', 'version: 1\nhosts:\n  a:'))
    expect(ms).toBeLessThan(GENEROUS_MS)
    const shown = messages(error)
    expect(shown[0]).toBe('r.yaml:5:5 hosts.a.ssh: duplicate key "ssh" (first on line 4)')
    expect(shown.at(-1)).toBe('r.yaml: and 39899 more issues (only the first 100 are listed): fix these and run again')
  })

  it('finds duplicate keys in 20k maps of a list in linear time', TIMEOUT, () => {
    const {error, ms} = refusal(lines(20_000, () => '  - {ref: a, ref: b}', 'version: 1\nimages:'))
    expect(ms).toBeLessThan(GENEROUS_MS)
    expect(messages(error)[0]).toBe('r.yaml:3:14 images[0].ref: duplicate key "ref" (first on line 3)')
    expect(messages(error)[99]).toBe('r.yaml:102:14 images[99].ref: duplicate key "ref" (first on line 102)')
  })

  it('reports unknown hosts among thousands, listing a few of the known ones', TIMEOUT, () => {
    const text =
      lines(5000, (i) => `  h${i}: {}`, 'version: 1\nhosts:') +
      lines(5000, (i) => `  - {ref: a, copy: [x${i}]}`, 'images:')
    const {error, ms} = refusal(text)
    expect(ms).toBeLessThan(GENEROUS_MS)
    expect(messages(error)[0]).toBe(
      'r.yaml:5004:21 images[0].copy[0]: unknown host "x0" (known: h0, h1, h10, h100, h1000, h1001, h1002, h1003, h1004, h1005, h1006, h1007, h1008, h1009, h101, h1010, h1011, h1012, h1013, h1014 and 4981 more)',
    )
  })

  it('reports a file of random bytes as invalid YAML, a screenful at most, in a moment', TIMEOUT, () => {
    const text = pseudoRandomBytes(YAML_LIMITS.bytes)
      .toString('latin1')
      .slice(0, YAML_LIMITS.bytes / 2)
    const {error, ms} = refusal(text)
    expect(ms).toBeLessThan(GENEROUS_MS)
    expect(error.issues.length).toBeLessThanOrEqual(MAX_ISSUES + 1)
    for (const line of messages(error)) expect(hasControlCharacters(line), line).toBe(false)
  })

  it('reports a file of a hundred thousand syntax errors in a moment', TIMEOUT, () => {
    const {error, ms} = refusal('\t:\n'.repeat(100_000))
    expect(ms).toBeLessThan(GENEROUS_MS)
    expect(messages(error)[0]).toBe('r.yaml:1:1: invalid YAML: tabs are not allowed as indentation')
    expect(messages(error).at(-1)).toMatch(/^r\.yaml: and \d+ more issues \(only the first 100 are listed\)/)
  })

  it('shows keys with control characters escaped, and long ones shortened', () => {
    const {error} = refusal(`version: 1\n"\\e[2J\\u202E${'k'.repeat(100)}": 1\n`)
    expect(messages(error)).toEqual([
      `r.yaml:2:1 ["\\u001b[2J\\u202e${'k'.repeat(52)}..."]: unknown key "\\u001b[2J\\u202e${'k'.repeat(32)}..." (allowed: hosts, images, registries, version)`,
    ])
  })
})

describe('loadRecipe and Ctrl-C', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'recipe-abort-'))
  })
  afterAll(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  it('stops between its steps once the signal fires', TIMEOUT, async () => {
    const file = join(dir, 'keys.yaml')
    await writeFile(
      file,
      lines(40_000, (i) => `k${i}: 0`),
    )
    const controller = new AbortController()
    const loading = loadRecipe(file, [imagesProvider], {signal: controller.signal})
    const reason = new Error('interrupted')
    setImmediate(() => controller.abort(reason))
    await expect(loading).rejects.toBe(reason)
  })
})
