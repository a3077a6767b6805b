import {AuthError, TransshipError, UnreachableError} from '@transship/kit'
import {createServer} from 'node:net'
import {Readable} from 'node:stream'
import {text} from 'node:stream/consumers'
import {afterEach, describe, expect, it} from 'vitest'

import type {RegistryClient, RegistryEndpoint} from '../../../src/registry/types.js'

import {sha256} from '../../../../../test/helpers/digests.js'
import {failure} from '../../../../../test/helpers/failure.js'
import {openRegistry, type RegistryClientOptions} from '../../../src/registry/client.js'
import {type FakeRegistry, type FakeRegistryOptions, startFakeRegistry} from './fake-registry.js'

const PASSWORD = 'hunter2-very-secret'
let registry: FakeRegistry | undefined
let client: RegistryClient | undefined

afterEach(async () => {
  await client?.close?.()
  await registry?.close()
  client = undefined
  registry = undefined
})

function endpointOf(fake: FakeRegistry): RegistryEndpoint {
  return {host: `127.0.0.1:${fake.port}`, insecure: true, name: 'fake', url: fake.url}
}

async function start(
  options: FakeRegistryOptions,
  clientOptions: RegistryClientOptions = {},
): Promise<{client: RegistryClient; registry: FakeRegistry}> {
  registry = await startFakeRegistry(options)
  client = openRegistry(endpointOf(registry), {backoffMs: 1, retries: 2, ...clientOptions})
  return {client, registry}
}

const bearer = {kind: 'bearer' as const, password: PASSWORD, username: 'alice'}
const login = {credentials: async () => ({password: PASSWORD, username: 'alice'})}
const manifest = Buffer.from(
  JSON.stringify({mediaType: 'application/vnd.oci.image.manifest.v1+json', schemaVersion: 2}),
)
const OCI = 'application/vnd.oci.image.manifest.v1+json'

function expectNoSecret(error: TransshipError) {
  const shown = `${error.message}\n${JSON.stringify(error)}\n${error.suggestions.join('\n')}`
  expect(shown).not.toContain(PASSWORD)
  expect(shown).not.toContain(Buffer.from(`alice:${PASSWORD}`).toString('base64'))
  expect(shown).not.toMatch(/tok-/)
}

