import type {EngineClient, EngineFacts, Host, Logger} from '@transship/kit'

import {localShell} from '@transship/kit'
import {mkdtempSync, readdirSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'

import {finishInterrupted, withStopped} from '../../src/quiesce.js'

function fakeEngine(id: string, host: string): EngineClient & {calls: string[]} {
  const calls: string[] = []
  return {
    apiVersion: '1.41',
    calls,
    async facts() {
      return {id} as EngineFacts
    },
    host,
    async json<T>(request: {method?: string; path: string}) {
      calls.push(`${request.method ?? 'GET'} ${request.path}`)
      return undefined as T
    },
    async upgrade() {
      throw new Error('not supported')
    },
    messages() {
      throw new Error('not used')
    },
    async stream() {
      throw new Error('not used')
    },
  }
}

/** A host resolved to engine `id`, under the name `name`. */
function fakeHost(id: string, name: string): Host & {engine: {calls: string[]}} {
  return {
    endpoint: {kind: 'unix', socket: '/run/docker.sock'},
    engine: fakeEngine(id, name),
    facts: {id} as EngineFacts,
    id,
    name,
    onThisMachine: true,
    shell: localShell(),
  }
}

function recordingLog(): Logger & {warnings: string[]} {
  const warnings: string[] = []
  return {debug() {}, info() {}, warn: (message) => warnings.push(message), warnings}
}

const writer = {Created: 1, Id: 'c0ffee', Names: ['/db'], State: 'running'}

describe('the quiesce journal', () => {
  let cache: string
  let saved: string | undefined
  beforeEach(() => {
    cache = mkdtempSync(path.join(os.tmpdir(), 'transship-journal-'))
    saved = process.env.XDG_CACHE_HOME
    process.env.XDG_CACHE_HOME = cache
  })

  afterEach(() => {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME
    else process.env.XDG_CACHE_HOME = saved
    rmSync(cache, {force: true, recursive: true})
  })

  it('is found again through the engine, however its host is written', async () => {
    const first = fakeHost('ENGINE-1', 'src')
    // a copy that never ends: as if transship were killed with the container stopped
    const killed = withStopped(first, 'data', [writer], {log: recordingLog()}, () => new Promise(() => {}))
    killed.catch(() => {})
    // the copy is under way once the container is stopped (the journal is written before the stop), however
    // long that takes on a loaded machine
    await vi.waitFor(() => expect(first.engine.calls).toEqual(['POST /containers/c0ffee/stop']), {timeout: 5000})

    // another engine with the same volume name: not its journal
    const other = fakeHost('ENGINE-2', 'unix:///run/other.sock')
    await finishInterrupted(other, 'data', recordingLog())
    expect(other.engine.calls).toEqual([])

    const again = fakeHost('ENGINE-1', 'unix:///run/docker.sock')
    const log = recordingLog()
    await finishInterrupted(again, 'data', log)
    expect(again.engine.calls).toEqual(['POST /containers/c0ffee/start'])
    expect(log.warnings.join('\n')).toMatch(/earlier copy of data .*interrupted with db stopped: starting it again/)
    // done: the journal is gone
    expect(readdirSync(path.join(cache, 'transship', 'volume-journal'))).toEqual([])
  })

  it('starts the containers again when the copy fails, and leaves no journal', async () => {
    const host = fakeHost('ENGINE-1', 'src')
    await expect(
      withStopped(host, 'data', [writer], {log: recordingLog()}, async () => {
        throw new Error('copy failed')
      }),
    ).rejects.toThrow('copy failed')
    expect(host.engine.calls).toEqual(['POST /containers/c0ffee/stop', 'POST /containers/c0ffee/start'])
    expect(readdirSync(path.join(cache, 'transship', 'volume-journal'))).toEqual([])
  })
})
