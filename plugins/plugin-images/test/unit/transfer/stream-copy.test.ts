// streamCopy against fake engines on unix sockets: the source answers `GET /images/get` with a save stream in
// the Docker 20.10 layout, each destination records the archive `POST /images/load` receives.
import type {EngineFacts, Progress} from '@transship/kit'
import type http from 'node:http'

import {EngineError} from '@transship/kit'
import {Readable} from 'node:stream'
import tar from 'tar-stream'
import {afterEach, describe, expect, it} from 'vitest'

import type {DestinationState} from '../../../src/transfer/destination.js'
import type {SourceImage} from '../../../src/transfer/images.js'

import {HttpEngineClient} from '../../../../../src/engine/client.js'
import {unixSocketTransport} from '../../../../../src/engine/transport.js'
import {configFor, makeTar, readAll} from '../../../../../test/helpers/archive-fixtures.js'
import {sha256} from '../../../../../test/helpers/digests.js'
import {failure} from '../../../../../test/helpers/failure.js'
import {type FakeEngine, startFakeEngine} from '../../../../../test/helpers/fake-engine.js'
import {chainIds} from '../../../src/transfer/chain.js'
import {streamCopy, type TransferTarget} from '../../../src/transfer/stream-copy.js'

const engines: FakeEngine[] = []
afterEach(async () => {
  await Promise.all(engines.splice(0).map((engine) => engine.close()))
})

/** Two layers of an image, their v1 directories, its config and the save stream a classic engine writes. */
async function appImage() {
  const base = Buffer.from(await makeTar([{content: 'the base layer\n', name: 'etc/os-release'}]))
  const top = Buffer.from(await makeTar([{content: 'the app\n', name: 'app/run.sh'}]))
  const diffIDs = [sha256(base), sha256(top)]
  const config = configFor(diffIDs, {config: {Cmd: ['/app/run.sh']}})
  const configHex = sha256(config).slice('sha256:'.length)
  // v1 directory names are not digests of anything a client knows: the layers are told by their bodies
  const dirs = ['1'.repeat(64), '2'.repeat(64)]
  const manifest = [{Config: `${configHex}.json`, Layers: dirs.map((dir) => `${dir}/layer.tar`), RepoTags: ['app:1']}]
  const save = await makeTar([
    {name: `${dirs[0]}/`, type: 'directory'},
    {content: base, name: `${dirs[0]}/layer.tar`},
    {name: `${dirs[1]}/`, type: 'directory'},
    {content: top, name: `${dirs[1]}/layer.tar`},
    {content: config, name: `${configHex}.json`},
    {content: JSON.stringify(manifest), name: 'manifest.json'},
  ])
  const image: SourceImage = {
    chains: chainIds(diffIDs),
    created: '2024-01-01T00:00:00Z',
    diffIDs,
    id: sha256(config),
    ref: 'app:1',
  }
  return {base, config, configHex, dirs, image, save, top}
}

type App = Awaited<ReturnType<typeof appImage>>

async function source(app: App, route?: (request: http.IncomingMessage, response: http.ServerResponse) => void) {
  const engine = await startFakeEngine({
    routes: {
      'GET /images/get': route ?? ((_request, response) => response.end(app.save)),
    },
  })
  engines.push(engine)
  return HttpEngineClient.connect('src', unixSocketTransport(engine.socketPath))
}

/** A destination engine that keeps what it was sent; `status` other than 200 refuses the load. */
async function destination(host: string, holds: string[], status = 200) {
  const received: Buffer[] = []
  const engine = await startFakeEngine({
    routes: {
      async 'POST /images/load'(request, response) {
        received.push(await readAll(request))
        response.statusCode = status
        response.setHeader('content-type', 'application/json')
        response.end(
          status === 200
            ? `${JSON.stringify({stream: 'Loaded image: app:1\n'})}\n`
            : JSON.stringify({message: 'write /var/lib/docker/tmp: no space left on device'}),
        )
      },
    },
  })
  engines.push(engine)
  const state: DestinationState = {
    chains: new Set(holds),
    diffIDs: new Set(),
    engine: await HttpEngineClient.connect(host, unixSocketTransport(engine.socketPath)),
    facts: {imageStore: 'classic'} as EngineFacts,
    host,
  }
  return {received, state}
}

const progress: Progress = {task: () => ({done() {}, tick() {}, total() {}})}

function options() {
  return {cache: new Map(), progress, signal: new AbortController().signal, sourceStore: 'classic' as const}
}

function target(state: DestinationState, extra: Partial<TransferTarget> = {}): TransferTarget {
  return {compression: 'none', destination: state, partial: true, ...extra}
}

/** The entries of an archive an engine received: name → content. */
async function entries(archive: Buffer): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>()
  const extract = tar.extract()
  Readable.from([archive]).pipe(extract)
  for await (const entry of extract) found.set(entry.header.name, await readAll(entry))
  return found
}

