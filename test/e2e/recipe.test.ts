// `recipe validate` and `recipe schema` through the real CLI: every example recipe is valid, every kind of
// invalid recipe gives one positioned line and exit 2, and recipes/schema.json is what the code exports.
import {readdir, readFile} from 'node:fs/promises'
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

  it('exports the schema that recipes/schema.json holds', async () => {
    const result = await transship(['recipe', 'schema'], {home: home.home})
    expect(result.code).toBe(0)
    const committed = await readFile(path.join(repoRoot, 'recipes', 'schema.json'), 'utf8')
    expect(JSON.parse(result.stdout)).toEqual(JSON.parse(committed))
    expect(JSON.parse(result.stdout)).toMatchObject({additionalProperties: false, properties: {images: {}, hosts: {}}})
  })
})
