import {UnreachableError} from '@transship/kit'
import {execFileSync} from 'node:child_process'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import type {RegistryClient} from '../../../src/registry/types.js'

import {openRegistry} from '../../../src/registry/client.js'
import {registryEndpoint} from '../../../src/registry/endpoint.js'
import {type FakeRegistry, startFakeRegistry} from './fake-registry.js'

let dir: string
let tls: {cert: string; key: string}
let registry: FakeRegistry | undefined
let client: RegistryClient | undefined

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'transship-tls-'))
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-days',
      '1',
      '-keyout',
      path.join(dir, 'key.pem'),
      '-out',
      path.join(dir, 'cert.pem'),
    ],
    {stdio: 'ignore'},
  )
  tls = {
    cert: await readFile(path.join(dir, 'cert.pem'), 'utf8'),
    key: await readFile(path.join(dir, 'key.pem'), 'utf8'),
  }
})

afterAll(async () => {
  await rm(dir, {force: true, recursive: true})
})

afterEach(async () => {
  await client?.close?.()
  await registry?.close()
  client = undefined
  registry = undefined
})

describe('registry client: TLS', () => {
  it('trusts a registry whose certificate the given CA signed, and only then', async () => {
    registry = await startFakeRegistry({tls})
    const endpoint = {host: 'registry.test', insecure: false, name: 'secure', url: registry.url}
    client = openRegistry({...endpoint, ca: tls.cert}, {backoffMs: 1, retries: 1})
    await client.ping()

    const untrusted = openRegistry(endpoint, {backoffMs: 1, retries: 1})
    const error = await untrusted.ping().catch((error_: unknown) => error_)
    await untrusted.close?.()
    expect(error).toBeInstanceOf(UnreachableError)
    expect(error).toMatchObject({code: 'REGISTRY_TLS_UNTRUSTED', details: {cause: 'DEPTH_ZERO_SELF_SIGNED_CERT'}})
    expect((error as Error).message).toMatch(/certificate of 127\.0\.0\.1:\d+ \(registry secure\) is not trusted/)
    expect((error as UnreachableError).suggestions.join(',')).toMatch(/"ca"/)
  })

  it('reads the CA from the recipe path', async () => {
    registry = await startFakeRegistry({tls})
    const endpoint = registryEndpoint('registry.test', {ca: path.join(dir, 'cert.pem'), url: registry.url})
    expect(endpoint.insecure).toBe(true) // 127.0.0.1: loopback
    client = openRegistry({...endpoint, insecure: false}, {backoffMs: 1, retries: 1})
    await client.ping()
  })

  it('speaks HTTPS without checking to a loopback registry', async () => {
    registry = await startFakeRegistry({tls})
    const endpoint = registryEndpoint(`127.0.0.1:${registry.port}`)
    client = openRegistry(endpoint, {backoffMs: 1, retries: 1})
    await client.ping()
    expect(registry.requests).toEqual(['GET /v2/'])
  })

  it('falls back to plain HTTP for a loopback registry that does not speak TLS, once', async () => {
    registry = await startFakeRegistry({})
    const debug: string[] = []
    client = openRegistry(registryEndpoint(`localhost:${registry.port}`), {
      backoffMs: 1,
      log: {debug: (m) => debug.push(m)},
      retries: 1,
    })
    await client.ping()
    await client.ping()
    expect(registry.requests).toEqual(['GET /v2/', 'GET /v2/'])
    expect(debug.filter((m) => m.includes('plain HTTP'))).toHaveLength(1)
    expect(debug.at(-1)).toMatch(/GET http:\/\/localhost:\d+\/v2\/ 200/)
  })
})
