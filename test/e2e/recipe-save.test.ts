// `images[].save` of recipes against real engines: apply writes the archive (next to the recipe), it loads
// elsewhere, and a second apply finds the file holds the images and does nothing; several images with one file
// make one archive, also from a host over SSH; a file that lost an image or is damaged is written again.
import {detectCompression, indexArchive} from '@transship/kit/archive'
import {createReadStream} from 'node:fs'
import {copyFile, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {repoRoot, transship} from '../helpers/cli.js'
import {exists, head} from '../helpers/files.js'
import {imageId, layers} from '../helpers/images.js'
import {recipeYaml} from '../helpers/recipe.js'
import {describeE2E, tempHome, type TempHome} from '../helpers/testbed.js'

interface PlanJson {
  steps: Array<{detail: {file: string; images: string[]}; host: string; id: string; title: string}>
  upToDate: boolean
}

describeE2E('transship apply with images saved to files', (bed) => {
  let home: TempHome
  let dir: string

  beforeAll(async () => {
    home = await tempHome({identity: true})
    dir = await mkdtemp(path.join(os.tmpdir(), 'transship-recipe-save-'))
  })

  afterAll(async () => {
    await rm(dir, {force: true, recursive: true})
    await home.cleanup()
  })

  const cli = (args: string[]) => transship(args, {dockerHost: bed.engines.classic.host, home: home.home})
  // the remote engine, over SSH to the bed's sshd
  const edge = {engine: bed.engines.remote.socket, ssh: `${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}`}

  it('applies recipes/air-gap.yaml: the archive is written next to the recipe, loads, and is not written again', async () => {
    const recipe = path.join(dir, 'air-gap.yaml')
    await copyFile(path.join(repoRoot, 'recipes', 'air-gap.yaml'), recipe)
    const file = path.join(dir, 'out', 'app-1.tar.zst')

    const plan = await cli(['plan', recipe, '--json'])
    expect(plan.stderr).not.toMatch(/Error/)
    expect(plan.code).toBe(0)
    const planned = JSON.parse(plan.stdout) as PlanJson
    expect(planned.steps.map((step) => [step.host, step.title])).toEqual([
      ['local', `save ${bed.images.app} to out/app-1.tar.zst`],
    ])
    expect(await exists(path.join(dir, 'out'))).toBe(false) // plan changed nothing

    const apply = await cli(['apply', recipe])
    expect(apply.stderr).not.toMatch(/Error/)
    expect(apply.code).toBe(0)
    expect(apply.stdout).toContain('Applied 1 step')
    expect(await exists(file)).toBe(true)
    expect(await exists(`${file}.partial`)).toBe(false)
    expect(detectCompression(await head(file))).toBe('zstd')
    const index = await indexArchive(createReadStream(file))
    expect(index.images).toHaveLength(1)
    expect(index.images[0]).toMatchObject({
      configDigest: await imageId('classic', bed.images.app),
      repoTags: [bed.images.app],
    })

    const loaded = await transship(['image', 'load', file, '--json'], {
      dockerHost: bed.engines.containerd.host,
      home: home.home,
    })
    expect(loaded.stderr).not.toMatch(/Error/)
    expect(loaded.code).toBe(0)
    const report = JSON.parse(loaded.stdout) as {images: Array<{layers: string[]; tags: string[]}>}
    expect(report.images).toHaveLength(1)
    expect(report.images[0]!.tags).toEqual([bed.images.app])
    expect(report.images[0]!.layers).toEqual(await layers('classic', bed.images.app))

    const again = await cli(['apply', recipe])
    expect(again.code).toBe(0)
    expect(again.stdout).toContain('Nothing to do: every host is up to date')
    const replan = await cli(['plan', recipe, '--json'])
    expect(JSON.parse(replan.stdout)).toMatchObject({steps: [], upToDate: true})
  })

  it('saves several images of a host over SSH into one archive, in one step, and writes it again when it lacks one', async () => {
    const recipe = path.join(dir, 'bundle.yaml')
    await recipeYaml({
      hosts: {edge},
      images: [
        {from: 'edge', ref: bed.images.app, save: 'bundle/images.tar'},
        {from: 'edge', ref: bed.images.busybox, save: './bundle/../bundle/images.tar'},
      ],
    }).write(recipe)
    const file = path.join(dir, 'bundle', 'images.tar')

    const plan = await cli(['plan', recipe, '--json'])
    expect(plan.stderr).not.toMatch(/Error/)
    expect(plan.code).toBe(0)
    const planned = JSON.parse(plan.stdout) as PlanJson
    expect(planned.steps).toHaveLength(1)
    expect(planned.steps[0]).toMatchObject({
      detail: {file, images: [bed.images.app, bed.images.busybox]},
      host: 'edge',
      title: `save ${bed.images.app}, ${bed.images.busybox} to bundle/images.tar`,
    })

    const apply = await cli(['apply', recipe])
    expect(apply.stderr).not.toMatch(/Error/)
    expect(apply.code).toBe(0)
    const index = await indexArchive(createReadStream(file))
    expect(index.images.map((image) => image.repoTags).sort()).toEqual([[bed.images.app], [bed.images.busybox]])
    for (const image of index.images) {
      expect(image.configDigest).toBe(await imageId('remote', image.repoTags[0]!))
      expect(image.layers.map((layer) => layer.diffID)).toEqual(await layers('remote', image.repoTags[0]!))
    }

    expect(JSON.parse((await cli(['plan', recipe, '--json'])).stdout)).toMatchObject({upToDate: true})

    // a file that holds only one of the two is written again, with both
    const saved = await transship(
      ['image', 'save', bed.images.busybox, '-o', file, '--host', 'edge', '--recipe', recipe],
      {
        dockerHost: bed.engines.classic.host,
        home: home.home,
      },
    )
    expect(saved.code).toBe(0)
    const outdated = JSON.parse((await cli(['plan', recipe, '--json'])).stdout) as PlanJson
    expect(outdated.steps.map((step) => step.title)).toEqual([
      `save ${bed.images.app}, ${bed.images.busybox} to bundle/images.tar (outdated)`,
    ])

    // and so is a damaged one, with a warning
    await writeFile(file, 'not an archive')
    const damaged = await cli(['apply', recipe])
    expect(damaged.code).toBe(0)
    expect(damaged.stderr).toMatch(/Warning: .*apply writes bundle\/images\.tar again/)
    expect((await indexArchive(createReadStream(file))).images).toHaveLength(2)
    expect((await cli(['apply', recipe])).stdout).toContain('Nothing to do')
  })

  it('refuses one file saved from two hosts, naming the key (exit 2)', async () => {
    const recipe = path.join(dir, 'two-sources.yaml')
    await recipeYaml({
      hosts: {edge},
      images: [
        {ref: bed.images.app, save: 'mixed.tar'},
        {from: 'edge', ref: bed.images.busybox, save: 'mixed.tar'},
      ],
    }).write(recipe)
    const result = await cli(['plan', recipe])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(
      /two-sources\.yaml:\d+:\d+ images\[1\]\.save: images\[0\] saves into this file from host "local"/,
    )
    expect(await exists(path.join(dir, 'mixed.tar'))).toBe(false)
  })
})
