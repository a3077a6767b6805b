// recipes/registry.yaml against the bed's classic engine and its plain registry: apply pushes the image under
// its own name and under another one, the registry holds what the engine holds, and a second apply finds
// nothing to do.
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {repoRoot, transship} from '../helpers/cli.js'
import {describeE2E, run, tempHome, type TempHome} from '../helpers/testbed.js'

const TARGETS = ['localhost:5000/transship-test/busybox:1', 'localhost:5000/team/busybox:stable']

async function registryDigest(reference: string): Promise<string | undefined> {
  const inspect = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${reference}`])
  if (inspect.code !== 0) return undefined
  return (JSON.parse(inspect.stdout) as {Digest: string}).Digest
}

/** Deletes the manifest a tag names (the registry allows deletes), so the next apply must push again. */
async function deleteTag(reference: string): Promise<void> {
  const digest = await registryDigest(reference)
  if (!digest) return
  const [host, ...rest] = reference.split('/')
  const repository = rest.join('/').replace(/:[^:]+$/, '')
  await fetch(`http://${host}/v2/${repository}/manifests/${digest}`, {method: 'DELETE'})
}

describeE2E('recipes/registry.yaml', (bed) => {
  let home: TempHome
  const recipe = path.join(repoRoot, 'recipes', 'registry.yaml')

  beforeAll(async () => {
    home = await tempHome()
    for (const target of TARGETS) await deleteTag(target)
  })
  afterAll(async () => home.cleanup())

  it('pushes the image under both names, then finds nothing to do', async () => {
    const options = {dockerHost: bed.engines.classic.host, home: home.home}
    const plan = await transship(['plan', recipe, '--json'], options)
    expect(plan.code, plan.stderr).toBe(0)
    const planned = JSON.parse(plan.stdout) as {steps: Array<{title: string}>}
    expect(planned.steps.map((step) => step.title)).toEqual(
      TARGETS.map((target) => `push transship-test/busybox:1 to ${target}`),
    )

    const apply = await transship(['apply', recipe], options)
    expect(apply.code, apply.stderr).toBe(0)
    expect(apply.stdout).toContain('Applied 2 steps.')
    const digests = await Promise.all(TARGETS.map((target) => registryDigest(target)))
    expect(digests[0]).toMatch(/^sha256:[\da-f]{64}$/)
    expect(digests[1]).toBe(digests[0])
    expect(apply.stdout).toContain(digests[0])

    const again = await transship(['apply', recipe], options)
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('Nothing to do')
  })
})
