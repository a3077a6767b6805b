// `recipe validate` and `recipe schema` through the real CLI: every example recipe is valid, every kind of
// invalid recipe gives one positioned line and exit 2, and recipes/schema.json is what the code exports.
import {readdir, readFile, truncate, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {repoRoot, transship} from '../helpers/cli.js'
import {describeE2E, tempHome, type TempHome} from '../helpers/testbed.js'

describeE2E('transship recipe', () => {
  let home: TempHome
  beforeAll(async () => {
    home = await tempHome()
  })
  afterAll(async () => home.cleanup())

  it('validates every example recipe', async () => {
    const recipes = (await readdir(path.join(repoRoot, 'recipes'))).filter((file) => file.endsWith('.yaml'))
    expect(recipes.length).toBeGreaterThan(1)
    const result = await transship(['recipe', 'validate', ...recipes.map((file) => `recipes/${file}`)], {
      env: {PWD: repoRoot},
      home: home.home,
    })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    for (const file of recipes) expect(result.stdout).toContain(`recipes/${file}: valid`)
  })

  const invalid: Array<[string, RegExp]> = [
    [
      'unknown-key-top.yaml',
      /^test\/fixtures\/recipes\/unknown-key-top\.yaml:\d+:\d+ imgaes: unknown key "imgaes" \(did you mean "images"\?\)$/m,
    ],
    ['wrong-type.yaml', /^test\/fixtures\/recipes\/wrong-type\.yaml:\d+:\d+ \S+: /m],
    ['yaml-syntax.yaml', /^test\/fixtures\/recipes\/yaml-syntax\.yaml:\d+:\d+/m],
    ['password.yaml', /secrets are not written in recipes/],
    ['missing-file.yaml', /^test\/fixtures\/recipes\/missing-file\.yaml: no such file/m],
  ]
  it.each(invalid)('refuses %s with one positioned line and exit 2', async (file, expected) => {
    const result = await transship(['recipe', 'validate', `test/fixtures/recipes/${file}`], {home: home.home})
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(expected)
    expect(result.stderr).not.toMatch(/\n\s+at /) // no stack trace for an expected failure
  })

  it('names an unknown host reference with its key path', async () => {
    const result = await transship(['recipe', 'validate', 'test/fixtures/recipes/unknown-from-host.yaml', '--json'], {
      home: home.home,
    })
    expect(result.code).toBe(2)
    const output = JSON.parse(result.stdout) as {
      error: {code: string; details: {issues: Array<{message: string; path: string}>}}
    }
    expect(output.error.code).toBe('RECIPE_INVALID')
    expect(output.error.details.issues.some((issue) => /unknown host "edg"/.test(issue.message))).toBe(true)
  })

  it('refuses an oversize recipe and a deeply nested one with exit 2 and what to do, in a moment', async () => {
    const huge = path.join(home.home, 'huge.yaml')
    await writeFile(huge, 'version: 1\n')
    await truncate(huge, 50_000_000) // sparse: 50 MB that need not be read
    const deep = path.join(home.home, 'deep.yaml')
    await writeFile(deep, `version: 1\nimages: ${'['.repeat(200_000)}`)
    const keys = path.join(home.home, 'keys.yaml')
    await writeFile(keys, `version: 1\n${Array.from({length: 40_000}, (_, i) => `k${i}: 0\n`).join('')}`)

    const started = performance.now()
    const result = await transship(['recipe', 'validate', huge, deep, keys], {home: home.home})
    const elapsed = performance.now() - started
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    const lines = result.stderr.trimEnd().split('\n')
    expect(lines[0]).toBe(
      `${huge}: is 50.0 MB (50000000 bytes); a recipe may be at most 500 kB: check that it is the file you meant`,
    )
    expect(lines[1]).toBe(
      `${deep}:2:72: maps and lists nested more than 64 levels deep: refused (a recipe needs a handful; look for brackets left open)`,
    )
    expect(lines[2]).toBe(
      `${keys}:2:1 k0: unknown key "k0" (allowed: hosts, images, registries, rootfs, verify, version, volumes)`,
    )
    expect(lines.at(-1)).toBe(`${keys}: and 39900 more issues (only the first 100 are listed): fix these and run again`)
    expect(lines).toHaveLength(2 + 101)
    expect(result.stderr).not.toMatch(/\n\s+at /)
    // before the bounds: out of memory after minutes (the brackets), over an hour (the keys)
    expect(elapsed).toBeLessThan(30_000)
  })

  it('exports the schema that recipes/schema.json holds', async () => {
    const result = await transship(['recipe', 'schema'], {home: home.home})
    expect(result.code).toBe(0)
    const committed = await readFile(path.join(repoRoot, 'recipes', 'schema.json'), 'utf8')
    expect(JSON.parse(result.stdout)).toEqual(JSON.parse(committed))
    expect(JSON.parse(result.stdout)).toMatchObject({additionalProperties: false, properties: {images: {}, hosts: {}}})
  })
})
