import {UsageError} from '@transship/kit'
import {mkdir, mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {localEndpoint, parseEndpoint} from '../../../src/engine/endpoint.js'
import {RunHosts} from '../../../src/hosts/run-hosts.js'
import {sha256Hex} from '../../helpers/digests.js'

describe('engine endpoints', () => {
  it('parses the DOCKER_HOST forms', () => {
    expect(parseEndpoint('unix:///run/docker.sock', 'x')).toEqual({kind: 'unix', socketPath: '/run/docker.sock'})
    expect(parseEndpoint('/run/docker.sock', 'x')).toEqual({kind: 'unix', socketPath: '/run/docker.sock'})
    expect(parseEndpoint('tcp://10.0.0.1:2376', 'x')).toEqual({host: '10.0.0.1', kind: 'tcp', port: 2376})
    expect(parseEndpoint('ssh://deploy@edge:2222', 'x')).toEqual({
      kind: 'ssh',
      socketPath: undefined,
      ssh: 'deploy@edge:2222',
    })
    expect(parseEndpoint('ssh://edge/run/user/1000/docker.sock', 'x')).toEqual({
      kind: 'ssh',
      socketPath: '/run/user/1000/docker.sock',
      ssh: 'edge',
    })
    expect(() => parseEndpoint('npipe:////./pipe/docker', 'DOCKER_HOST')).toThrow(/unsupported scheme/)
  })

  it('honours DOCKER_HOST, then the current docker context, then the default socket', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'transship-home-'))
    expect(await localEndpoint({DOCKER_HOST: 'unix:///a.sock', HOME: home})).toMatchObject({socketPath: '/a.sock'})
    expect(await localEndpoint({HOME: home})).toEqual({
      kind: 'unix',
      origin: 'default',
      socketPath: '/var/run/docker.sock',
    })

    const meta = path.join(home, '.docker', 'contexts', 'meta', sha256Hex('edge'))
    await mkdir(meta, {recursive: true})
    await writeFile(path.join(meta, 'meta.json'), JSON.stringify({Endpoints: {docker: {Host: 'ssh://root@edge'}}}))
    await writeFile(path.join(home, '.docker', 'config.json'), JSON.stringify({currentContext: 'edge'}))
    expect(await localEndpoint({HOME: home})).toMatchObject({
      kind: 'ssh',
      origin: 'docker context "edge"',
      ssh: 'root@edge',
    })
    await expect(localEndpoint({DOCKER_CONTEXT: 'gone', HOME: home})).rejects.toThrow(
      /docker context "gone" is not defined/,
    )
  })
})

describe('the host grammar', () => {
  it.each([
    ['ssh://', /host is empty/],
    ['ssh:///var/run/docker.sock', /host is empty/],
    ['ssh://@edge', /user before "@" is empty/],
    ['ssh://deploy@edge:0', /out of range/],
    ['ssh://deploy@edge:65536', /out of range/],
    ['ssh://deploy@edge:', /not a port number/],
    ['ssh://deploy:secret@edge', /passwords are not supported/],
    ['ssh://edge?x=1', /no query or fragment/],
    ['ssh://edge/run/docker.sock#x', /no query or fragment/],
    ['ssh://ed ge', /spaces or control characters/],
    [' ssh://edge', /spaces or control characters/],
    ['ssh://edge\n', /spaces or control characters/],
    ['unix://', /absolute socket path/],
    ['unix:///', /absolute socket path/],
    ['unix://host/run/docker.sock', /absolute socket path/],
    ['unix://run/docker.sock', /absolute socket path/],
    ['tcp://', /host is empty/],
    ['tcp://:2375', /host is empty/],
    ['tcp://edge:0', /out of range/],
    ['tcp://edge:99999', /out of range/],
    ['tcp://user@edge:2375', /no user/],
    ['tcp://edge:2375/path', /no path/],
    ['http://edge', /unsupported scheme http/],
    ['ssh:edge', /not an engine address/],
    ['', /is empty/],
  ])('refuses %j with the right form', (input, why) => {
    let error: unknown
    try {
      parseEndpoint(input, '--host')
    } catch (error_) {
      error = error_
    }

    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).exit).toBe(2)
    expect((error as UsageError).message).toMatch(why)
    expect((error as UsageError).message).toContain(JSON.stringify(input))
    const form = input.startsWith('unix')
      ? 'unix:///path/to/docker.sock'
      : input.startsWith('tcp')
        ? 'tcp://host:port'
        : 'ssh://user@host[:port][/socket]'
    expect((error as UsageError).suggestions.join('\n')).toContain(form)
  })

  it('accepts the documented forms', () => {
    expect(parseEndpoint('ssh://deploy@[::1]:2222/run/docker.sock', 'x')).toEqual({
      kind: 'ssh',
      socketPath: '/run/docker.sock',
      ssh: 'deploy@[::1]:2222',
    })
    expect(parseEndpoint('SSH://edge/', 'x')).toEqual({kind: 'ssh', socketPath: undefined, ssh: 'edge'})
    expect(parseEndpoint('tcp://edge', 'x')).toEqual({host: 'edge', kind: 'tcp', port: 2375})
    expect(parseEndpoint('tcp://[::1]:2376', 'x')).toEqual({host: '::1', kind: 'tcp', port: 2376})
  })

  it('takes flags through the same grammar: only local, a recipe host or an engine address', () => {
    expect(RunHosts.specFromFlag('local')).toEqual({engine: 'local'})
    expect(RunHosts.specFromFlag('ssh://deploy@edge:2222/run/docker.sock')).toEqual({
      engine: '/run/docker.sock',
      ssh: 'deploy@edge:2222',
    })
    expect(RunHosts.specFromFlag('unix:///run/docker.sock')).toEqual({engine: 'unix:///run/docker.sock'})
    for (const bad of [
      'ssh://',
      'ssh:///run/docker.sock',
      'unix://',
      'ssh://@edge',
      'ftp://edge',
      ' local',
      'deploy@edge',
    ]) {
      expect(() => RunHosts.specFromFlag(bad)).toThrow(UsageError)
    }

    let bare: unknown
    try {
      RunHosts.specFromFlag('deploy@edge')
    } catch (error) {
      bare = error
    }

    expect((bare as UsageError).suggestions).toContain('for SSH, write ssh://deploy@edge')
  })
})
