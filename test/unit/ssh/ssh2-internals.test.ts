import type {ClientChannel} from 'ssh2'

import ssh2 from 'ssh2'
import {afterAll, beforeAll, describe, expect, it, vi} from 'vitest'

import {signalAfterEof} from '../../../src/ssh/ssh2-internals.js'
import {generateKeyPair, startSshServer, type TestSshServer} from '../../helpers/ssh-server.js'

// The adapter reaches into ssh2 1.17.0's channel internals: these tests fail when an ssh2 upgrade changes them.
const clientKey = generateKeyPair()
let server: TestSshServer
let client: ssh2.Client

beforeAll(async () => {
  server = await startSshServer({clientPublicKey: clientKey.public, user: 'deploy'})
  client = new ssh2.Client()
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject)
    client.connect({
      host: '127.0.0.1',
      hostVerifier: () => true,
      port: server.port,
      privateKey: clientKey.private,
      username: 'deploy',
    })
  })
})
afterAll(async () => {
  client?.end()
  await server?.close()
})

async function execHang(): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    client.exec('hang', (error, channel) => (error ? reject(error) : resolve(channel)))
  })
}

async function endStdin(channel: ClientChannel): Promise<void> {
  await new Promise<void>((resolve) => {
    channel.end(resolve)
  })
  await vi.waitFor(() => expect(channel.writable).toBe(false))
}

describe('ssh2 internals (ssh2 1.17.0)', () => {
  it('sends a signal on a channel whose stdin was ended, where the public signal() sends nothing', async () => {
    const channel = await execHang()
    await endStdin(channel)
    const before = server.signalRequests.length

    channel.signal('HUP')
    expect(signalAfterEof(channel, 'TERM')).toBe(true)
    await vi.waitFor(() => expect(server.signalRequests.slice(before)).toContain('TERM'))
    // if ssh2 ever sends it itself, use channel.signal() and remove the adapter
    expect(server.signalRequests.slice(before), 'ssh2 now signals after EOF').not.toContain('HUP')
    channel.close()
  })

  it('sends nothing on a channel that is closing', async () => {
    const channel = await execHang()
    await endStdin(channel)
    channel.close()
    expect(signalAfterEof(channel, 'TERM')).toBe(false)
  })
})
