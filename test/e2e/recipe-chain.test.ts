// Recipes whose sections feed each other, against real engines and sshd: recipes/chain.yaml builds a base
// image from a tarball (rootfs), tags it and copies it to the engine behind sshd (images) and checks it on
// both (verify) in one apply. plan lists those steps in dependency order before the image exists ("to be
// built"), changing nothing; a second apply has nothing to do; a changed tarball or config makes plan say why
// it rebuilds, and the copy and the checks follow.
import {copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {edgeSshConfig, repoRoot, transship} from '../helpers/cli.js'
import {imageId, removeImages} from '../helpers/images.js'
import {recipeYaml} from '../helpers/recipe.js'
import {describeE2E, dockerCli, type EngineName, run, tempHome, type TempHome} from '../helpers/testbed.js'

interface PlanJson {
  steps: Array<{
    dependsOn: string[]
    host: string
    id: string
    produces: Array<{host: string; id?: string; ref: string}>
    section: string
    title: string
  }>
  upToDate: boolean
}

interface ApplyJson {
  steps: Array<{host: string; id: string; outcome?: {summary?: string}; section: string; status: string}>
  upToDate: boolean
}

const INPUTS_LABEL = 'org.transship.rootfs.inputs'

/**
 * A busybox rootfs (Debian's busybox-static, /bin/sh a link to it) and `extra` files, as a tarball (gzipped
 * unless `plain`). Times and owners are fixed: the same files give the same tree.
 */
async function busyboxTarball(file: string, extra: Record<string, string> = {}, plain = false): Promise<void> {
  const tree = await mkdtemp(path.join(os.tmpdir(), 'transship-chain-tree-'))
  try {
    await mkdir(path.join(tree, 'bin'))
    await mkdir(path.join(tree, 'etc'))
    await copyFile('/bin/busybox', path.join(tree, 'bin', 'busybox'))
    await symlink('busybox', path.join(tree, 'bin', 'sh'))
    for (const [name, content] of Object.entries(extra)) await writeFile(path.join(tree, name), content)
    await mkdir(path.dirname(file), {recursive: true})
    const fixed = ['--mtime=@1700000000', '--owner=0', '--group=0', '--numeric-owner', '--sort=name']
    const tar = await run('tar', ['-C', tree, ...fixed, plain ? '-cf' : '-czf', file, '.'])
    expect(tar.code, tar.stderr).toBe(0)
  } finally {
    await rm(tree, {force: true, recursive: true})
  }
}

async function inputsLabel(engine: EngineName, ref: string): Promise<Record<string, unknown>> {
  const labels = JSON.parse(
    await dockerCli(engine, ['image', 'inspect', '--format', '{{json .Config.Labels}}', ref]),
  ) as Record<string, string>
  return JSON.parse(labels[INPUTS_LABEL]!) as Record<string, unknown>
}

describeE2E('recipes whose sections feed each other', (bed) => {
  let home: TempHome
  let work: string
  let cli: (args: string[]) => ReturnType<typeof transship>
  const chainImages = ['chain/base:1', 'chain/base:latest']
  const changeImages = ['e2e-chain/changed:1']

  beforeAll(async () => {
    home = await tempHome({sshConfig: edgeSshConfig(bed)})
    work = await mkdtemp(path.join(os.tmpdir(), 'transship-e2e-chain-'))
    // what checks passed is remembered per user: this test's user starts with nothing remembered
    const env = {XDG_CACHE_HOME: path.join(home.home, '.cache')}
    cli = (args) => transship(args, {dockerHost: bed.engines.classic.host, env, home: home.home})
    for (const engine of ['classic', 'remote'] as const) await removeImages(engine, ...chainImages, ...changeImages)
  })

  /** images this file built that a rebuild left without a name, per engine */
  const replaced: Array<{engine: EngineName; id: string}> = []

  afterAll(async () => {
    for (const engine of ['classic', 'remote'] as const) await removeImages(engine, ...chainImages, ...changeImages)
    for (const {engine, id} of replaced) await dockerCli(engine, ['image', 'rm', id]).catch(() => {})
    await rm(work, {force: true, recursive: true})
    await home?.cleanup()
  })

  it('applies recipes/chain.yaml: build, copy and checks in one run; the second run has nothing to do', async () => {
    const dir = path.join(work, 'chain')
    await mkdir(dir)
    const recipe = path.join(dir, 'chain.yaml')
    await copyFile(path.join(repoRoot, 'recipes', 'chain.yaml'), recipe)
    await busyboxTarball(path.join(dir, 'rootfs', 'busybox.tar.gz'))

    // plan, before the image exists: the build, then the copy and the tags, then the checks
    const plan = await cli(['plan', recipe, '--json'])
    expect(plan.code, plan.stderr).toBe(0)
    const planned = JSON.parse(plan.stdout) as PlanJson
    const position = (id: string) => planned.steps.findIndex((step) => step.id === id)
    const titles = planned.steps.map((step) => `${step.host}: ${step.title}`)
    expect(titles).toEqual([
      'local: build chain/base:1 from tarball rootfs/busybox.tar.gz → engine (not built yet)',
      'local: copy chain/base:1 (to be built) to edge',
      'local: tag chain/base:1 (to be built) as chain/base:latest',
      'edge: tag chain/base:1 (to be built) as chain/base:latest',
      'local: verify chain/base:1 (to be built) on local (checks in the recipe)',
      'edge: verify chain/base:1 (to be built) on edge (checks in the recipe)',
    ])
    const [build, copy, , edgeTag, , edgeVerify] = planned.steps
    expect(build!.produces).toEqual([{host: 'local', ref: 'chain/base:1'}])
    expect(copy!.dependsOn).toEqual([build!.id])
    expect(edgeTag!.dependsOn).toEqual([copy!.id])
    expect(edgeVerify!.dependsOn).toContain(copy!.id)
    for (const step of planned.steps) {
      for (const need of step.dependsOn) expect(position(need)).toBeLessThan(position(step.id))
    }

    const text = await cli(['plan', recipe])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain('+ [images] copy chain/base:1 (to be built) to edge (step 2, after 1)')
    // plan changed nothing
    expect(await imageId('classic', 'chain/base:1')).toBeUndefined()
    expect(await imageId('remote', 'chain/base:1')).toBeUndefined()

    const apply = await cli(['apply', recipe, '--json'])
    expect(apply.code, apply.stderr).toBe(0)
    const applied = JSON.parse(apply.stdout) as ApplyJson
    expect(applied.steps.map((step) => `${step.section} ${step.host} ${step.status}`)).toEqual([
      'rootfs local done',
      'images local done',
      'images local done',
      'images edge done',
      'verify local done',
      'verify edge done',
    ])
    for (const step of applied.steps.filter((item) => item.section === 'verify')) {
      expect(step.outcome?.summary).toBe('2 checks passed')
    }

    // the image arrived: the same ID on both engines, under both names, with the record of its inputs
    const built = await imageId('classic', 'chain/base:1')
    expect(built).toMatch(/^sha256:[\da-f]{64}$/)
    expect(await imageId('remote', 'chain/base:1')).toBe(built)
    expect(await imageId('classic', 'chain/base:latest')).toBe(built)
    expect(await imageId('remote', 'chain/base:latest')).toBe(built)
    expect(await inputsLabel('remote', 'chain/base:1')).toMatchObject({
      content: expect.stringMatching(/^sha256:[\da-f]{64}$/),
      name: 'busybox.tar.gz',
      source: 'tarball',
    })
    const ok = await dockerCli('remote', [
      'run',
      '--rm',
      '--network',
      'none',
      'chain/base:1',
      '/bin/sh',
      '-c',
      'echo hi',
    ])
    expect(ok).toBe('hi\n')

    const again = await cli(['apply', recipe])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('Nothing to do: every host is up to date')
    expect(again.stderr).not.toContain('→')
    expect(await imageId('classic', 'chain/base:1')).toBe(built)
  })

  it('says why it rebuilds when the tarball or the config changed, and the copy and checks follow', async () => {
    const dir = path.join(work, 'changed')
    await mkdir(dir)
    const recipe = path.join(dir, 'changed.yaml')
    const write = (cmd: string[]) =>
      recipeYaml({
        hosts: {edge: {engine: '/run/transship-testbed/remote.sock', ssh: 'edge'}},
        rootfs: [{config: {cmd}, image: 'e2e-chain/changed:1', tarball: 'rootfs.tar.gz'}],
        images: [{copy: ['edge'], ref: 'e2e-chain/changed:1'}],
        verify: [
          {
            image: 'e2e-chain/changed:1',
            on: ['edge'],
            tests: {
              commandTests: [
                {args: ['-c', 'cat /etc/motd'], command: '/bin/sh', expectedOutput: ['hello'], name: 'sh'},
              ],
            },
          },
        ],
      }).write(recipe)
    await write(['/bin/sh'])
    const tarball = path.join(dir, 'rootfs.tar.gz')
    await busyboxTarball(tarball, {'etc/motd': 'hello\n'})
    const first = await cli(['apply', recipe])
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain('Applied 3 steps.')
    const before = await imageId('remote', 'e2e-chain/changed:1')
    if (before) for (const engine of ['classic', 'remote'] as const) replaced.push({engine, id: before})

    // the same files in a tarball written again, uncompressed this time: the same inputs
    await busyboxTarball(tarball, {'etc/motd': 'hello\n'}, true)
    const same = await cli(['plan', recipe])
    expect(same.stdout).toContain('Nothing to do')

    // one file more: plan says why, the copy and the check wait for the build
    const original = await readFile(tarball)
    await busyboxTarball(tarball, {'etc/motd': 'hello\n', 'etc/version': '2\n'})
    const changed = await cli(['plan', recipe, '--json'])
    expect(changed.code, changed.stderr).toBe(0)
    expect((JSON.parse(changed.stdout) as PlanJson).steps.map((step) => step.title)).toEqual([
      "build e2e-chain/changed:1 from tarball rootfs.tar.gz → engine (rebuild: the tarball's content changed)",
      'copy e2e-chain/changed:1 (to be built) to edge',
      'verify e2e-chain/changed:1 (to be built) on edge (checks in the recipe)',
    ])

    // the config alone
    await writeFile(tarball, original)
    await write(['/bin/busybox', 'sh'])
    const config = await cli(['plan', recipe])
    expect(config.code, config.stderr).toBe(0)
    expect(config.stdout).toContain(
      '+ [rootfs] build e2e-chain/changed:1 from tarball rootfs.tar.gz → engine (rebuild: the image config changed) (step 1)',
    )
    expect(config.stdout).toContain('+ [images] copy e2e-chain/changed:1 (to be built) to edge (step 2, after 1)')

    // applied: the new image reaches edge and is checked there
    const rebuilt = await cli(['apply', recipe])
    expect(rebuilt.code, rebuilt.stderr).toBe(0)
    expect(rebuilt.stdout).toContain('Applied 3 steps.')
    const after = await imageId('remote', 'e2e-chain/changed:1')
    expect(after).not.toBe(before)
    expect(after).toBe(await imageId('classic', 'e2e-chain/changed:1'))
    expect(await cli(['plan', recipe])).toMatchObject({code: 0, stdout: expect.stringContaining('Nothing to do')})
  })
})
