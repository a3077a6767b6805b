// Hostile verification configs, generated here: they share the recipes' YAML loading, so they are refused or
// validated in a moment too, with a RecipeError (exit 2) that names the file, never a crash or a hang.
import {RecipeError} from '@transship/kit'
import {MAX_ISSUES, YAML_LIMITS, YamlErrorCode} from '@transship/kit/yaml'
import {execFile} from 'node:child_process'
import {createWriteStream} from 'node:fs'
import {mkdtemp, rm, truncate, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {issueLines as messages, type Refusal, refusal as refuse} from '../../../../test/helpers/yaml-refusal.js'
import {loadVerifyConfig, parseVerifyConfig} from '../../src/config/load.js'

/** Far more than the bounded code takes on a busy machine, far less than the unbounded one took. */
const GENEROUS_MS = 15_000
const TIMEOUT = {timeout: 60_000}

function refusal(text: string, file = 'v.yaml'): Refusal {
  return refuse(() => parseVerifyConfig(text, file))
}

describe('verification config bounds', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verify-bounds-'))
  })
  afterAll(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  it('refuses a 50 MB file by its size, without reading it', async () => {
    const file = join(dir, 'huge.yaml')
    await writeFile(file, 'schemaVersion: "2.0.0"\n')
    await truncate(file, 50_000_000)
    const error = await loadVerifyConfig(file).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(RecipeError)
    expect(error).toMatchObject({code: YamlErrorCode.TooLarge, exit: 2})
    expect((error as RecipeError).message).toBe(
      `${file}: is 50.0 MB (50000000 bytes); a verification config may be at most 500 kB: check that it is the file you meant`,
    )
  })

  it('reads a pipe no further than the limit', async () => {
    const fifo = join(dir, 'config.fifo')
    await promisify(execFile)('mkfifo', [fifo])
    // the writer offers twice the limit; the reader stops one byte past it and closes the pipe
    const writer = createWriteStream(fifo)
    writer.on('error', () => {}) // EPIPE once the reader has closed
    writer.write(`schemaVersion: "2.0.0"\n${'#'.repeat(2 * YAML_LIMITS.bytes)}\n`)
    const error = await loadVerifyConfig(fifo).catch((error_: unknown) => error_)
    writer.destroy()
    expect(error).toMatchObject({code: YamlErrorCode.TooLarge, exit: 2})
    expect((error as RecipeError).message).toBe(
      `${fifo}: is more than 500 kB; a verification config may be at most 500 kB: check that it is the file you meant`,
    )
  })

  it('reads a device no further than the limit', async () => {
    await expect(loadVerifyConfig('/dev/zero')).rejects.toMatchObject({
      code: YamlErrorCode.TooLarge,
      message:
        '/dev/zero: is more than 500 kB; a verification config may be at most 500 kB: check that it is the file you meant',
    })
  })

  it('reads a config from a pipe', async () => {
    const fifo = join(dir, 'small.fifo')
    await promisify(execFile)('mkfifo', [fifo])
    const writer = createWriteStream(fifo)
    writer.end('schemaVersion: "2.0.0"\ncommandTests: []\n')
    await expect(loadVerifyConfig(fifo)).resolves.toMatchObject({schemaVersion: '2.0.0'})
  })

  it('refuses deep nesting at the first level too deep, at once', () => {
    const {error, ms} = refusal(`schemaVersion: "2.0.0"\nx: ${'['.repeat(400_000)}`)
    expect(ms).toBeLessThan(5000)
    expect(messages(error)).toEqual([
      `v.yaml:2:${3 + YAML_LIMITS.depth}: maps and lists nested more than ${YAML_LIMITS.depth} levels deep: refused (a verification config needs a handful; look for brackets left open)`,
    ])
    expect(refusal(`{"a": ${'['.repeat(1000)}`, 'v.json').error.code).toBe(YamlErrorCode.TooDeep)
  })

  it('classifies the alias expansion limit by its error class', () => {
    const {error} = refusal(
      [
        'schemaVersion: "2.0.0"',
        'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
        'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
        'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      ].join('\n'),
    )
    expect(error.code).toBe(YamlErrorCode.AliasExpansion)
    expect(error.cause).toBeInstanceOf(ReferenceError)
  })

  it('shows keys with control characters escaped, and a long one shortened', () => {
    const escaped = refusal(String.raw`{schemaVersion: "2.0.0", "\e[2Jx": 1}`).error
    expect(messages(escaped)[0]).toMatch(/^v\.yaml:1:26 \["\\u001b\[2Jx"\]: unknown key "\\u001b\[2Jx" \(allowed: /)
    const long = refusal(`{schemaVersion: "2.0.0", ${'k'.repeat(400_000)}: 1}`).error
    expect(long.message.length).toBeLessThan(1200)
  })

  it('validates 50k unknown keys in linear time and reports the first 100', TIMEOUT, () => {
    const lines = ['schemaVersion: "2.0.0"']
    for (let i = 0; i < 50_000; i++) lines.push(`k${i}: 0`)
    const {error, ms} = refusal(lines.join('\n'))
    expect(ms).toBeLessThan(GENEROUS_MS)
    const shown = messages(error)
    expect(shown).toHaveLength(MAX_ISSUES + 1)
    expect(shown[0]).toMatch(/^v\.yaml:2:1 k0: unknown key "k0"/)
    expect(shown.at(-1)).toBe('v.yaml: and 49900 more issues (only the first 100 are listed): fix these and run again')
  })

  it('finds 40k duplicate keys in linear time', TIMEOUT, () => {
    const {error, ms} = refusal(`schemaVersion: "2.0.0"\n${'a: 0\n'.repeat(40_000)}`)
    expect(ms).toBeLessThan(GENEROUS_MS)
    expect(messages(error)[0]).toBe('v.yaml:3:1 a: duplicate key "a" (first on line 2)')
    expect(messages(error).at(-1)).toMatch(/^v\.yaml: and 39899 more issues/)
  })
})
