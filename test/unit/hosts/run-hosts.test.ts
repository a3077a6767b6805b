import {sameEngine} from '@transship/kit'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {RunHosts} from '../../../src/hosts/run-hosts.js'
import {type Route, startFakeEngine} from '../../helpers/fake-engine.js'
import {generateKeyPair, startSshServer, type TestSshServer} from '../../helpers/ssh-server.js'

type FakeEngine = Awaited<ReturnType<typeof startFakeEngine>>

function json(body: unknown): Route {
  return (_request, response) => {
    response.setHeader('content-type', 'application/json')
    response.end(JSON.stringify(body))
  }
}

/** A fake engine that says who it is on /info and /version. */
async function engineWithId(id: string): Promise<FakeEngine> {
  return startFakeEngine({
    routes: {
      'GET /info': json({DockerRootDir: '/var/lib/docker', Driver: 'overlay2', ID: id}),
      'GET /version': json({ApiVersion: '1.41', Arch: 'amd64', Os: 'linux', Version: '20.10.24'}),
    },
  })
}

const log = {debug() {}, info() {}, warn() {}}
const clientKey = generateKeyPair()
let one: FakeEngine
let two: FakeEngine
let server: TestSshServer
let home: string
const saved = {DOCKER_CONTEXT: '', DOCKER_HOST: '', HOME: '', SSH_AUTH_SOCK: ''}

beforeAll(async () => {
  ;[one, two] = await Promise.all([engineWithId('ENGINE-ONE'), engineWithId('ENGINE-TWO')])
  server = await startSshServer({clientPublicKey: clientKey.public, user: 'deploy'})
  home = await mkdtemp(path.join(os.tmpdir(), 'transship-hosts-'))
  await mkdir(path.join(home, '.ssh'), {mode: 0o700})
  await writeFile(path.join(home, '.ssh', 'id_ed25519'), clientKey.private, {mode: 0o600})
  await writeFile(path.join(home, '.ssh', 'known_hosts'), `${server.knownHostsLine()}\n`)
  // an alias of ~/.ssh/config for the same server as deploy@127.0.0.1:PORT
  await writeFile(
    path.join(home, '.ssh', 'config'),
    `Host edge\n  HostName 127.0.0.1\n  Port ${server.port}\n  User deploy\n`,
  )
  for (const key of Object.keys(saved) as Array<keyof typeof saved>) saved[key] = process.env[key] ?? ''
  process.env.HOME = home
  process.env.DOCKER_HOST = `unix://${one.socketPath}`
  delete process.env.DOCKER_CONTEXT
  delete process.env.SSH_AUTH_SOCK
})

afterAll(async () => {
  for (const [key, value] of Object.entries(saved)) {
    if (value) process.env[key] = value
    else delete process.env[key]
  }

  await Promise.all([one?.close(), two?.close(), server?.close()])
  await rm(home, {force: true, recursive: true})
})

describe('hosts of a run', () => {
  it('knows an engine by its ID, however its host is written; another engine is another', async () => {
    // the engine is shared with the other tests of this file, which may run before this one
    const before = one.requests.length
    await using hosts = new RunHosts(
      {
        local: {engine: 'local'},
        other: {engine: two.socketPath},
        path: {engine: one.socketPath},
        url: {engine: `unix://${one.socketPath}`},
      },
      {log},
    )
    const [local, byPath, byUrl, other] = await Promise.all([
      hosts.host('local'),
      hosts.host('path'),
      hosts.host('url'),
      hosts.host('other'),
    ])
    expect(local.id).toBe('ENGINE-ONE')
    expect(sameEngine(local, byPath)).toBe(true)
    expect(sameEngine(local, byUrl)).toBe(true)
    expect(sameEngine(local, other)).toBe(false)
    expect(byPath.endpoint).toEqual({kind: 'unix', socket: one.socketPath})
    expect(local.endpoint).toEqual(byPath.endpoint)
    expect([local.name, byPath.name]).toEqual(['local', 'path'])
    expect(local.onThisMachine).toBe(true)
    // resolved once: /info was asked once per name, and the same object comes back
    expect(await hosts.host('local')).toBe(local)
    expect(one.requests.slice(before).filter((request) => request.endsWith('/info'))).toHaveLength(3)
  })

  it('knows an SSH alias and user@host:port as one engine on this machine, over one SSH connection', async () => {
    const accepted = server.connectionsAccepted
    await using hosts = new RunHosts(
      {
        alias: {engine: one.socketPath, ssh: 'edge'},
        direct: {engine: one.socketPath, ssh: `deploy@127.0.0.1:${server.port}`},
      },
      {log},
    )
    const alias = await hosts.host('alias')
    const direct = await hosts.host('direct')
    expect(sameEngine(alias, direct)).toBe(true)
    const endpoint = {host: '127.0.0.1', kind: 'ssh', port: server.port, socket: one.socketPath, user: 'deploy'}
    expect(alias.endpoint).toEqual(endpoint)
    expect(direct.endpoint).toEqual(endpoint)
    // a loopback address once the alias is resolved: nothing to gain by compressing
    expect(alias.onThisMachine).toBe(true)
    expect(server.connectionsAccepted - accepted).toBe(1)
    expect((await alias.shell.run('echo over ssh')).stdout).toBe('over ssh\n')
  })
})
