// The volumes planner against fake engines: which steps a recipe's volumes give, and the errors of bad input.
import {UsageError} from '@transship/kit'
import {afterEach, describe, expect, it} from 'vitest'

import {failure} from '../../../../test/helpers/failure.js'
import {fakeHosts, type FakeHosts, planContext} from '../../../../test/helpers/fake-hosts.js'
import {type VolumeSpec, volumesSection} from '../../src/section.js'

const volume = (name: string, driver = 'local') => ({
  Driver: driver,
  Labels: null,
  Mountpoint: `/var/lib/docker/volumes/${name}/_data`,
  Name: name,
  Options: null,
})

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
  it('plans one copy per volume on its destination host, saying what it does', async () => {
    const steps = await plan(
      [
        {from: 'local', name: 'data', to: 'edge'},
        {as: 'db-copy', from: 'local', mode: 'sync', name: 'db', quiesce: 'stop', to: 'edge'},
      ],
      {edge: {}, local: {'/volumes/data': volume('data'), '/volumes/db': volume('db')}},
    )
    expect(steps.map(({detail, host, id, section, title}) => ({detail, host, id, section, title}))).toEqual([
      {
        detail: {from: 'local', mode: 'create', name: 'data', quiesce: 'none', to: 'edge'},
        host: 'edge',
        id: 'volumes:local:data:edge:data',
        section: 'volumes',
        title: 'copy volume data from local to edge',
      },
      {
        detail: {from: 'local', mode: 'sync', name: 'db', quiesce: 'stop', to: 'edge'},
        host: 'edge',
        id: 'volumes:local:db:edge:db-copy',
        section: 'volumes',
        title: 'copy volume db from local to edge as db-copy (its containers stopped meanwhile)',
      },
    ])
    // a copy waits for nothing and leaves no image
    expect(steps.every((step) => step.dependsOn === undefined && step.produces === undefined)).toBe(true)
    // the destination was looked up under the name it will have
    expect(hosts!.requests('edge').some((request) => request.endsWith('/volumes/db-copy'))).toBe(true)
  })

  it('verifies a volume already at the destination in mode create, and copies over it in mode replace', async () => {
    const engines = {edge: {'/volumes/data': volume('data')}, local: {'/volumes/data': volume('data')}}
    const [verify] = await plan([{from: 'local', name: 'data', to: 'edge'}], engines)
    expect(verify).toMatchObject({
      detail: {from: 'local', name: 'data', to: 'edge'},
      id: 'volumes:local:data:edge:data',
      title: 'verify volume data on edge against local (already there)',
    })
    await hosts!.close()
    const [replace] = await plan([{from: 'local', mode: 'replace', name: 'data', to: 'edge'}], engines)
    expect(replace).toMatchObject({detail: {mode: 'replace'}, title: 'copy volume data from local to edge'})
  })

  it('refuses a volume the source host does not have, before anything runs', async () => {
    const error = await failure(plan([{from: 'local', name: 'gone', to: 'edge'}], {edge: {}, local: {}}), UsageError)
    expect(error).toMatchObject({code: 'VOLUME_NOT_FOUND', exit: 2})
    expect(error.message).toBe('local has no volume named gone')
  })

  it('refuses a volume of another driver than local (its data is not on the host)', async () => {
    const error = await failure(
      plan([{from: 'local', name: 'nfs', to: 'edge'}], {edge: {}, local: {'/volumes/nfs': volume('nfs', 'nfs')}}),
      UsageError,
    )
    expect(error).toMatchObject({code: 'VOLUME_DRIVER_UNSUPPORTED'})
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
