// The images planner against fake engines: tags (new, already right, moved), copies and tags of images that an
// earlier section builds, the names it refers to, and the errors of bad input.
import type {PlannedImage} from '@transship/kit'

import {TransshipError} from '@transship/kit'
import {afterEach, describe, expect, it} from 'vitest'

import {failure} from '../../../../test/helpers/failure.js'
import {fakeHosts, type FakeHosts, planContext} from '../../../../test/helpers/fake-hosts.js'
import {type ImageSpec, imagesSection} from '../../src/section.js'

const APP = 'sha256:' + 'a'.repeat(64)
const OLD = 'sha256:' + 'b'.repeat(64)
const inspect = (ref: string) => `/images/${encodeURIComponent(ref)}/json`

let hosts: FakeHosts | undefined
afterEach(async () => {
  await hosts?.close()
  hosts = undefined
})

async function plan(images: unknown[], engines: Parameters<typeof fakeHosts>[0], planned: PlannedImage[] = []) {
  hosts = await fakeHosts(engines)
  return imagesSection.plan(imagesSection.schema.parse(images) as ImageSpec[], planContext(hosts, {planned}))
}

const summary = (steps: Awaited<ReturnType<typeof plan>>) =>
  steps.map(({dependsOn, host, id, produces, title}) => ({dependsOn, host, id, produces, title}))

describe('images planner: tags', () => {
  it('tags an image on its host, naming the image by ID so that exactly that one is tagged', async () => {
    const steps = await plan([{ref: 'app:1', tags: ['app:latest', 'registry.lan/team/app:1']}], {
      local: {[inspect('app:1')]: {Id: APP}},
    })
    expect(summary(steps)).toEqual([
      {
        dependsOn: undefined,
        host: 'local',
        id: 'images[0]:tag:local:app:latest',
        produces: {images: [{host: 'local', id: APP, ref: 'app:latest'}]},
        title: 'tag app:1 as app:latest',
      },
      {
        dependsOn: undefined,
        host: 'local',
        id: 'images[0]:tag:local:registry.lan/team/app:1',
        produces: {images: [{host: 'local', id: APP, ref: 'registry.lan/team/app:1'}]},
        title: 'tag app:1 as registry.lan/team/app:1',
      },
    ])
    expect(steps[0]!.detail).toEqual({from: undefined, image: APP, tag: 'app:latest'})
  })

  it('plans nothing for a tag that already names the image, and a retag for one that names another', async () => {
    const steps = await plan([{ref: 'app:1', tags: ['app:latest', 'app:stable']}], {
      local: {[inspect('app:1')]: {Id: APP}, [inspect('app:latest')]: {Id: APP}, [inspect('app:stable')]: {Id: OLD}},
    })
    expect(steps.map((step) => step.title)).toEqual([`retag app:stable (now ${'b'.repeat(12)}) to app:1`])
    expect(steps[0]!.detail).toEqual({from: OLD, image: APP, tag: 'app:stable'})
  })

  it('refuses to tag an image its host does not have, saying where it looked', async () => {
    const error = await failure(plan([{ref: 'ghost:1', tags: ['ghost:latest']}], {local: {}}), TransshipError)
    expect(error).toMatchObject({code: 'IMAGE_NOT_FOUND', details: {host: 'local', image: 'ghost:1'}})
    expect(error.message).toBe('image ghost:1 is not on host "local"')
  })
})

/** An engine with a classic image store that holds `images` (ID → its layers, by ref). */
function classicEngine(id: string, images: {id: string; layers: string[]; ref?: string; sizes?: number[]}[]) {
  const documents: Record<string, unknown> = {
    '/images/json': images.map((image) => ({Id: image.id})),
    '/info': {DockerRootDir: '/var/lib/docker', Driver: 'overlay2', DriverStatus: [], ID: id},
    '/version': {ApiVersion: '1.41', Arch: 'amd64', Os: 'linux', Version: '20.10.24'},
  }
  for (const image of images) {
    const inspected = {
      Config: {Cmd: ['/app']},
      Created: '2024-01-01T00:00:00Z',
      Id: image.id,
      RootFS: {Layers: image.layers},
    }
    documents[inspect(image.id)] = inspected
    if (image.ref) documents[inspect(image.ref)] = inspected
    // the history, newest first: the entries with a size are the layers
    if (image.sizes)
      documents[`/images/${encodeURIComponent(image.id)}/history`] = [
        ...image.sizes.map((Size) => ({Size})).reverse(),
        {Size: 0},
      ]
  }

  return documents
}

