import {createHash} from 'node:crypto'
import {describe, expect, it} from 'vitest'

import type {SourceImage} from '../../../plugins/plugin-images/src/transfer/images.js'

import {chainIds} from '../../../plugins/plugin-images/src/transfer/chain.js'
import {type LayerPathCache, LayerResolver} from '../../../plugins/plugin-images/src/transfer/layer-resolver.js'

const digest = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`
const hex = (text: string) => digest(text).slice(7)

function image(ref: string, layers: string[], created = '2026-01-01T00:00:00Z'): SourceImage {
  const diffIDs = layers.map((layer) => digest(layer))
  return {chains: chainIds(diffIDs), created, diffIDs, id: digest(`config ${ref}`), ref}
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value))

describe('chain IDs', () => {
  it('follow Docker: the base diffID, then sha256 of "<parent chain> <diffID>"', () => {
    const [a, b] = [digest('a'), digest('b')]
    expect(chainIds([a, b])).toEqual([a, `sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`])
  })
})

describe('LayerResolver', () => {
  it('names OCI blobs by digest: an uncompressed layer blob is its diffID', () => {
    const app = image('app:1', ['base', 'top'])
    const resolver = new LayerResolver([app], new Map())
    expect(resolver.resolve(`blobs/sha256/${hex('top')}`)).toEqual({chains: [app.chains[1]], diffID: digest('top')})
    expect(resolver.resolve(`blobs/sha256/${hex('unrelated')}`)).toBeUndefined()
  })

  it('follows the parent links of legacy v1 directories: base, next, top', () => {
    const app = image('app:1', ['base', 'middle', 'top'])
    const resolver = new LayerResolver([app], new Map())
    const [base, middle, top] = ['1'.repeat(64), '2'.repeat(64), '3'.repeat(64)]
    resolver.noteLegacyJson(`${base}/json`, json({created: '1970-01-01T00:00:00Z', id: base}))
    resolver.noteLegacyJson(`${middle}/json`, json({created: '1970-01-01T00:00:00Z', id: middle, parent: base}))
    resolver.noteLegacyJson(`${top}/json`, json({config: {}, created: app.created, id: top, parent: middle}))
    expect(resolver.resolve(`${base}/layer.tar`)?.diffID).toBe(digest('base'))
    expect(resolver.resolve(`${middle}/layer.tar`)?.diffID).toBe(digest('middle'))
    expect(resolver.resolve(`${top}/layer.tar`)?.diffID).toBe(digest('top'))
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
    expect(next.resolve(`${middle}/layer.tar`)).toEqual({chains: [app.chains[1]], diffID: digest('middle')})
  })

  it('does not guess between two images whose bases differ', () => {
    const resolver = new LayerResolver([image('a:1', ['base-a']), image('b:1', ['base-b'])], new Map())
    resolver.noteLegacyJson(`${'a'.repeat(64)}/json`, json({id: 'a'.repeat(64)}))
    expect(resolver.resolve(`${'a'.repeat(64)}/layer.tar`)).toBeUndefined()
  })
})
