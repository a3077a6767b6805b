// The verify planner against fake engines: a check step per image and host, after what makes the image, skipped
// once the same checks passed on the same image, and the errors of bad input.
import type {PlannedImage} from '@transship/kit'

import {UsageError} from '@transship/kit'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import type {VerifyConfig} from '../../src/config/types.js'

import {failure} from '../../../../test/helpers/failure.js'
import {fakeHosts, type FakeHosts, planContext} from '../../../../test/helpers/fake-hosts.js'
import {checksDigest, recordPass} from '../../src/passed-checks.js'
import {type VerifyEntry, verifySection} from '../../src/section.js'

const APP_ID = 'sha256:' + 'a'.repeat(64)
const tests = {commandTests: [{args: ['hello'], command: 'echo', expectedOutput: ['^hello$'], name: 'echo'}]}
const checks: VerifyConfig = {...tests, schemaVersion: '2.0.0'}

let dir: string
let hosts: FakeHosts | undefined
const saved = process.env.XDG_CACHE_HOME
// passes are remembered in the cache: each test has its own
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'verify-planner-'))
  process.env.XDG_CACHE_HOME = path.join(dir, 'cache')
})
afterEach(async () => {
  await hosts?.close()
  hosts = undefined
  if (saved === undefined) delete process.env.XDG_CACHE_HOME
  else process.env.XDG_CACHE_HOME = saved
  await rm(dir, {force: true, recursive: true})
})

/** engines whose /info gives their ID; `images` are on every host */
const engine = (id: string, images: Record<string, string> = {}) => ({
  '/info': {ID: id, Name: id},
  ...Object.fromEntries(Object.entries(images).map(([ref, Id]) => [`/images/${encodeURIComponent(ref)}/json`, {Id}])),
})

async function plan(entries: unknown[], engines: Parameters<typeof fakeHosts>[0], planned: PlannedImage[] = []) {
  hosts = await fakeHosts(engines)
  const value = verifySection.schema.parse(entries) as VerifyEntry[]
  return verifySection.plan(value, planContext(hosts, {dir, planned}))
}

describe('verify planner', () => {
  it('plans one check step per host, after every copy, tag and build, with the digest of its checks', async () => {
    const steps = await plan([{image: 'app:1', on: ['local', 'edge'], tests}], {
      edge: engine('EDGE', {'app:1': APP_ID}),
      local: engine('LOCAL', {'app:1': APP_ID}),
    })
    expect(
      steps.map(({afterSections, dependsOn, detail, host, id, section, title}) => ({
        afterSections,
        dependsOn,
        detail,
        host,
        id,
        section,
        title,
      })),
    ).toEqual(
      ['local', 'edge'].map((host) => ({
        afterSections: ['images', 'rootfs', 'volumes'],
        dependsOn: undefined,
        detail: {checks: checksDigest(checks), config: 'recipe', host, image: 'app:1'},
        host,
        id: `verify:${host}:app:1:checks in the recipe`,
        section: 'verify',
        title: `verify app:1 on ${host} (checks in the recipe)`,
      })),
    )
  })

  it('skips a host where the same checks passed on the same image, and only there', async () => {
    await recordPass('EDGE', APP_ID, checksDigest(checks), 1)
    const engines = {edge: engine('EDGE', {'app:1': APP_ID}), local: engine('LOCAL', {'app:1': APP_ID})}
    const steps = await plan([{image: 'app:1', on: ['local', 'edge'], tests}], engines)
    expect(steps.map((step) => step.host)).toEqual(['local'])
    await hosts!.close()
    // other checks of the same image run again
    const other = {commandTests: [{...tests.commandTests[0]!, expectedOutput: ['^hel+o$']}]}
    expect((await plan([{image: 'app:1', on: ['edge'], tests: other}], engines)).map((step) => step.host)).toEqual([
      'edge',
    ])
  })

  it('checks an image that a step of the recipe makes after that step, even when the host lacks it now', async () => {
    const steps = await plan([{image: 'base:1', tests}], {local: engine('LOCAL')}, [
      {host: 'local', ref: 'base:1', steps: ['rootfs:0:base:1', 'images:tag:local:base:1']},
    ])
    expect(steps).toHaveLength(1)
    expect(steps[0]).toMatchObject({
      dependsOn: ['rootfs:0:base:1', 'images:tag:local:base:1'],
      title: 'verify base:1 (to be built) on local (checks in the recipe)',
    })
  })

  it('reads a test file relative to the recipe, and names it', async () => {
    const file =
      'schemaVersion: 2.0.0\ncommandTests:\n  - {name: echo, command: echo, args: [hello], expectedOutput: ["^hello$"]}\n'
    await writeFile(path.join(dir, 'checks.yaml'), file)
    const [step] = await plan([{config: 'checks.yaml', image: 'app:1'}], {local: engine('LOCAL', {'app:1': APP_ID})})
    expect(step).toMatchObject({
      detail: {checks: checksDigest(checks), config: path.join(dir, 'checks.yaml')},
      id: 'verify:local:app:1:checks.yaml',
      title: 'verify app:1 on local (checks.yaml)',
    })
  })

  it('refuses an image the host lacks that no step brings there, saying how to bring it', async () => {
    const error = await failure(plan([{image: 'ghost:1', tests}], {local: engine('LOCAL')}), UsageError)
    expect(error).toMatchObject({code: 'IMAGE_NOT_FOUND', details: {host: 'local', image: 'ghost:1'}, exit: 2})
    expect(error.message).toBe('image ghost:1 is not on host "local", and no step of the recipe brings it there')
    expect(error.suggestions[0]).toContain('images: [{ref: ghost:1, copy: [local]}]')
  })

  it('refuses a missing test file before anything runs', async () => {
    const error = await failure(
      plan([{config: 'nowhere.yaml', image: 'app:1'}], {local: engine('LOCAL', {'app:1': APP_ID})}),
    )
    expect(error.exit).toBe(2)
  })

  it.each([
    [{image: 'app:1'}, 'give the checks as a test file (config) or in the recipe (tests), one of the two'],
    [
      {config: 'checks.yaml', image: 'app:1', tests},
      'give the checks as a test file (config) or in the recipe (tests), one of the two',
    ],
    [{image: 'app:1', on: [], tests}, undefined],
    [{image: '', tests}, undefined],
  ])('rejects %j', (entry, message) => {
    const result = verifySection.schema.safeParse([entry])
    expect(result.success).toBe(false)
    if (message) expect(result.error!.issues[0]!.message).toBe(message)
  })

  it('names the hosts it checks on, with their paths', () => {
    expect(verifySection.references!([{image: 'app:1', on: ['edge', 'local'], tests}])).toEqual([
      {kind: 'host', name: 'edge', path: [0, 'on', 0]},
      {kind: 'host', name: 'local', path: [0, 'on', 1]},
    ])
  })
})