describe('images planner: copies', () => {
  const [L1, L2] = ['sha256:' + '1'.repeat(64), 'sha256:' + '2'.repeat(64)]
  const BASE = 'sha256:' + 'c'.repeat(64)

  it('plans one copy of what the destination lacks, with the bytes of its missing layers', async () => {
    const steps = await plan([{copy: ['edge'], ref: 'app:1'}], {
      edge: classicEngine('EDGE', [{id: BASE, layers: [L1]}]),
      local: classicEngine('LOCAL', [{id: APP, layers: [L1, L2], ref: 'app:1', sizes: [1000, 2_500_000]}]),
    })
    expect(summary(steps)).toEqual([
      {
        dependsOn: undefined,
        host: 'local',
        id: 'images:copy:local:edge',
        // two classic stores: the image keeps its ID
        produces: {images: [{host: 'edge', id: APP, ref: 'app:1'}]},
        title: 'copy app:1 to edge (1 layers missing, 2.50 MB)',
      },
    ])
    expect(steps[0]!.bytes).toBe(2_500_000)
    expect(steps[0]!.detail).toEqual({
      destinations: [{bytes: 2_500_000, host: 'edge', images: ['app:1'], missing: [L2]}],
      from: 'local',
      images: ['app:1'],
    })
  })

  it('plans no copy to a destination that has the image, and tags it there without waiting for one', async () => {
    const app = {id: APP, layers: [L1, L2], ref: 'app:1', sizes: [1000, 2000]}
    const steps = await plan([{copy: ['edge'], ref: 'app:1', tags: ['app:latest']}], {
      edge: classicEngine('EDGE', [app]),
      local: {...classicEngine('LOCAL', [app]), [inspect('app:latest')]: {Id: APP}},
    })
    expect(summary(steps)).toEqual([
      {
        dependsOn: undefined,
        host: 'edge',
        id: 'images[0]:tag:edge:app:latest',
        produces: {images: [{host: 'edge', id: APP, ref: 'app:latest'}]},
        title: 'tag app:1 as app:latest',
      },
    ])
  })
})

describe('images planner: images an earlier section builds', () => {
  it('copies and tags them after the steps that make them, on every host they go to', async () => {
    const planned = [{host: 'local', ref: 'base:1', steps: ['rootfs:0:base:1']}]
    const steps = await plan([{copy: ['edge'], ref: 'base:1', tags: ['base:latest']}], {edge: {}, local: {}}, planned)
    expect(summary(steps)).toEqual([
      {
        dependsOn: ['rootfs:0:base:1'],
        host: 'local',
        id: 'images:copy:local:edge',
        produces: {images: [{host: 'edge', ref: 'base:1'}]},
        title: 'copy base:1 (to be built) to edge',
      },
      {
        dependsOn: ['rootfs:0:base:1'],
        host: 'local',
        id: 'images[0]:tag:local:base:latest',
        produces: {images: [{host: 'local', id: undefined, ref: 'base:latest'}]},
        title: 'tag base:1 (to be built) as base:latest',
      },
      {
        dependsOn: ['images:copy:local:edge'],
        host: 'edge',
        id: 'images[0]:tag:edge:base:latest',
        produces: {images: [{host: 'edge', id: undefined, ref: 'base:latest'}]},
        title: 'tag base:1 (to be built) as base:latest',
      },
    ])
    expect(steps[0]!.detail).toMatchObject({from: 'local', images: ['base:1'], toBeBuilt: ['base:1']})
  })
})

describe('images planner: recipe entries', () => {
  it('names the hosts and recipe registries it refers to, not registry hosts or references', () => {
    const images = imagesSection.schema.parse([
      {
        copy: ['edge', 'lab'],
        from: 'build',
        push: ['hub', 'registry.lan:5000', {as: 'team/app:1', registry: 'lan'}],
        ref: 'app:1',
      },
    ]) as ImageSpec[]
    expect(imagesSection.references!(images)).toEqual([
      {kind: 'registry', name: 'hub', path: [0, 'push', 0]},
      {kind: 'registry', name: 'lan', path: [0, 'push', 2]},
      {kind: 'host', name: 'build', path: [0, 'from']},
      {kind: 'host', name: 'edge', path: [0, 'copy', 0]},
      {kind: 'host', name: 'lab', path: [0, 'copy', 1]},
    ])
  })

  it.each([
    [[{ref: 'app:1', save: '-'}], [0, 'save'], 'give a file name, e.g. out/app-1.tar.zst'],
    [[{ref: 'app:1', save: 'out/'}], [0, 'save'], 'give a file name, e.g. out/app-1.tar.zst'],
    [
      [
        {ref: 'app:1', save: 'all.tar'},
        {from: 'edge', ref: 'db:1', save: './all.tar'},
      ],
      [1, 'save'],
      'images[0] saves into this file from host "local": one archive comes from one host',
    ],
    [[{ref: 'App:1'}], [0, 'ref'], '"App:1" is not a valid image reference: repository names are lower-case'],
    [[{ref: 'app:1', tags: ['ok:1', 'Bad:1']}], [0, 'tags', 1], '"Bad:1" is not a valid image reference'],
    [[{ref: 'app:1', to: 'edge'}], [0], '"to"'],
  ])('rejects %j at %j', (images, at, message) => {
    const result = imagesSection.schema.safeParse(images)
    expect(result.success).toBe(false)
    const [issue] = result.error!.issues
    expect(issue!.path).toEqual(at)
    expect(issue!.message).toContain(message)
  })
})
