// plan and apply of the example recipes against real engines, locally and over SSH: plan changes
// nothing, apply does the work and proves it, a second apply has nothing to do.
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {edgeSshConfig, repoRoot, transship} from '../helpers/cli.js'
import {imageId} from '../helpers/images.js'
import {recipeYaml} from '../helpers/recipe.js'
import {describeE2E, dockerCli, type EngineName, tempHome, type TempHome} from '../helpers/testbed.js'

async function removeTags(engine: EngineName, refs: string[]): Promise<void> {
  for (const ref of refs) if (await imageId(engine, ref)) await dockerCli(engine, ['image', 'rm', '--no-prune', ref])
}

describeE2E('transship plan and apply', (bed) => {
  let home: TempHome
  beforeAll(async () => {
    home = await tempHome({sshConfig: edgeSshConfig(bed)})
  })
  afterAll(async () => home.cleanup())

  const quickstart = path.join(repoRoot, 'recipes', 'quickstart.yaml')
  const twoHosts = path.join(repoRoot, 'recipes', 'two-hosts.yaml')
  const quickTags = ['quickstart/busybox:latest', 'quickstart/busybox:stable']

  it.each(['classic', 'containerd'] as const)(
    'applies the quickstart on the %s engine, then finds nothing to do',
    async (engine) => {
      await removeTags(engine, quickTags)
      const options = {dockerHost: bed.engines[engine].host, home: home.home}

      const plan = await transship(['plan', quickstart, '--json'], options)
      expect(plan.code).toBe(0)
      const planned = JSON.parse(plan.stdout) as {steps: Array<{host: string; title: string}>; upToDate: boolean}
      expect(planned.upToDate).toBe(false)
      expect(planned.steps.map((step) => step.title)).toEqual([
        'tag transship-test/busybox:1 as quickstart/busybox:latest',
        'tag transship-test/busybox:1 as quickstart/busybox:stable',
      ])
      expect(await imageId(engine, quickTags[0]!)).toBeUndefined() // plan changed nothing

      const apply = await transship(['apply', quickstart], options)
      expect(apply.code).toBe(0)
      expect(apply.stdout).toContain('Applied 2 steps.')
      const source = await imageId(engine, bed.images.busybox)
      for (const tag of quickTags) expect(await imageId(engine, tag)).toBe(source)

      const again = await transship(['apply', quickstart], options)
      expect(again.code).toBe(0)
      expect(again.stdout).toContain('Nothing to do: every host is up to date')
    },
  )

  it('applies a recipe with a host over SSH, through the forwarded engine socket', async () => {
    const tags = ['two-hosts/app:current', 'two-hosts/app:stable']
    await removeTags('classic', tags)
    await removeTags('remote', tags)
    const options = {dockerHost: bed.engines.classic.host, home: home.home}

    const plan = await transship(['plan', twoHosts], options)
    expect(plan.code).toBe(0)
    expect(plan.stdout).toMatch(/^edge \(ssh:\/\/edge → \/run\/transship-testbed\/remote\.sock\)/m)
    expect(plan.stdout).toContain('Plan for')

    const sshdLog = path.join(bed.stateDir, 'logs', 'sshd.log')
    const sessions = async () => ((await readFile(sshdLog, 'utf8')).match(/Accepted publickey/g) ?? []).length
    const sessionsBefore = await sessions()
    const apply = await transship(['apply', twoHosts, '--json'], options)
    expect(apply.code).toBe(0)
    // plan and apply of every step on edge went through one SSH connection
    expect((await sessions()) - sessionsBefore).toBe(1)
    const result = JSON.parse(apply.stdout) as {steps: Array<{host: string; status: string}>}
    expect(result.steps.map((step) => `${step.host}:${step.status}`).sort()).toEqual([
      'edge:done',
      'edge:done',
      'local:done',
    ])
    // progress and step events are JSON lines on stderr when it is not a terminal
    const events = apply.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as {type: string})
    expect(events.filter((event) => event.type === 'step-end')).toHaveLength(3)

    expect(await imageId('remote', 'two-hosts/app:stable')).toBe(await imageId('remote', bed.images.app))
    expect(await imageId('classic', 'two-hosts/app:current')).toBe(await imageId('classic', bed.images.app))
    expect(await imageId('classic', 'two-hosts/app:stable')).toBeUndefined()

    const again = await transship(['plan', twoHosts, '--json'], options)
    expect(JSON.parse(again.stdout)).toMatchObject({steps: [], upToDate: true})
  })

  it('runs checks until they pass, then only when the image or the checks change', async () => {
    const recipe = path.join(home.home, 'checks.yaml')
    const write = (expected: string) =>
      recipeYaml({
        verify: [
          {
            image: bed.images.busybox,
            tests: {commandTests: [{args: ['hello'], command: 'echo', expectedOutput: [expected], name: 'echo'}]},
          },
        ],
      }).write(recipe)
    // passes are remembered per user: this one starts with none
    const options = {
      dockerHost: bed.engines.classic.host,
      env: {XDG_CACHE_HOME: path.join(home.home, 'checks-cache')},
      home: home.home,
    }

    await write('^bye$')
    const failed = await transship(['apply', recipe], options)
    // a failed step (README: exit 1); the report names the check's expectation
    expect(failed.code).toBe(1)
    expect(failed.stdout + failed.stderr).toContain('^bye$')
    // a failed check is not forgotten: the next plan has it again
    const planned = await transship(['plan', recipe, '--json'], options)
    expect(JSON.parse(planned.stdout)).toMatchObject({steps: [{section: 'verify'}], upToDate: false})

    await write(String.raw`^hello\n$`)
    const passed = await transship(['apply', recipe], options)
    expect(passed.code, passed.stderr).toBe(0)
    expect(passed.stdout).toContain('1 checks passed')
    const again = await transship(['apply', recipe], options)
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('Nothing to do')

    // other checks of the same image run again
    await write(String.raw`^hel+o\n$`)
    const other = await transship(['plan', recipe], options)
    expect(other.stdout).toContain(`[verify] verify ${bed.images.busybox} on local (checks in the recipe)`)
  })

  it('fails a plan whose image is missing, naming the host and image, without changing anything', async () => {
    const missing = path.join(home.home, 'missing.yaml')
    await recipeYaml({images: [{ref: 'transship-test/nothing:9', tags: ['x/y:1']}]}).write(missing)
    const result = await transship(['apply', missing], {dockerHost: bed.engines.classic.host, home: home.home})
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('image transship-test/nothing:9 is not on host "local"')
    expect(await imageId('classic', 'x/y:1')).toBeUndefined()
  })
})
