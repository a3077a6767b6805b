import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {localEndpoint, parseEndpoint} from '../../../src/engine/endpoint.js'

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

    const meta = path.join(home, '.docker', 'contexts', 'meta', createHash('sha256').update('edge').digest('hex'))
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
