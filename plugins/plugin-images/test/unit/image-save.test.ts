// saveImages against a fake engine that takes its time to answer `GET /images/get`, as Docker 20.10 does while
// it spools the whole image before its first byte.
import type {Progress} from '@transship/kit'

import {InterruptedError} from '@transship/kit'
import {mkdtemp, readdir, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, expect, it} from 'vitest'

import {HttpEngineClient} from '../../../../src/engine/client.js'
import {unixSocketTransport} from '../../../../src/engine/transport.js'
import {failure} from '../../../../test/helpers/failure.js'
import {type FakeEngine, startFakeEngine} from '../../../../test/helpers/fake-engine.js'
import {jsonRoute} from '../../../../test/helpers/fake-hosts.js'
import {saveImages} from '../../src/image-save.js'

const progress: Progress = {task: () => ({done() {}, tick() {}, total() {}})}
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()))
})

async function spoolingEngine(): Promise<{engine: FakeEngine; saveAsked: Promise<void>}> {
  let asked!: () => void
  const saveAsked = new Promise<void>((resolve) => {
    asked = resolve
  })
  const engine = await startFakeEngine({
    routes: {
      'GET /images/app%3A1/json': jsonRoute({Id: `sha256:${'a'.repeat(64)}`, RepoTags: ['app:1']}),
      // never answers: the engine is still spooling the image
      'GET /images/get'() {
        asked()
        return new Promise(() => {})
      },
      'GET /info': jsonRoute({DockerRootDir: '/var/lib/docker', Driver: 'overlay2', ID: 'fake'}),
      'GET /version': jsonRoute({ApiVersion: '1.41', Arch: 'amd64', Os: 'linux', Version: '20.10.24'}),
    },
  })
  cleanups.push(() => engine.close())
  return {engine, saveAsked}
}

it('Ctrl-C while the engine spools the image rejects the save as interrupted and leaves no file', async () => {
  const {engine, saveAsked} = await spoolingEngine()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'transship-save-'))
  cleanups.push(() => rm(dir, {force: true, recursive: true}))
  const uncaught: unknown[] = []
  const onUncaught = (error: unknown) => uncaught.push(error)
  process.on('uncaughtException', onUncaught)
  cleanups.push(async () => {
    process.off('uncaughtException', onUncaught)
  })

  const controller = new AbortController()
  const saving = saveImages({
    engine: await HttpEngineClient.connect('fake', unixSocketTransport(engine.socketPath)),
    file: path.join(dir, 'app.tar.gz'),
    progress,
    refs: ['app:1'],
    signal: controller.signal,
  })
  await saveAsked
  controller.abort(new InterruptedError())

  await failure(saving, InterruptedError)
  // an error of a stream made before the engine answered would surface here, outside the save's promise
  await new Promise((resolve) => {
    setTimeout(resolve, 100)
  })
  expect(uncaught).toEqual([])
  expect(await readdir(dir)).toEqual([])
})