describe('registry client: authentication', () => {
  it('fetches bearer tokens per scope, with basic credentials, and caches them', async () => {
    const {client, registry} = await start({auth: bearer}, login)
    await client.ping()
    expect(await client.putManifest('team/app', '1', manifest, OCI)).toBe(sha256(manifest))
    expect((await client.getManifest('team/app', '1'))?.body).toEqual(manifest)
    expect(await client.headManifest('team/app', '1')).toEqual({
      digest: sha256(manifest),
      mediaType: OCI,
      size: manifest.length,
    })
    const queries = registry.tokenRequests.map((t) => new URLSearchParams(t.query))
    expect(queries.map((q) => q.getAll('scope'))).toEqual([
      [],
      ['repository:team/app:pull,push'],
      ['repository:team/app:pull'],
    ])
    expect(queries.every((q) => q.get('service') === 'fake, registry' && q.get('account') === 'alice')).toBe(true)
    expect(
      registry.tokenRequests.every(
        (t) => t.authorization === `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`,
      ),
    ).toBe(true)
  })

  it('exchanges an identity token with the refresh-token grant', async () => {
    const {client, registry} = await start(
      {auth: {...bearer, identityToken: 'refresh-123'}},
      {credentials: async () => ({identityToken: 'refresh-123'})},
    )
    expect(await client.headBlob('team/app', sha256('x'))).toBeUndefined()
    const [request] = registry.tokenRequests
    expect(request?.method).toBe('POST')
    const form = new URLSearchParams(request?.body)
    expect([...form.keys()].sort()).toEqual(['client_id', 'grant_type', 'refresh_token', 'scope', 'service'])
    expect(form.get('client_id')).toBe('transship')
    expect(form.get('grant_type')).toBe('refresh_token')
    expect(form.get('refresh_token')).toBe('refresh-123')
    expect(form.get('scope')).toBe('repository:team/app:pull')
  })

  it('pulls anonymously when the registry allows it, and asks for a login when not', async () => {
    const {client} = await start({auth: {...bearer, anonymousPull: true}})
    expect(await client.getManifest('team/app', '1')).toBeUndefined()
    const error = await failure(client.putManifest('team/app', '1', manifest, OCI), TransshipError)
    expect(error).toBeInstanceOf(AuthError)
    expect(error).toMatchObject({code: 'REGISTRY_AUTH_REQUIRED', exit: 4})
    expect(error.suggestions.join(',')).toMatch(/docker login 127\.0\.0\.1:\d+/)
  })

  it('uses basic authentication when the registry asks for it', async () => {
    const {client, registry} = await start({auth: {kind: 'basic', password: PASSWORD, username: 'alice'}}, login)
    await client.ping()
    expect(await client.putManifest('app', 'v1', manifest, OCI)).toBe(sha256(manifest))
    expect(registry.tokenRequests).toEqual([])
  })

  it('reports refused credentials without the secret (bearer and basic)', async () => {
    const debug: string[] = []
    const wrong = {
      credentials: async () => ({password: PASSWORD, username: 'alice'}),
      log: {debug: (m: string) => debug.push(m)},
    }
    for (const kind of ['bearer', 'basic'] as const) {
      const {client} = await start({auth: {kind, password: 'the-right-one', username: 'alice'}}, wrong)
      const error = await failure(client.getManifest('app', 'v1'), TransshipError)
      expect(error).toBeInstanceOf(AuthError)
      expect(error).toMatchObject({code: 'REGISTRY_UNAUTHORIZED', exit: 4})
      expect(error.suggestions.join(',')).toMatch(/docker login 127\.0\.0\.1:\d+, or the variables named in the recipe/)
      expectNoSecret(error)
      expect(debug.length).toBeGreaterThan(0)
      expect(debug.join('\n')).not.toMatch(new RegExp(`${PASSWORD}|Basic |Bearer |authorization`, 'i'))
      await client.close?.()
      await registry?.close()
    }
  })

  it('says which repository and action a 403 denied', async () => {
    const {client} = await start({auth: {...bearer, readOnly: ['team/locked']}}, login)
    const error = await failure(client.putManifest('team/locked', '1', manifest, OCI), TransshipError)
    expect(error).toMatchObject({
      code: 'REGISTRY_DENIED',
      details: {action: 'push', repository: 'team/locked'},
      exit: 4,
    })
    expect(error.message).toMatch(/push team\/locked/)
  })

  it('classifies registry errors by their code, with the codes in details', async () => {
    const {client} = await start({}, login)
    const error = await failure(client.putManifest('app', '1', Buffer.from('not json'), OCI), TransshipError)
    expect(error).toMatchObject({
      code: 'REGISTRY_MANIFEST_INVALID',
      details: {errors: [{code: 'MANIFEST_INVALID'}], status: 400},
      exit: 1,
    })
  })
})

