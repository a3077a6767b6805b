// The rootfs planner against fake engines: a build step for the outputs that lack the image as the recipe
// describes it (absent, without a record of its inputs, or built from other inputs), none when all have it.
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {makeTar} from '../../../../test/helpers/archive-fixtures.js'
import {fakeHosts, type FakeHosts, planContext} from '../../../../test/helpers/fake-hosts.js'
import {formatRecord, INPUTS_LABEL} from '../../src/inputs/record.js'
import {wantedInputs} from '../../src/inputs/wanted.js'
import {buildRequest, type RootfsImageSpec, rootfsSection} from '../../src/section.js'

let dir: string
let hosts: FakeHosts | undefined
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rootfs-planner-'))
  await writeFile(
    path.join(dir, 'rootfs.tar'),
    await makeTar([{content: 'PRETTY_NAME="test"\n', name: 'etc/os-release'}]),
  )
})
afterEach(async () => {
  await hosts?.close()
  hosts = undefined
  await rm(dir, {force: true, recursive: true})
})

const IMAGE_PATH = `/images/${encodeURIComponent('base:1')}/json`
const spec = (extra: Partial<RootfsImageSpec> = {}) =>
  rootfsSection.schema.parse([{image: 'base:1', tarball: 'rootfs.tar', ...extra}])

/** the label a build of `entry` from the files as they are now leaves on its image */
async function currentLabel(entry: RootfsImageSpec): Promise<string> {
  const wanted = await wantedInputs(buildRequest(entry, dir), new AbortController().signal)
  if (!('record' in wanted)) throw new Error(wanted.unknown)
  return formatRecord(wanted.record)
}

async function plan(entries: RootfsImageSpec[], engines: Parameters<typeof fakeHosts>[0]) {
  hosts = await fakeHosts(engines)
  return rootfsSection.plan(entries, planContext(hosts, {dir}))
}

describe('rootfs planner', () => {
  it('plans a build of an image the engine lacks, producing it there (ID known once built)', async () => {
    const steps = await plan(spec(), {local: {}})
    expect(steps).toHaveLength(1)
    const [step] = steps
    expect(step).toMatchObject({
      detail: {image: 'base:1', input: 'tarball rootfs.tar', outputs: ['engine'], reasons: {engine: 'not built yet'}},
      host: 'local',
      id: 'rootfs:0:base:1',
      produces: {images: [{host: 'local', ref: 'base:1'}]},
      section: 'rootfs',
      title: 'build base:1 from tarball rootfs.tar → engine (not built yet)',
    })
    expect(step!.dependsOn).toBeUndefined()
  })

  it('plans nothing when the image records the same inputs, and a rebuild when they changed', async () => {
    const [entry] = spec()
    const label = await currentLabel(entry!)
    const image = {Config: {Labels: {[INPUTS_LABEL]: label}}, Id: 'sha256:' + 'b'.repeat(64)}
    expect(await plan([entry!], {local: {[IMAGE_PATH]: image}})).toEqual([])
    await hosts!.close()

    await writeFile(path.join(dir, 'rootfs.tar'), await makeTar([{content: 'another\n', name: 'etc/os-release'}]))
    const [rebuild] = await plan([entry!], {local: {[IMAGE_PATH]: image}})
    expect(rebuild!.title).toMatch(/^build base:1 from tarball rootfs\.tar → engine \(rebuild: .+\)$/)
    expect(rebuild!.detail!.reasons).toEqual({engine: expect.stringMatching(/^rebuild: /)})
  })

  it('rebuilds an image that has no record of its inputs', async () => {
    const image = {Config: {Labels: null}, Id: 'sha256:' + 'c'.repeat(64)}
    const [step] = await plan(spec(), {local: {[IMAGE_PATH]: image}})
    expect(step!.title).toBe('build base:1 from tarball rootfs.tar → engine (rebuild: it has no record of its inputs)')
  })

  it('builds only for the outputs that lack the image, each with its reason', async () => {
    const [entry] = spec({outputs: ['engine', 'engine:edge', 'oci:out/base']})
    const label = await currentLabel(entry!)
    const image = {Config: {Labels: {[INPUTS_LABEL]: label}}, Id: 'sha256:' + 'd'.repeat(64)}
    const [step] = await plan([entry!], {edge: {}, local: {[IMAGE_PATH]: image}})
    // outputs are shown resolved against the recipe's directory
    const oci = `oci:${path.join(dir, 'out/base')}`
    expect(step).toMatchObject({
      detail: {outputs: ['engine:edge', oci], reasons: {'engine:edge': 'not built yet', [oci]: 'not built yet'}},
      host: 'edge',
      produces: {images: [{host: 'edge', ref: 'base:1'}]},
    })
  })

  it('names the engine hosts of its outputs, not local', () => {
    expect(rootfsSection.references!(spec({outputs: ['engine', 'engine:edge', 'oci:out']}))).toEqual([
      {kind: 'host', name: 'edge', path: [0, 'outputs', 1]},
    ])
  })

  it.each([
    [{image: 'base:1'}, 'say where the rootfs comes from: debootstrap, mmdebstrap, tarball or dir'],
    [
      {dir: 'root', image: 'base:1', tarball: 'rootfs.tar'},
      'give one of debootstrap, mmdebstrap, tarball or dir, not tarball and dir',
    ],
    [{image: 'base:1', mmdebstrap: {exclude: ['vim'], suite: 'bookworm'}}, 'mmdebstrap has no exclude'],
    [{image: 'base:1', outputs: [], tarball: 'rootfs.tar'}, undefined],
  ])('rejects %j', (entry, message) => {
    const result = rootfsSection.schema.safeParse([entry])
    expect(result.success).toBe(false)
    if (message) expect(result.error!.issues.map((issue) => issue.message)).toContain(message)
  })
})
