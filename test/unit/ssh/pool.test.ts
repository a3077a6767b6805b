import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi} from 'vitest'

import type {SshTarget} from '../../../src/ssh/config.js'

import {SshPool} from '../../../src/ssh/pool.js'
import {generateKeyPair, serverTarget, startSshServer, type TestSshServer} from '../../helpers/ssh-server.js'

const clientKey = generateKeyPair()
let server: TestSshServer
let dir: string
let pool: SshPool

beforeAll(async () => {
  server = await startSshServer({clientPublicKey: clientKey.public})
})
afterAll(async () => {
  await server?.close()
})
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'transship-ssh-pool-'))
  await writeFile(path.join(dir, 'id_ed25519'), clientKey.private, {mode: 0o600})
  await writeFile(path.join(dir, 'known_hosts'), `${server.knownHostsLine()}\n`)
  pool = new SshPool()
})
afterEach(async () => {
  await pool.closeAll()
  await rm(dir, {force: true, recursive: true})
})

function target(overrides: Partial<SshTarget> = {}): SshTarget {
  return serverTarget(server, dir, overrides)
}

describe('SshPool', () => {
  it('shares one connection per user@host:port between concurrent callers', async () => {
    const before = server.connectionsAccepted
    const [a, b, c] = await Promise.all([pool.get(target()), pool.get(target()), pool.get(target({alias: 'other'}))])
    expect(b).toBe(a)
    expect(c).toBe(a)
    const other = await pool.get(target({user: 'ci'}))
    expect(other).not.toBe(a)
    expect(server.connectionsAccepted - before).toBe(2)
  })

  it('forgets a failed connect, so the next caller tries again', async () => {
    await writeFile(path.join(dir, 'known_hosts'), '')
    await expect(pool.get(target())).rejects.toMatchObject({code: 'SSH_HOST_KEY_UNKNOWN'})
    await writeFile(path.join(dir, 'known_hosts'), `${server.knownHostsLine()}\n`)
    const connection = await pool.get(target())
    expect((await connection.run('echo back')).stdout).toBe('back\n')
  })

  it('reconnects after the connection was lost', async () => {
    const first = await pool.get(target())
    first.exec('drop').stdout.on('error', () => {})
    await vi.waitFor(() => expect(first.closed).toBe(true))
    const second = await pool.get(target())
    expect(second).not.toBe(first)
    expect((await second.run('echo again')).stdout).toBe('again\n')
  })

  it("lets a caller stop waiting without cancelling the others' connect", async () => {
    const controller = new AbortController()
    const waiting = pool.get(target(), {signal: controller.signal})
    const other = pool.get(target())
    controller.abort(new Error('not me'))
    await expect(waiting).rejects.toThrow('not me')
    expect((await (await other).run('echo fine')).stdout).toBe('fine\n')
  })

  it('closes every connection, cancels connects in progress, and can be used again', async () => {
    const connection = await pool.get(target())
    const pending = pool.get(target({user: 'late'}))
    await pool.closeAll()
    expect(connection.closed).toBe(true)
    await expect(pending).rejects.toMatchObject({code: 'SSH_CONNECTION_CLOSED'})
    const fresh = await pool.get(target())
    expect(fresh).not.toBe(connection)
  })
})
