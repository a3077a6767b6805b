import type {EngineClient, EngineMessage, EngineRequest} from '@transship/kit'

import {EngineError, InterruptedError} from '@transship/kit'
import {parseReference} from '@transship/kit/reference'
import {describe, expect, it, vi} from 'vitest'

import {pushMarker, pushThroughEngine} from '../../../src/registry/engine-registry.js'

const SOURCE_ID = `sha256:${'1'.repeat(64)}`

/**
 * An engine that holds the image `app:1` and names made by tagging, and whose push waits until its
 * signal is aborted (a push interrupted by Ctrl-C), or with `pushEnds` ends without reporting a digest.
 * `deleteStatus` answers every DELETE.
 */
function fakeEngine(options: {deleteStatus?: number; pushEnds?: boolean} = {}) {
  const names = new Map<string, string>([['app:1', SOURCE_ID]])
  const requests: string[] = []
  const engine: EngineClient = {
    apiVersion: '1.41',
    async facts() {
      throw new Error('not used')
    },
    host: 'fake',
    async json<T>(request: EngineRequest): Promise<T> {
      requests.push(`${request.method ?? 'GET'} ${decodeURIComponent(request.path)}`)
      if (request.signal?.aborted) throw request.signal.reason
      const match = /^\/images\/(.+?)(\/json|\/tag)?$/.exec(decodeURIComponent(request.path))!
      const [, name = '', action] = match
      const id = name.startsWith('sha256:') ? name : names.get(name)
      if (request.method === 'DELETE') {
        if (options.deleteStatus) throw new EngineError('no', {host: 'fake', status: options.deleteStatus})
        if (!names.delete(name)) throw new EngineError('no such image', {host: 'fake', status: 404})
        return [] as T
      }

      if (!id) throw new EngineError('no such image', {host: 'fake', status: 404})
      if (action === '/tag') {
        names.set(`${String(request.query?.repo)}:${String(request.query?.tag)}`, id)
        return {} as T
      }

      const tags = [...names].filter(([, value]) => value === id).map(([key]) => key)
      return {Id: id, RepoTags: tags} as T
    },
    async upgrade() {
      throw new Error('not supported')
    },
    messages(request: EngineRequest): AsyncIterable<EngineMessage> {
      requests.push(`POST ${decodeURIComponent(request.path)}`)
      return (async function* () {
        yield {status: 'Preparing'}
        if (options.pushEnds) return
        await new Promise((resolve, reject) => {
          request.signal?.addEventListener('abort', () => {
            const {reason} = request.signal!
            reject(reason instanceof Error ? reason : new Error('aborted'))
          })
        })
      })()
    },
    async stream() {
      throw new Error('not used')
    },
  }
  return {engine, names, requests}
}

/** Until the engine was asked to push: the name is made by then, and Ctrl-C comes during the push. */
async function pushStarted(requests: string[]): Promise<void> {
  await vi.waitFor(() => expect(requests.some((request) => /^POST .*\/push$/.test(request))).toBe(true))
}

describe('a push through an engine under another name', () => {
  const target = parseReference('localhost:5000/team/app:1')
  const name = 'localhost:5000/team/app:1'

  it('fails with PUSH_DIGEST_MISSING when the engine does not report the digest it pushed', async () => {
    const {engine} = fakeEngine({pushEnds: true})
    await expect(pushThroughEngine(engine, 'app:1', target, undefined, {})).rejects.toMatchObject({
      code: 'PUSH_DIGEST_MISSING',
      exit: 1,
    })
  })

  it('removes the name it made and its marker when Ctrl-C aborts the push', async () => {
    const {engine, names, requests} = fakeEngine()
    const controller = new AbortController()
    const pushing = pushThroughEngine(engine, 'app:1', target, undefined, {signal: controller.signal})
    await pushStarted(requests)
    expect(names.get(name)).toBe(SOURCE_ID)
    expect(names.get(pushMarker(name))).toBe(SOURCE_ID)
    controller.abort(new InterruptedError())
    await expect(pushing).rejects.toBeInstanceOf(InterruptedError)
    expect([...names.keys()]).toEqual(['app:1'])
  })

  it('warns, naming what is left and how to remove it, when the engine does not remove it', async () => {
    const {engine, names, requests} = fakeEngine({deleteStatus: 500})
    const warnings: string[] = []
    const controller = new AbortController()
    const pushing = pushThroughEngine(engine, 'app:1', target, undefined, {
      log: {debug() {}, warn: (message) => warnings.push(message)},
      signal: controller.signal,
    })
    await pushStarted(requests)
    controller.abort(new InterruptedError())
    await expect(pushing).rejects.toBeInstanceOf(InterruptedError)
    expect(names.get(name)).toBe(SOURCE_ID)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain(`the name ${name} made for the push is still on host "fake"`)
    expect(warnings[0]).toContain(`docker rmi ${name} ${pushMarker(name)}`)
  })

  it('recognises a name left by a killed push by its marker, and leaves a name of the user alone', async () => {
    const leftover = fakeEngine()
    leftover.names.set(name, SOURCE_ID)
    leftover.names.set(pushMarker(name), SOURCE_ID)
    const controller = new AbortController()
    const pushing = pushThroughEngine(leftover.engine, 'app:1', target, undefined, {signal: controller.signal})
    await pushStarted(leftover.requests)
    controller.abort(new InterruptedError())
    await expect(pushing).rejects.toBeInstanceOf(InterruptedError)
    expect([...leftover.names.keys()]).toEqual(['app:1'])

    const users = fakeEngine()
    users.names.set(name, SOURCE_ID)
    const other = new AbortController()
    const userPush = pushThroughEngine(users.engine, 'app:1', target, undefined, {signal: other.signal})
    await pushStarted(users.requests)
    other.abort(new InterruptedError())
    await expect(userPush).rejects.toBeInstanceOf(InterruptedError)
    expect([...users.names.keys()].sort()).toEqual(['app:1', name])
    expect(users.requests.some((request) => request.startsWith('DELETE'))).toBe(false)
  })

  it('names its marker in a repository no registry has, distinct per name', () => {
    expect(pushMarker(name)).toMatch(/^transship\.invalid\/pushing:[\da-f]{64}$/)
    expect(pushMarker(name)).not.toBe(pushMarker('localhost:5000/team/app:2'))
    expect(() => parseReference(pushMarker(name))).not.toThrow()
  })
})