describe('streamCopy', () => {
  it('leaves out the layers a destination holds and sends the rest, the config and manifest.json as they are', async () => {
    const app = await appImage()
    const edge = await destination('edge', [app.image.chains[0]!])
    const result = await streamCopy(await source(app), [app.image], [target(edge.state)], options())

    expect(edge.received).toHaveLength(1)
    const sent = await entries(edge.received[0]!)
    expect(sent.has(`${app.dirs[0]}/layer.tar`)).toBe(false)
    expect(sent.get(`${app.dirs[1]}/layer.tar`)).toEqual(app.top)
    expect(sent.get(`${app.configHex}.json`)).toEqual(app.config)
    expect(JSON.parse(sent.get('manifest.json')!.toString())).toEqual([
      {Config: `${app.configHex}.json`, Layers: app.dirs.map((dir) => `${dir}/layer.tar`), RepoTags: ['app:1']},
    ])
    const [report] = result.reports
    expect(report).toMatchObject({host: 'edge', layersSent: 1, layersSkipped: 1, loaded: ['app:1']})
    expect(report!.error).toBeUndefined()
    // no compression: what crossed is the archive itself
    expect(report!.bytesRaw).toBe(edge.received[0]!.length)
    expect(report!.bytesOnWire).toBe(edge.received[0]!.length)
    expect(result.configDigests.get(app.image.id)).toBe(sha256(app.config))
  })

  it('sends the save stream byte for byte to a destination that holds none of the layers', async () => {
    const app = await appImage()
    const empty = await destination('empty', [])
    const result = await streamCopy(await source(app), [app.image], [target(empty.state)], options())
    expect(Buffer.concat(empty.received)).toEqual(app.save)
    expect(result.reports[0]).toMatchObject({layersSent: 2, layersSkipped: 0, loaded: ['app:1']})
  })

  it('reads the source once for several destinations, each getting what it lacks', async () => {
    const app = await appImage()
    let reads = 0
    const src = await source(app, (_request, response) => {
      reads++
      response.end(app.save)
    })
    const edge = await destination('edge', [app.image.chains[0]!])
    const empty = await destination('empty', [])
    const result = await streamCopy(src, [app.image], [target(edge.state), target(empty.state)], options())
    expect(reads).toBe(1)
    expect([...(await entries(edge.received[0]!)).keys()]).not.toContain(`${app.dirs[0]}/layer.tar`)
    expect((await entries(empty.received[0]!)).get(`${app.dirs[0]}/layer.tar`)).toEqual(app.base)
    expect(result.reports.map((report) => [report.host, report.layersSent, report.layersSkipped])).toEqual([
      ['edge', 1, 1],
      ['empty', 2, 0],
    ])
  })

  it('sends whole layers when the target is not partial, even to a destination that holds them', async () => {
    const app = await appImage()
    const edge = await destination('edge', app.image.chains)
    await streamCopy(await source(app), [app.image], [target(edge.state, {partial: false})], options())
    expect(Buffer.concat(edge.received)).toEqual(app.save)
  })

  it("records a destination's refused load in its report, and still copies to the others", async () => {
    const app = await appImage()
    const full = await destination('full', [app.image.chains[0]!], 500)
    const edge = await destination('edge', [app.image.chains[0]!])
    const result = await streamCopy(await source(app), [app.image], [target(full.state), target(edge.state)], options())
    const [refused, loaded] = result.reports
    expect(refused!.error).toBeInstanceOf(EngineError)
    expect(refused!.error).toMatchObject({code: 'ENGINE_SERVER_ERROR'})
    expect(refused!.error!.message).toContain('no space left on device')
    expect(loaded!.error).toBeUndefined()
    expect(loaded!.loaded).toEqual(['app:1'])
  })

  it('fails with the engine error when the source cannot save the image', async () => {
    const app = await appImage()
    const src = await source(app, (_request, response) => {
      response.statusCode = 404
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify({message: 'reference does not exist'}))
    })
    const edge = await destination('edge', [app.image.chains[0]!])
    const error = await failure(streamCopy(src, [app.image], [target(edge.state)], options()), EngineError)
    expect(error).toMatchObject({code: 'ENGINE_NOT_FOUND'})
    expect(error.message).toContain('reference does not exist')
  })

  it('stops when its signal is aborted, mid-stream', async () => {
    const app = await appImage()
    const controller = new AbortController()
    const src = await source(app, (_request, response) => {
      // half the stream, then nothing: only the abort ends the copy
      response.write(app.save.subarray(0, 2048))
      controller.abort(new Error('interrupted'))
    })
    const edge = await destination('edge', [app.image.chains[0]!])
    const copying = streamCopy(src, [app.image], [target(edge.state)], {...options(), signal: controller.signal})
    await expect(copying).rejects.toThrow()
  })
})
