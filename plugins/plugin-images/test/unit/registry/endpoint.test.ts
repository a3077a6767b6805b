import {UsageError} from '@transship/kit'
import {mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {thrown} from '../../../../../test/helpers/failure.js'
import {parseChallenges} from '../../../src/registry/auth.js'
import {isLoopbackHost, registryEndpoint} from '../../../src/registry/endpoint.js'

describe('registryEndpoint', () => {
  it('maps Docker Hub and plain hosts to their HTTPS API', () => {
    expect(registryEndpoint('docker.io')).toEqual({
      host: 'docker.io',
      insecure: false,
      name: 'docker.io',
      url: 'https://registry-1.docker.io',
    })
    expect(registryEndpoint('registry.example.com:5000', undefined, 'corp')).toEqual({
      host: 'registry.example.com:5000',
      insecure: false,
      name: 'corp',
      url: 'https://registry.example.com:5000',
    })
  })

  it('treats loopback hosts as insecure, trying HTTPS then HTTP', () => {
    for (const host of ['localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000']) {
      expect(registryEndpoint(host)).toMatchObject({httpFallback: true, insecure: true, url: `https://${host}`})
    }

    expect(isLoopbackHost('example.com')).toBe(false)
    expect(isLoopbackHost('128.0.0.1')).toBe(false)
  })

  it('reads URLs with and without a scheme, keeping a path prefix', () => {
    expect(registryEndpoint('r', {url: 'r.example.com/prefix/'})).toMatchObject({url: 'https://r.example.com/prefix'})
    expect(registryEndpoint('r', {insecure: true, url: 'r.lan:5000'})).toMatchObject({
      httpFallback: true,
      insecure: true,
    })
    const explicit = registryEndpoint('r', {insecure: true, url: 'https://r.lan:5000'})
    expect(explicit.httpFallback).toBeUndefined()
    expect(registryEndpoint('r', {insecure: true, url: 'http://r.lan:5000'})).toMatchObject({url: 'http://r.lan:5000'})
  })

  it('refuses plain HTTP without insecure, and bad URLs', () => {
    const error = thrown(() => registryEndpoint('r', {url: 'http://r.lan:5000'}), UsageError)
    expect(error).toMatchObject({code: 'REGISTRY_INSECURE_REQUIRED'})
    expect(error.suggestions.join(',')).toMatch(/insecure: true/)
    expect(thrown(() => registryEndpoint('r', {url: 'ftp://r.lan'}))).toMatchObject({code: 'REGISTRY_URL_INVALID'})
    expect(thrown(() => registryEndpoint('r', {url: 'r.lan?x=1'}))).toMatchObject({code: 'REGISTRY_URL_INVALID'})
  })

  it('reads the CA file, and says when it is missing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'transship-ca-'))
    const file = path.join(dir, 'ca.pem')
    await writeFile(file, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    expect(registryEndpoint('r', {ca: file, url: 'r.lan'}).ca).toMatch(/BEGIN CERTIFICATE/)
    const missing = thrown(() => registryEndpoint('r', {ca: path.join(dir, 'nope.pem'), url: 'r.lan'}), UsageError)
    expect(missing).toMatchObject({code: 'REGISTRY_CA_MISSING'})
  })
})

describe('parseChallenges', () => {
  it('reads bearer parameters, quoted strings with commas and several challenges', () => {
    expect(
      parseChallenges('Bearer realm="https://auth.example/token",service="a, b",scope="repository:x/y:pull,push"'),
    ).toEqual([
      {
        params: {realm: 'https://auth.example/token', scope: 'repository:x/y:pull,push', service: 'a, b'},
        scheme: 'bearer',
      },
    ])
    expect(
      parseChallenges('Basic realm="Registry Realm", Bearer realm=https://x/t,error="insufficient_scope"'),
    ).toEqual([
      {params: {realm: 'Registry Realm'}, scheme: 'basic'},
      {params: {error: 'insufficient_scope', realm: 'https://x/t'}, scheme: 'bearer'},
    ])
    expect(parseChallenges([String.raw`Basic realm="a\"b"`])).toEqual([{params: {realm: 'a"b'}, scheme: 'basic'}])
    expect(parseChallenges()).toEqual([])
  })
})
