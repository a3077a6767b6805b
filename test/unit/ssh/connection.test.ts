import {AuthError, UnreachableError} from '@transship/kit'
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {text} from 'node:stream/consumers'
import ssh2 from 'ssh2'
import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi} from 'vitest'

import type {SshTarget} from '../../../src/ssh/config.js'

import {SshConnection} from '../../../src/ssh/connection.js'
import {fingerprint, hashHostName} from '../../../src/ssh/known-hosts.js'
import {failure} from '../../helpers/failure.js'
import {generateKeyPair, serverTarget, startSshServer, type TestSshServer} from '../../helpers/ssh-server.js'

const clientKey = generateKeyPair()
let server: TestSshServer
let dir: string
let keyFile: string
let knownHostsFile: string
const connections: SshConnection[] = []

beforeAll(async () => {
  server = await startSshServer({clientPublicKey: clientKey.public, user: 'deploy'})
})
afterAll(async () => {
  await server?.close()
})
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'transship-ssh-'))
  keyFile = path.join(dir, 'id_ed25519')
  await writeFile(keyFile, clientKey.private, {mode: 0o600})
  knownHostsFile = path.join(dir, 'known_hosts')
})
afterEach(async () => {
  await Promise.all(connections.splice(0).map(async (connection) => connection.close()))
  await rm(dir, {force: true, recursive: true})
})

function target(overrides: Partial<SshTarget> = {}): SshTarget {
  return serverTarget(server, dir, overrides)
}

async function connect(t: SshTarget = target(), options: Parameters<typeof SshConnection.connect>[1] = {}) {
  const connection = await SshConnection.connect(t, options)
  connections.push(connection)
  return connection
}

async function knownHosts(...lines: string[]): Promise<void> {
  await writeFile(knownHostsFile, lines.join('\n') + '\n')
}

