// The hosts of a plan, each an engine faked on a unix socket (test/helpers/fake-engine.ts) that answers GET
// requests from a table of JSON documents: for planners, which read the world and change nothing.
import {type EngineClient, type Host, type Hosts, localShell, type PlanContext, type PlannedImage} from '@transship/kit'

import {HttpEngineClient} from '../../src/engine/client.js'
import {unixSocketTransport} from '../../src/engine/transport.js'
import {type FakeEngine, type Route, startFakeEngine} from './fake-engine.js'

/** `GET /volumes/data` → its JSON document; a path not listed is a 404, as the engine answers it. */
export type EngineDocuments = Record<string, unknown>

export interface FakeHosts extends Hosts {
  close(): Promise<void>
  /** the requests each host's engine received, e.g. `GET /v1.41/volumes/data` */
  requests(host: string): string[]
}

/** A route answering `value` as JSON. */
export function jsonRoute(value: unknown, status = 200): Route {
  return (_request, response) => {
    response.statusCode = status
    response.setHeader('content-type', 'application/json')
    response.end(JSON.stringify(value))
  }
}

/** Hosts named by `engines`, each with an engine that serves those documents. */
export async function fakeHosts(engines: Record<string, EngineDocuments>): Promise<FakeHosts> {
  const started = new Map<string, {client: EngineClient; engine: FakeEngine}>()
  for (const [host, documents] of Object.entries(engines)) {
    // what every engine answers, so a host resolves (Hosts.host reads its facts); a test may override them
    const answered = {
      '/info': {DockerRootDir: '/var/lib/docker', Driver: 'overlay2', ID: host},
      '/version': {ApiVersion: '1.41', Arch: 'amd64', Os: 'linux', Version: '20.10.24'},
      ...documents,
    }
    const routes = Object.fromEntries(
      Object.entries(answered).map(([path, value]) => [`GET ${path}`, jsonRoute(value)]),
    )
    const engine = await startFakeEngine({routes})
    started.set(host, {client: await HttpEngineClient.connect(host, unixSocketTransport(engine.socketPath)), engine})
  }

  const get = (host: string) => {
    const found = started.get(host)
    if (!found) throw new Error(`no fake host ${host}`)
    return found
  }

  return {
    async close() {
      await Promise.all([...started.values()].map(({engine}) => engine.close()))
    },
    describe: (name) => ({kind: 'local', name, target: `unix://${get(name).engine.socketPath}`}),
    engine: async (name) => get(name).client,
    async host(name): Promise<Host> {
      const {client, engine} = get(name)
      const facts = await client.facts()
      return {
        endpoint: {kind: 'unix', socket: engine.socketPath},
        engine: client,
        facts,
        id: facts.id,
        name,
        onThisMachine: true,
        shell: localShell(engine.socketPath),
      }
    },
    names: () => [...started.keys()],
    requests: (host) => get(host).engine.requests,
  }
}

/** A plan context over `hosts`, for a recipe in `dir`; `planned` are the images earlier sections make. */
export function planContext(
  hosts: Hosts,
  options: {dir?: string; planned?: PlannedImage[]; warnings?: string[]} = {},
): PlanContext {
  const dir = options.dir ?? '/recipes'
  return {
    hosts,
    log: {debug() {}, info() {}, warn: (message) => options.warnings?.push(message)},
    planned: {
      image: (host, ref) => options.planned?.find((image) => image.host === host && image.ref === ref),
    },
    recipe: {dir, file: `${dir}/recipe.yaml`, hosts: hosts.names(), registries: [], registrySpecs: {}},
    signal: new AbortController().signal,
  }
}
