// The volumes planner against fake engines whose volumes are directories here (this machine's shell lists them,
// as root): which steps a recipe's volumes give, what they would send, and the errors of bad input.
import {UsageError} from '@transship/kit'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {failure} from '../../../../test/helpers/failure.js'
import {fakeHosts, type FakeHosts, planContext} from '../../../../test/helpers/fake-hosts.js'
import {type VolumeSpec, volumesSection} from '../../src/section.js'

let base: string
beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'transship-volumes-plan-'))
})
afterAll(async () => {
  await rm(base, {force: true, recursive: true})
})

/** a volume whose data is a directory here, holding `files` (name → content) */
async function volumeWith(name: string, files: Record<string, string>, driver = 'local') {
  const mountpoint = await mkdtemp(path.join(base, `${name}-`))
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(mountpoint, file)), {recursive: true})
    await writeFile(path.join(mountpoint, file), content)
  }

  return {Driver: driver, Labels: null, Mountpoint: mountpoint, Name: name, Options: null}
}

let hosts: FakeHosts | undefined
afterEach(async () => {
  await hosts?.close()
  hosts = undefined
})

async function plan(volumes: VolumeSpec[], engines: Parameters<typeof fakeHosts>[0]) {
  hosts = await fakeHosts(engines)
  return volumesSection.plan(volumesSection.schema.parse(volumes), planContext(hosts))
}

describe('volumes planner', () => {
  it('plans one copy per volume on its destination host, saying what it would send and how', async () => {
    const data = await volumeWith('data', {'a.txt': 'hello\n', 'dir/b.txt': 'world!!\n'})
    const db = await volumeWith('db', {table: 'x'.repeat(1000)})
    const steps = await plan(
      [
        {from: 'local', name: 'data', to: 'edge'},
        {as: 'db-copy', from: 'local', mode: 'sync', name: 'db', quiesce: 'stop', to: 'edge'},
      ],
      {edge: {}, local: {'/volumes/data': data, '/volumes/db': db}},
    )
    expect(steps.map(({bytes, host, id, section, title}) => ({bytes, host, id, section, title}))).toEqual([
      {
        bytes: 14,
        host: 'edge',
        id: 'volumes:local:data:edge:data',
        section: 'volumes',
        title:
          'copy volume data from local to edge: 2 files, 14 B by one tar stream; local: root on this machine; edge: access chosen when the volume is made',
      },
      {
        bytes: 1000,
        host: 'edge',
        id: 'volumes:local:db:edge:db-copy',
        section: 'volumes',
        title:
          'copy volume db from local to edge as db-copy: 1 file, 1.00 kB by one tar stream (its containers stopped meanwhile); local: root on this machine; edge: access chosen when the volume is made',
      },
    ])
    expect(steps[1]!.detail).toMatchObject({files: 1, method: 'tar', mode: 'sync', quiesce: 'stop', remove: 0})
    // a copy waits for nothing and leaves no image
    expect(steps.every((step) => step.dependsOn === undefined && step.produces === undefined)).toBe(true)
    // the destination was looked up under the name it will have
    expect(hosts!.requests('edge').some((request) => request.endsWith('/volumes/db-copy'))).toBe(true)
  })

  it('a sync plans only what differs; a copy already there is verified in mode create, copied over in replace', async () => {
    const source = await volumeWith('data', {'a.txt': 'same\n', 'changed.txt': 'new content\n', 'new.txt': 'n'})
    const destination = await volumeWith('data', {'a.txt': 'same\n', 'changed.txt': 'old\n', 'gone.txt': 'g'})
    // the same mtime for the file that did not change (the quick check trusts size and mtime)
    const {utimes} = await import('node:fs/promises')
    await utimes(path.join(source.Mountpoint, 'a.txt'), 1_000_000, 1_000_000)
    await utimes(path.join(destination.Mountpoint, 'a.txt'), 1_000_000, 1_000_000)
    const engines = {edge: {'/volumes/data': destination}, local: {'/volumes/data': source}}
    const [sync] = await plan([{from: 'local', mode: 'sync', name: 'data', to: 'edge'}], engines)
    expect(sync).toMatchObject({bytes: 13, detail: {files: 2, remove: 1}})
    expect(sync!.title).toContain('2 changed files, 13 B, 1 to remove by the changed files')
    await hosts!.close()
    const [verify] = await plan([{from: 'local', name: 'data', to: 'edge'}], engines)
    expect(verify).toMatchObject({id: 'volumes:local:data:edge:data'})
    expect(verify!.title).toMatch(/^verify volume data on edge against local \(already there; /)
    await hosts!.close()
    const [replace] = await plan([{from: 'local', mode: 'replace', name: 'data', to: 'edge'}], engines)
    expect(replace).toMatchObject({bytes: 13 + 5, detail: {mode: 'replace'}})
    expect(replace!.title).toMatch(/^copy volume data from local to edge: 3 files/)
  })

  it('refuses a volume the source host does not have, before anything runs', async () => {
    const error = await failure(plan([{from: 'local', name: 'gone', to: 'edge'}], {edge: {}, local: {}}), UsageError)
    expect(error).toMatchObject({code: 'VOLUME_NOT_FOUND', exit: 2})
    expect(error.message).toBe('local has no volume named gone')
  })

  it('reaches a volume of another driver than local through a helper container, whose image must be there', async () => {
    const nfs = await volumeWith('nfs', {}, 'nfs')
    const error = await failure(
      plan([{from: 'local', name: 'nfs', to: 'edge'}], {edge: {}, local: {'/volumes/nfs': nfs}}),
      UsageError,
    )
    expect(error).toMatchObject({code: 'VOLUME_HELPER_IMAGE_MISSING'})
    expect(error.message).toContain('debian:bookworm-slim')
  })

  it('names the hosts it refers to, with their paths', () => {
    expect(volumesSection.references!([{from: 'local', name: 'a', to: 'edge'}])).toEqual([
      {kind: 'host', name: 'local', path: [0, 'from']},
      {kind: 'host', name: 'edge', path: [0, 'to']},
    ])
  })

  it.each([
    [{from: 'local', name: 'data'}, ['to']],
    [{from: 'local', mode: 'merge', name: 'data', to: 'edge'}, ['mode']],
    [{from: 'local', name: '../evil', to: 'edge'}, ['name']],
    [{from: 'local', name: 'x', to: 'edge'}, ['name']],
    [{from: 'local', grace: -1, name: 'data', to: 'edge'}, ['grace']],
    [{form: 'local', from: 'local', name: 'data', to: 'edge'}, []],
  ])('rejects %j at %j', (entry, at) => {
    const result = volumesSection.schema.safeParse([entry])
    expect(result.success).toBe(false)
    expect(result.error!.issues[0]!.path).toEqual([0, ...at])
  })
})
