import {describe, expect, it} from 'vitest'

import type {SourceImage} from '../../../src/transfer/images.js'

import {sha256, sha256Hex} from '../../../../../test/helpers/digests.js'
import {chainIds} from '../../../src/transfer/chain.js'
import {goJson, type LayerPathCache, LayerResolver} from '../../../src/transfer/layer-resolver.js'

function image(ref: string, layers: string[], created = '2026-01-01T00:00:00Z'): SourceImage {
  const diffIDs = layers.map((layer) => sha256(layer))
  return {chains: chainIds(diffIDs), created, diffIDs, id: sha256(`config ${ref}`), ref}
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value))

describe('chain IDs', () => {
  it('follow Docker: the base diffID, then sha256 of "<parent chain> <diffID>"', () => {
    const [a, b] = [sha256('a'), sha256('b')]
    expect(chainIds([a, b])).toEqual([a, sha256(`${a} ${b}`)])
  })
})

describe('LayerResolver', () => {
  it('names OCI blobs by digest: an uncompressed layer blob is its diffID', () => {
    const app = image('app:1', ['base', 'top'])
    const resolver = new LayerResolver([app], new Map())
    expect(resolver.resolve(`blobs/sha256/${sha256Hex('top')}`)).toEqual({
      chains: [app.chains[1]],
      diffID: sha256('top'),
    })
    expect(resolver.resolve(`blobs/sha256/${sha256Hex('unrelated')}`)).toBeUndefined()
  })

  it('follows the parent links of legacy v1 directories: base, next, top', () => {
    const app = image('app:1', ['base', 'middle', 'top'])
    const resolver = new LayerResolver([app], new Map())
    const [base, middle, top] = ['1'.repeat(64), '2'.repeat(64), '3'.repeat(64)]
    resolver.noteLegacyJson(`${base}/json`, json({created: '1970-01-01T00:00:00Z', id: base}))
    resolver.noteLegacyJson(`${middle}/json`, json({created: '1970-01-01T00:00:00Z', id: middle, parent: base}))
    resolver.noteLegacyJson(`${top}/json`, json({config: {}, created: app.created, id: top, parent: middle}))
    expect(resolver.resolve(`${base}/layer.tar`)?.diffID).toBe(sha256('base'))
    expect(resolver.resolve(`${middle}/layer.tar`)?.diffID).toBe(sha256('middle'))
    expect(resolver.resolve(`${top}/layer.tar`)?.diffID).toBe(sha256('top'))
  })

  it('leaves a layer unresolved when its parent comes later, and learns the mapping for next time', () => {
    const app = image('app:1', ['base', 'middle', 'top'])
    const cache: LayerPathCache = new Map()
    const resolver = new LayerResolver([app], cache)
    const [base, middle] = ['f'.repeat(64), '0'.repeat(64)]
    resolver.noteLegacyJson(`${middle}/json`, json({id: middle, parent: base}))
    expect(resolver.resolve(`${middle}/layer.tar`)).toBeUndefined()

    // eslint-disable-next-line camelcase -- the image config's own key
    const config = json({rootfs: {diff_ids: app.diffIDs, type: 'layers'}})
    resolver.learn(
      [{Config: 'c.json', Layers: [`${base}/layer.tar`, `${middle}/layer.tar`, 'x/layer.tar']}],
      new Map([['c.json', config]]),
    )
    const next = new LayerResolver([app], cache)
    expect(next.resolve(`${middle}/layer.tar`)).toEqual({chains: [app.chains[1]], diffID: sha256('middle')})
  })

  it('does not guess between two images whose bases differ', () => {
    const resolver = new LayerResolver([image('a:1', ['base-a']), image('b:1', ['base-b'])], new Map())
    resolver.noteLegacyJson(`${'a'.repeat(64)}/json`, json({id: 'a'.repeat(64)}))
    expect(resolver.resolve(`${'a'.repeat(64)}/layer.tar`)).toBeUndefined()
  })
})

describe('v1 directory names', () => {
  it('are recomputed from the layer json and chain ID, as Docker 20.10 names them', () => {
    // a real `docker save` (Docker 20.10.24) of a two-layer image: its base directory and its config
    const diffIDs = [
      'sha256:8d54aa96df8a27ef07c74d0f8cf283c2c729d5b071fad03a2289a70dae8d7dc1',
      'sha256:a3fecf80eaa2d65627ad3f0419036bd8b6225b14bebbb79532e9929982dce7e7',
    ]
    const app: SourceImage = {
      chains: chainIds(diffIDs),
      created: '2026-11-22T12:37:00.71943133Z',
      diffIDs,
      id: 'sha256:x',
      ref: 'app:1',
    }
    const dir = 'd9c5c25c9ce3fe442b4eff24af5b13895e568227ae9ccb1786b323a84d0321df'
    const body = {
      // eslint-disable-next-line camelcase -- the key Docker writes
      container_config: {
        AttachStderr: false,
        AttachStdin: false,
        AttachStdout: false,
        Cmd: null,
        Domainname: '',
        Entrypoint: null,
        Env: null,
        Hostname: '',
        Image: '',
        Labels: null,
        OnBuild: null,
        OpenStdin: false,
        StdinOnce: false,
        Tty: false,
        User: '',
        Volumes: null,
        WorkingDir: '',
      },
      created: '1970-01-01T00:00:00Z',
      id: dir,
      os: 'linux',
    }
    const resolver = new LayerResolver([app], new Map())
    resolver.noteLegacyJson(`${dir}/json`, json(body))
    expect(resolver.resolve(`${dir}/layer.tar`)).toEqual({chains: [app.chains[0]], diffID: diffIDs[0]})
  })

  it('encode JSON as Go does', () => {
    expect(goJson({a: '<b> & \u2028', c: [1, true, null], d: '\b\f\\b'})).toBe(
      String.raw`{"a":"\u003cb\u003e \u0026 \u2028","c":[1,true,null],"d":"\u0008\u000c\\b"}`,
    )
  })
})
