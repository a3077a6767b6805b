import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import type {VerifyConfig} from '../../src/config/types.js'

import {checksDigest, hasPassed, recordPass} from '../../src/passed-checks.js'

let cache: string
const saved = process.env.XDG_CACHE_HOME
// a cache of its own for each test, so that tests see only their own records, in any order
beforeEach(async () => {
  cache = await mkdtemp(path.join(os.tmpdir(), 'passed-checks-test-'))
  process.env.XDG_CACHE_HOME = cache
})
afterEach(async () => {
  if (saved === undefined) delete process.env.XDG_CACHE_HOME
  else process.env.XDG_CACHE_HOME = saved
  await rm(cache, {force: true, recursive: true})
})

const checks: VerifyConfig = {
  commandTests: [{args: ['-c', 'echo ok'], command: 'sh', expectedOutput: ['^ok$'], name: 'shell'}],
  schemaVersion: '2.0.0',
}

describe('passed checks', () => {
  it('digests the checks whatever the order of their keys, and tells other checks apart', () => {
    const reordered = JSON.parse(
      '{"schemaVersion":"2.0.0","commandTests":[{"name":"shell","expectedOutput":["^ok$"],"command":"sh","args":["-c","echo ok"]}]}',
    ) as VerifyConfig
    expect(checksDigest(reordered)).toBe(checksDigest(checks))
    expect(checksDigest({...checks, commandTests: [{...checks.commandTests![0]!, expectedOutput: ['^ko$']}]})).not.toBe(
      checksDigest(checks),
    )
  })

  it('remembers a pass per engine, image and checks; passes recorded at once are all kept', async () => {
    const digest = checksDigest(checks)
    expect(await hasPassed('ENGINE:A', 'sha256:1', digest)).toBe(false)
    await Promise.all([
      recordPass('ENGINE:A', 'sha256:1', digest, 1),
      recordPass('ENGINE:A', 'sha256:2', digest, 1),
      recordPass('ENGINE:B', 'sha256:1', digest, 1),
    ])
    expect(await hasPassed('ENGINE:A', 'sha256:1', digest)).toBe(true)
    expect(await hasPassed('ENGINE:A', 'sha256:2', digest)).toBe(true)
    expect(await hasPassed('ENGINE:B', 'sha256:1', digest)).toBe(true)
    expect(await hasPassed('ENGINE:B', 'sha256:2', digest)).toBe(false)
    expect(await hasPassed('ENGINE:A', 'sha256:1', 'sha256:other-checks')).toBe(false)
    expect((await readdir(path.join(cache, 'transship', 'verified'))).sort()).toEqual([
      'ENGINE_A.json',
      'ENGINE_B.json',
    ])
  })

  it('treats a damaged record as no record', async () => {
    await mkdir(path.join(cache, 'transship', 'verified'), {recursive: true})
    await writeFile(path.join(cache, 'transship', 'verified', 'ENGINE_C.json'), '{not json')
    expect(await hasPassed('ENGINE:C', 'sha256:1', checksDigest(checks))).toBe(false)
    await recordPass('ENGINE:C', 'sha256:1', checksDigest(checks), 1)
    expect(await hasPassed('ENGINE:C', 'sha256:1', checksDigest(checks))).toBe(true)
  })
})
