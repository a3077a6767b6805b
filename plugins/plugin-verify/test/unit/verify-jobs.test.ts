import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {filesConfig, recipeJobs} from '../../src/verify-jobs.js'

describe('what a verify run checks', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verify-jobs-'))
  })
  afterAll(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  it("runs a recipe entry's checks on each of its hosts, locally when it names none", async () => {
    const tests = {commandTests: [{command: 'true', name: 'runs'}]}
    await writeFile(
      join(dir, 'app.yaml'),
      'schemaVersion: "2.0.0"\nfileExistenceTests:\n  - {name: sh, path: /bin/sh}\n',
    )
    const jobs = await recipeJobs(
      [
        {image: 'app:1', on: ['build', 'edge'], tests},
        {config: 'app.yaml', image: 'app:2'},
      ] as Parameters<typeof recipeJobs>[0],
      dir,
    )
    expect(jobs.map(({host, image}) => `${image}@${host}`)).toEqual(['app:1@build', 'app:1@edge', 'app:2@local'])
    expect(jobs[0]!.config).toMatchObject({commandTests: [{name: 'runs'}], schemaVersion: '2.0.0'})
    expect(jobs[2]!.config.fileExistenceTests).toMatchObject([{name: 'sh', path: '/bin/sh'}])
  })

  it('merges several test files: their tests one after the other', async () => {
    await writeFile(join(dir, 'a.yaml'), 'schemaVersion: "2.0.0"\ncommandTests:\n  - {name: a, command: "true"}\n')
    await writeFile(join(dir, 'b.yaml'), 'schemaVersion: "2.0.0"\ncommandTests:\n  - {name: b, command: "true"}\n')
    const config = await filesConfig([join(dir, 'a.yaml'), join(dir, 'b.yaml')])
    expect(config.commandTests?.map((test) => test.name)).toEqual(['a', 'b'])
  })
})