describe('host keys', () => {
  it('connects to a host listed in known_hosts as [127.0.0.1]:PORT and runs commands', async () => {
    await knownHosts(server.knownHostsLine())
    const connection = await connect()
    expect(await connection.run('echo hello')).toEqual({code: 0, stderr: '', stdout: 'hello\n'})
    expect(await connection.run('exit 3')).toEqual({code: 3, stderr: 'failing\n', stdout: ''})
  })

  it('refuses an unknown host key and records nothing', async () => {
    await knownHosts(`127.0.0.1 ${server.hostKey.type} ${server.hostKey.base64}`) // the port-22 entry does not count
    const before = await readFile(knownHostsFile, 'utf8')
    const error = await failure(connect())
    expect(error).toBeInstanceOf(AuthError)
    expect(error.code).toBe('SSH_HOST_KEY_UNKNOWN')
    expect(error.message).toBe(
      `host key of 127.0.0.1:${server.port} is not known (ED25519 ${fingerprint(server.hostKey.blob)})`,
    )
    expect(error.suggestions?.[0]).toContain(`ssh-keyscan -p ${server.port} 127.0.0.1 >> ${knownHostsFile}`)
    expect(await readFile(knownHostsFile, 'utf8')).toBe(before)
  })

  it('accepts a new host key once when asked, records it, and knows it the next time', async () => {
    const file = path.join(dir, 'new', '.ssh', 'known_hosts')
    const log = vi.fn()
    await connect(target({acceptNewHostKey: true, knownHostsFiles: [file]}), {log})
    expect(await readFile(file, 'utf8')).toBe(`${server.knownHostsLine()}\n`)
    expect((await stat(file)).mode % 0o1000).toBe(0o600)
    expect(log).toHaveBeenCalledWith(
      expect.stringMatching(/accepted the new host key of 127\.0\.0\.1:\d+ \(ED25519 SHA256:/),
    )
    const again = await connect(target({knownHostsFiles: [file]}))
    expect((await again.run('echo again')).stdout).toBe('again\n')
  })

  it('refuses a changed host key, even with acceptNewHostKey, naming the file and line', async () => {
    const other = ssh2.utils.parseKey(generateKeyPair().public) as ssh2.ParsedKey
    await knownHosts('# comment', `[127.0.0.1]:${server.port} ssh-ed25519 ${other.getPublicSSH().toString('base64')}`)
    const before = await readFile(knownHostsFile, 'utf8')
    const error = await failure(connect(target({acceptNewHostKey: true})))
    expect(error).toBeInstanceOf(AuthError)
    expect(error.code).toBe('SSH_HOST_KEY_MISMATCH')
    expect(error.message).toContain(`${knownHostsFile}:2`)
    expect(error.message).toContain('CHANGED')
    expect(error.suggestions?.join('\n')).toContain(`ssh-keygen -R '[127.0.0.1]:${server.port}'`)
    expect(await readFile(knownHostsFile, 'utf8')).toBe(before)
  })

  it('matches a hashed known_hosts entry', async () => {
    await knownHosts(`${hashHostName(`[127.0.0.1]:${server.port}`)} ${server.hostKey.type} ${server.hostKey.base64}`)
    await connect()
  })

  it('refuses a revoked host key', async () => {
    await knownHosts(server.knownHostsLine(), `@revoked * ${server.hostKey.type} ${server.hostKey.base64}`)
    const error = await failure(connect(target({acceptNewHostKey: true})))
    expect(error).toMatchObject({code: 'SSH_HOST_KEY_REVOKED'})
    expect(error).toBeInstanceOf(AuthError)
  })
})

describe('authentication and reachability', () => {
  beforeEach(async () => {
    await knownHosts(server.knownHostsLine())
  })

  it('refuses a key the server does not accept, naming user@host and the keys tried', async () => {
    const wrongKey = path.join(dir, 'id_wrong')
    await writeFile(wrongKey, generateKeyPair().private, {mode: 0o600})
    const error = await failure(connect(target({identityFiles: [wrongKey]})))
    expect(error).toBeInstanceOf(AuthError)
    expect(error.code).toBe('SSH_AUTH_FAILED')
    expect(error.message).toContain(`deploy@127.0.0.1:${server.port}`)
    expect(error.message).toContain(wrongKey)
    expect(error.suggestions?.length).toBeGreaterThan(0)
  })

  it('skips encrypted and too-open keys and goes on with the next one', async () => {
    const encrypted = path.join(dir, 'id_encrypted')
    const {private: encryptedKey} = ssh2.utils.generateKeyPairSync('ed25519', {
      cipher: 'aes256-cbc',
      passphrase: 'secret',
      rounds: 1,
    })
    await writeFile(encrypted, encryptedKey, {mode: 0o600})
    const open = path.join(dir, 'id_open')
    await writeFile(open, clientKey.private, {mode: 0o644})
    const connection = await connect(target({identityFiles: [path.join(dir, 'missing'), encrypted, open, keyFile]}))
    expect((await connection.run('echo ok')).stdout).toBe('ok\n')

    const error = await failure(connect(target({identityFiles: [encrypted, open]})))
    expect(error.code).toBe('SSH_AUTH_FAILED')
    expect(error.message).toMatch(/no SSH key to authenticate deploy@127\.0\.0\.1:\d+/)
    expect(error.message).toMatch(/id_encrypted \(.*ssh-add\)/)
    expect(error.message).toMatch(/id_open \(permissions 0644 are too open/)
  })

  it('goes on with the identity files when the ssh-agent socket is stale', async () => {
    const connection = await connect(target({agentSocket: path.join(dir, 'no-agent.sock')}))
    expect((await connection.run('echo ok')).stdout).toBe('ok\n')
  })

  it('reports a closed port as SSH_CONNECTION_REFUSED', async () => {
    const port = await freePort()
    const error = await failure(connect(target({port})))
    expect(error).toBeInstanceOf(UnreachableError)
    expect(error.code).toBe('SSH_CONNECTION_REFUSED')
  })

  it('reports a server that never answers as SSH_TIMEOUT, and can be aborted', async () => {
    const silent = net.createServer(() => {})
    await new Promise<void>((resolve) => {
      silent.listen(0, '127.0.0.1', resolve)
    })
    const {port} = silent.address() as net.AddressInfo
    try {
      const timeout = await failure(connect(target({port}), {readyTimeoutMs: 150}))
      expect(timeout).toMatchObject({code: 'SSH_TIMEOUT'})

      const controller = new AbortController()
      setTimeout(() => controller.abort(new Error('user gave up')), 50)
      const aborted = await failure(connect(target({port}), {signal: controller.signal}))
      expect(aborted.message).toBe('user gave up')
    } finally {
      silent.close()
    }
  })
})

describe('channels', () => {
  let connection: SshConnection
  beforeEach(async () => {
    await knownHosts(server.knownHostsLine())
    connection = await connect()
  })

  it('drains more than 4 MiB of stderr without stalling, keeping the last 64 KiB', async () => {
    const result = await connection.run(`stderr-flood ${5 * 1024 * 1024}`)
    expect(result.stdout).toBe('done\n')
    expect(result.code).toBe(0)
    expect(result.stderr.length).toBe(64 * 1024)
    expect(result.stderr.endsWith('<end of stderr>')).toBe(true)
  })

  it('pipes stdin into a command and streams its stdout', async () => {
    const child = connection.exec('cat', {
      stdin: Readable.from([Buffer.from('line one\n'), Buffer.from('line two\n')]),
    })
    const [output, exit] = await Promise.all([text(child.stdout), child.exit])
    expect(output).toBe('line one\nline two\n')
    expect(exit).toEqual({code: 0, stderr: ''})
  })

  it('aborting a command signals it, closes the channel and rejects with the reason', async () => {
    const controller = new AbortController()
    const child = connection.exec('hang', {signal: controller.signal})
    const stdoutError = new Promise((resolve) => {
      child.stdout.on('error', resolve)
    })
    await vi.waitFor(() => expect(server.commands.at(-1)).toBe('hang'))
    await new Promise((resolve) => {
      setTimeout(resolve, 20)
    })
    const reason = new Error('stop')
    controller.abort(reason)
    await expect(child.exit).rejects.toBe(reason)
    expect(await stdoutError).toBe(reason)
    await vi.waitFor(() => expect(server.signals).toContain('TERM'))

    // the connection is still usable
    expect((await connection.run('echo still here')).stdout).toBe('still here\n')
  })

  it('aborting run() signals the command too (its stdin is already closed)', async () => {
    const signals = server.signalRequests.length
    const controller = new AbortController()
    const running = connection.run('hang', {signal: controller.signal})
    await vi.waitFor(() => expect(server.commands.at(-1)).toBe('hang'))
    await new Promise((resolve) => {
      setTimeout(resolve, 20)
    })
    controller.abort(new Error('enough'))
    await expect(running).rejects.toThrow('enough')
    await vi.waitFor(() => expect(server.signalRequests.slice(signals)).toContain('TERM'))
  })

  it('settles exit when the reader of stdout gives up early', async () => {
    const child = connection.exec('echo unread')
    child.stdout.destroy()
    expect(await child.exit).toEqual({code: 0, stderr: ''})
  })

  it('rejects a command already aborted without running it', async () => {
    const count = server.commands.length
    const child = connection.exec('echo never', {signal: AbortSignal.abort(new Error('too late'))})
    child.stdout.on('error', () => {})
    await expect(child.exit).rejects.toThrow('too late')
    expect(server.commands.length).toBe(count)
  })

  it('carries an HTTP request to a remote unix socket', async () => {
    const socketPath = path.join(dir, 'engine.sock')
    const engine = http.createServer((request, response) => {
      response.setHeader('content-type', 'text/plain')
      response.end(`${request.method} ${request.url}`)
    })
    await new Promise<void>((resolve) => {
      engine.listen(socketPath, resolve)
    })
    try {
      for (const url of ['/_ping', '/v1.41/info']) {
        const socket = await connection.openUnixSocket(socketPath)
        const body = await new Promise<string>((resolve, reject) => {
          // node:http only calls createConnection when no agent is given (agent: false makes one of its own)
          const request = http.request(
            {createConnection: () => socket as unknown as net.Socket, path: url},
            (response) => {
              expect(response.statusCode).toBe(200)
              text(response).then(resolve, reject)
            },
          )
          request.on('error', reject)
          request.end()
        })
        expect(body).toBe(`GET ${url}`)
      }

      expect(server.streamLocalPaths.slice(-2)).toEqual([socketPath, socketPath])
    } finally {
      engine.closeAllConnections()
      await new Promise((resolve) => {
        engine.close(resolve)
      })
    }
  })

  it('reports a refused forward as SSH_FORWARD_REFUSED, naming the path', async () => {
    const error = await failure(connection.openUnixSocket('/nonexistent/docker.sock'))
    expect(error).toBeInstanceOf(UnreachableError)
    expect(error.code).toBe('SSH_FORWARD_REFUSED')
    expect(error.message).toContain('/nonexistent/docker.sock')
    expect(error.suggestions?.join('\n')).toMatch(/StreamLocal/)
  })

  it('fails operations in flight with SSH_CONNECTION_LOST when the connection drops', async () => {
    const hanging = connection.exec('hang')
    hanging.stdout.on('error', () => {})
    await vi.waitFor(() => expect(server.commands.at(-1)).toBe('hang'))
    connection.exec('drop').stdout.on('error', () => {})
    const error = await failure(hanging.exit)
    expect(error).toBeInstanceOf(UnreachableError)
    expect(error.code).toBe('SSH_CONNECTION_LOST')
    expect(connection.closed).toBe(true)
    await expect(connection.run('echo no')).rejects.toMatchObject({code: 'SSH_CONNECTION_LOST'})
    await connection.close()
  })

  it('closes idempotently, and refuses work after', async () => {
    await Promise.all([connection.close(), connection.close()])
    await connection.close()
    expect(connection.closed).toBe(true)
    await expect(connection.run('echo no')).rejects.toMatchObject({code: 'SSH_CONNECTION_CLOSED'})
    await expect(connection.openUnixSocket('/x.sock')).rejects.toMatchObject({code: 'SSH_CONNECTION_CLOSED'})
  })

  it('cuts its socket when the server does not close its side after a disconnect', async () => {
    const accepted: net.Socket[] = []
    // passes bytes both ways but neither side's end: the client's disconnect never closes the connection
    const proxy = net.createServer({allowHalfOpen: true}, (socket) => {
      accepted.push(socket)
      const upstream = net.connect(server.port, '127.0.0.1')
      socket.pipe(upstream, {end: false})
      upstream.pipe(socket, {end: false})
      socket.on('error', () => {})
      upstream.on('error', () => {})
      socket.on('close', () => upstream.destroy())
    })
    await new Promise<void>((resolve) => {
      proxy.listen(0, '127.0.0.1', resolve)
    })
    const {port} = proxy.address() as net.AddressInfo
    try {
      await knownHosts(server.knownHostsLine(`[127.0.0.1]:${port}`))
      const stuck = await connect(target({port}))
      expect((await stuck.run('echo through')).stdout).toBe('through\n')
      const started = Date.now()
      await stuck.close()
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900)
      expect(stuck.closed).toBe(true)
      // the client's socket is gone: writing to it from the far side fails
      const far = accepted[0]!
      await vi.waitFor(() => {
        if (!far.destroyed) far.write('x')
        expect(far.destroyed).toBe(true)
      })
    } finally {
      proxy.close()
    }
  })

  it('is disposable with await using', async () => {
    const disposable = await connect()
    await disposable[Symbol.asyncDispose]()
    expect(disposable.closed).toBe(true)
  })
})

async function freePort(): Promise<number> {
  const probe = net.createServer()
  await new Promise<void>((resolve) => {
    probe.listen(0, '127.0.0.1', resolve)
  })
  const {port} = probe.address() as net.AddressInfo
  await new Promise((resolve) => {
    probe.close(resolve)
  })
  return port
}
