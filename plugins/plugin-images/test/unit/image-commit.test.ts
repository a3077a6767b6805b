import type {EngineClient, EngineRequest} from '@transship/kit'

import {EngineError} from '@transship/kit'
import {describe, expect, it} from 'vitest'

import {checkChange, commitContainer, commitReference} from '../../src/image-commit.js'

const CONTAINER_ID = 'c'.repeat(64)
const IMAGE_ID = `sha256:${'1'.repeat(64)}`

/** An engine with the container `web-1`, whose commit makes IMAGE_ID and names it as asked (or `tagged`). */
function fakeEngine(options: {tagged?: string} = {}) {
  const requests: EngineRequest[] = []
  const engine = {
    apiVersion: '1.41',
    host: 'fake',
    async json<T>(request: EngineRequest): Promise<T> {
      requests.push(request)
      const path = decodeURIComponent(request.path)
      if (path === '/containers/web-1/json') return {Id: CONTAINER_ID, Name: '/web-1'} as T
      if (path === '/commit') return {Id: IMAGE_ID} as T
      if (path === '/images/app:1-debug/json')
        return {Id: options.tagged ?? IMAGE_ID, RootFS: {Layers: ['a', 'b']}} as T
      throw new EngineError('no such object', {host: 'fake', status: 404})
    },
  } as unknown as EngineClient
  return {engine, requests}
}

const request = {changes: ['CMD ["app"]'], container: 'web-1', host: 'edge', pause: false}
const {signal} = new AbortController()

describe('image commit', () => {
  it("commits the inspected container by its ID, with the request's changes, and names the new image", async () => {
    const {engine, requests} = fakeEngine()
    const result = await commitContainer(engine, {...request, reference: commitReference('app:1-debug')}, signal)
    expect(result).toEqual({
      container: {id: CONTAINER_ID, name: 'web-1'},
      host: 'edge',
      id: IMAGE_ID,
      layers: 2,
      ref: 'app:1-debug',
    })
    expect(requests.find((r) => r.path === '/commit')?.query).toMatchObject({
      changes: ['CMD ["app"]'],
      container: CONTAINER_ID,
      pause: false,
      repo: 'app',
      tag: '1-debug',
    })
  })

  it('says which container is missing (CONTAINER_NOT_FOUND, exit 1)', async () => {
    const {engine} = fakeEngine()
    const missing = {...request, container: 'nope', reference: commitReference('app:1-debug')}
    await expect(commitContainer(engine, missing, signal)).rejects.toMatchObject({code: 'CONTAINER_NOT_FOUND', exit: 1})
  })

  it('fails when the name points at another image afterwards (TAG_MISMATCH)', async () => {
    const {engine} = fakeEngine({tagged: `sha256:${'2'.repeat(64)}`})
    await expect(
      commitContainer(engine, {...request, reference: commitReference('app:1-debug')}, signal),
    ).rejects.toMatchObject({code: 'TAG_MISMATCH', exit: 1})
  })

  it('refuses a digest as the name and changes a commit does not apply, before any engine is asked', () => {
    expect(() => commitReference(`app@sha256:${'a'.repeat(64)}`)).toThrow(
      expect.objectContaining({code: 'REFERENCE_INVALID'}),
    )
    expect(() => checkChange('RUN rm -rf /')).toThrow(expect.objectContaining({code: 'CHANGE_INVALID'}))
    expect(() => checkChange('CMD')).toThrow(expect.objectContaining({code: 'CHANGE_INVALID'}))
    expect(checkChange('  env MODE=debug ')).toBe('env MODE=debug')
  })
})