describe('registry client: transport', () => {
  it('retries 5xx replies', async () => {
    const {client, registry} = await start({failFirst: 2})
    await client.ping()
    expect(registry.requests).toEqual(['GET /v2/', 'GET /v2/', 'GET /v2/'])
  })

  it('reports an unreachable registry after retrying, naming host and cause', async () => {
    const port = await closedPort()
    const debug: string[] = []
    const client = openRegistry(
      {host: `127.0.0.1:${port}`, insecure: false, name: 'gone', url: `http://127.0.0.1:${port}`},
      {backoffMs: 1, log: {debug: (m) => debug.push(m)}, retries: 2},
    )
    const error = await failure(client.ping(), TransshipError)
    expect(error).toBeInstanceOf(UnreachableError)
    expect(error).toMatchObject({code: 'REGISTRY_UNREACHABLE', details: {cause: 'ECONNREFUSED'}, exit: 3})
    expect(error.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}: ECONNREFUSED`))
    expect(debug.filter((m) => m.includes('retrying'))).toHaveLength(2)
    await client.close?.()
  })

  it('stops at once when aborted', async () => {
    const {client} = await start({failFirst: 100}, {backoffMs: 10_000})
    const controller = new AbortController()
    const pending = client.ping(controller.signal)
    setTimeout(() => controller.abort(), 20)
    await expect(pending).rejects.toMatchObject({name: 'AbortError'})
  })
})

describe('registry client: blobs', () => {
  it('uploads a small blob in one PUT, and reads it back through a redirect, verified', async () => {
    const {client, registry} = await start({auth: bearer, redirectBlobs: true}, login)
    const data = Buffer.from('hello blob')
    const digest = sha256(data)
    let progress = 0
    await client.uploadBlob('app', {digest, size: data.length}, (offset) => Readable.from([data.subarray(offset)]), {
      onBytes(n) {
        progress += n
      },
    })
    expect(registry.blobs.get(digest)).toEqual(data)
    expect(progress).toBe(data.length)
    expect(await client.headBlob('app', digest)).toBe(data.length)
    expect(await text(await client.getBlob('app', digest))).toBe('hello blob')
    expect(registry.requests).toContain(`GET /storage/${digest}`)

    registry.blobs.set(digest, Buffer.from('tampered!!'))
    const stream = await client.getBlob('app', digest)
    await expect(text(stream)).rejects.toMatchObject({code: 'REGISTRY_DIGEST_MISMATCH'})
    await expect(client.getBlob('app', sha256('none'))).rejects.toMatchObject({code: 'REGISTRY_BLOB_UNKNOWN'})
  })

  it('uploads in chunks and resumes at the registry offset after a dropped connection', async () => {
    const chunkSize = 64 * 1024
    const {client, registry} = await start({auth: bearer, dropSecondPatch: true}, {...login, chunkSize})
    const data = Buffer.alloc(4 * chunkSize + 1000)
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251
    const digest = sha256(data)
    const opened: number[] = []
    let progress = 0
    await client.uploadBlob(
      'team/app',
      {digest, size: data.length},
      (offset) => {
        opened.push(offset)
        // small pieces, as a file stream would give
        return Readable.from(
          Array.from({length: Math.ceil((data.length - offset) / 16_384)}, (_, i) =>
            data.subarray(offset + i * 16_384, Math.min(offset + (i + 1) * 16_384, data.length)),
          ),
        )
      },
      {
        onBytes(n) {
          progress += n
        },
      },
    )
    expect(registry.blobs.get(digest)?.equals(data)).toBe(true)
    expect(registry.patchBytes).toBeLessThan(2 * data.length)
    // resumed where the registry's Range said (half-way through the second chunk), not from 0
    expect(opened).toContain(chunkSize + chunkSize / 2)
    expect(opened.filter((o) => o === 0)).toHaveLength(1)
    expect(progress).toBe(data.length)
  })

  it('mounts across repositories (201), and cancels the upload a registry starts instead (202)', async () => {
    const {client, registry} = await start({auth: bearer}, login)
    const digest = sha256('layer')
    registry.blobs.set(digest, Buffer.from('layer'))
    expect(await client.mountBlob('team/b', digest, 'team/a')).toBe(true)
    const scopes = new URLSearchParams(registry.tokenRequests.at(-1)?.query).getAll('scope')
    expect(scopes.sort()).toEqual(['repository:team/a:pull', 'repository:team/b:pull,push'])
    expect(await client.mountBlob('team/b', sha256('unknown'), 'team/a')).toBe(false)
    expect(registry.uploads.size).toBe(0)
    expect(registry.requests.at(-1)).toMatch(/^DELETE \/v2\/team\/b\/blobs\/uploads\//)
  })

  it('follows Link pagination for the catalog and tags', async () => {
    const {client, registry} = await start({auth: bearer, pageSize: 2}, login)
    for (const name of ['a', 'b', 'c', 'd', 'e']) registry.repositories.add(name)
    registry.tags.set('a', ['1', '2', '3'])
    const all: string[] = []
    for await (const name of client.catalog()) all.push(name)
    expect(all).toEqual(['a', 'b', 'c', 'd', 'e'])
    const tags: string[] = []
    for await (const tag of client.tags('a')) tags.push(tag)
    expect(tags).toEqual(['1', '2', '3'])
    expect(registry.requests.filter((r) => r === 'GET /v2/_catalog')).toHaveLength(4) // 1 challenged + 3 pages
  })

  it('checks a manifest fetched by digest against that digest', async () => {
    const {client, registry} = await start({})
    await client.putManifest('app', 'v1', manifest, OCI)
    const digest = sha256(manifest)
    expect(await client.getManifest('app', digest)).toEqual({body: manifest, digest, mediaType: OCI})
    registry.manifests.set(`app@${digest}`, {body: Buffer.from('{"evil":1}'), mediaType: OCI})
    await expect(client.getManifest('app', digest)).rejects.toMatchObject({code: 'REGISTRY_DIGEST_MISMATCH'})
  })
})

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve)
  })
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => {
    server.close(resolve)
  })
  return port
}
