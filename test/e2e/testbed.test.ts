// The test bed itself: every engine answers, has the expected version and image store, holds the
// test images, and the sshd accepts the bed's key with strict host-key checking (and refuses a
// wrong host key); both registries answer, the secure one only with its credentials, and the
// classic engine pushes to and pulls from each.
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {describeE2E, dockerCli, type EngineName, run, sshArgs, tempHome} from '../helpers/testbed.js'

interface Reply {
  body: string
  headers: http.IncomingHttpHeaders
  status: number
}

function get(socketPath: string, urlPath: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({path: urlPath, socketPath, timeout: 10_000}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () =>
        resolve({body: Buffer.concat(chunks).toString('utf8'), headers: res.headers, status: res.statusCode ?? 0}),
      )
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} on ${socketPath} timed out`)))
    req.on('error', reject)
  })
}

/** GET URL (http or https), trusting CA and sending basic auth when given */
function fetchUrl(url: string, options: {auth?: string; ca?: Buffer} = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http
    const req = client.get(url, {auth: options.auth, ca: options.ca, timeout: 10_000}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () =>
        resolve({body: Buffer.concat(chunks).toString('utf8'), headers: res.headers, status: res.statusCode ?? 0}),
      )
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', reject)
  })
}

const expected: Record<EngineName, {store: 'classic' | 'containerd'; version: RegExp}> = {
  classic: {store: 'classic', version: /^20\.10\./},
  containerd: {store: 'containerd', version: /^26\.1\./},
  remote: {store: 'classic', version: /^20\.10\./},
}

describeE2E('test bed', (bed) => {
  for (const name of ['classic', 'remote', 'containerd'] as const) {
    describe(`${name} engine`, () => {
      const engine = bed.engines[name]

      it('answers /_ping on its socket', async () => {
        const reply = await get(engine.socket, '/_ping')
        expect(reply.status).toBe(200)
        expect(reply.body).toBe('OK')
      })

      it(`reports version ${expected[name].version.source.replaceAll('\\', '')}x`, async () => {
        const reply = await get(engine.socket, '/version')
        expect(reply.status).toBe(200)
        const version = JSON.parse(reply.body) as {ApiVersion: string; Version: string}
        expect(version.Version).toMatch(expected[name].version)
        expect(engine.version).toBe(version.Version)
        expect(engine.apiVersion).toBe(version.ApiVersion)
      })

      it(`uses the ${expected[name].store} image store`, async () => {
        const reply = await get(engine.socket, '/info')
        expect(reply.status).toBe(200)
        const info = JSON.parse(reply.body) as {DriverStatus: null | string[][]}
        const snapshotter = JSON.stringify(info.DriverStatus ?? []).includes('io.containerd.snapshotter.v1')
        expect(snapshotter).toBe(expected[name].store === 'containerd')
        expect(engine.imageStore).toBe(expected[name].store)
      })

      it('holds the test images', async () => {
        for (const ref of Object.values(bed.images)) {
          const reply = await get(engine.socket, `/images/${ref}/json`)
          expect(reply.status, `${ref} in ${name}`).toBe(200)
        }
      })

      it('runs the app image without a network', async () => {
        const out = await dockerCli(name, ['run', '--rm', '--network', 'none', bed.images.app])
        expect(out).toBe('hello from app 1\n')
      })
    })
  }

  it('gives classic and remote different engine ids', async () => {
    const ids = await Promise.all(
      (['classic', 'remote'] as const).map(async (name) =>
        (await dockerCli(name, ['info', '--format', '{{.ID}}'])).trim(),
      ),
    )
    expect(ids[0]).not.toBe(ids[1])
  })

  it('sshd accepts the bed key with strict host-key checking', async () => {
    const result = await run('ssh', sshArgs({}, 'true'))
    expect(result.code, result.stderr).toBe(0)
  })

  it('sshd sessions see the remote engine as their default engine', async () => {
    const result = await run('ssh', sshArgs({}, 'echo $DOCKER_HOST'))
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.trim()).toBe(bed.engines[bed.ssh.engine].host)
  })

  it('ssh refuses the wrong host key', async () => {
    const result = await run('ssh', sshArgs({knownHosts: bed.ssh.wrongKnownHosts}, 'true'))
    expect(result.code).toBe(255)
    expect(result.stderr).toContain('REMOTE HOST IDENTIFICATION HAS CHANGED')
  })

  describe('registries', () => {
    const {plain, secure} = bed.registries

    it('plain answers /v2/ without credentials', async () => {
      const reply = await fetchUrl(`${plain.url}/v2/`)
      expect(reply.status).toBe(200)
    })

    it('secure answers /v2/ with 401 without credentials and 200 with them, over TLS from the bed CA', async () => {
      const ca = await readFile(secure.ca!)
      const anonymous = await fetchUrl(`${secure.url}/v2/`, {ca})
      expect(anonymous.status).toBe(401)
      expect(anonymous.headers['www-authenticate']).toMatch(/^Basic /)
      const wrong = await fetchUrl(`${secure.url}/v2/`, {auth: `${secure.username}:wrong`, ca})
      expect(wrong.status).toBe(401)
      const authed = await fetchUrl(`${secure.url}/v2/`, {auth: `${secure.username}:${secure.password}`, ca})
      expect(authed.status).toBe(200)
      // 127.0.0.1 is in the certificate too
      const byIp = await fetchUrl(`${secure.url.replace('localhost', '127.0.0.1')}/v2/`, {ca})
      expect(byIp.status).toBe(401)
    })

    it('the classic engine pushes to and pulls from the plain registry', async () => {
      const ref = `${plain.host}/testbed/busybox:1`
      await dockerCli('classic', ['tag', bed.images.busybox, ref])
      try {
        await dockerCli('classic', ['push', '-q', ref])
        await dockerCli('classic', ['rmi', ref])
        await dockerCli('classic', ['pull', '-q', ref])
        const reply = await fetchUrl(`${plain.url}/v2/testbed/busybox/tags/list`)
        expect(JSON.parse(reply.body)).toMatchObject({name: 'testbed/busybox', tags: expect.arrayContaining(['1'])})
      } finally {
        await dockerCli('classic', ['rmi', ref]).catch(() => {})
      }
    })

    it('the classic engine logs in to, pushes to and pulls from the secure registry', async () => {
      const ref = `${secure.host}/testbed/busybox:1`
      // a throwaway client config: the login's credentials go there, not into any real one
      const config = await mkdtemp(path.join(os.tmpdir(), 'transship-docker-config-'))
      const env: NodeJS.ProcessEnv = {...process.env, DOCKER_CONFIG: config}
      delete env.DOCKER_HOST
      delete env.DOCKER_CONTEXT
      const docker = async (...args: string[]) => {
        const result = await run(bed.docker, ['-H', bed.engines.classic.host, ...args], {env, input: secure.password})
        expect(result.code, `docker ${args.join(' ')}: ${result.stderr}`).toBe(0)
        return result.stdout
      }

      try {
        const anonymous = await run(bed.docker, ['-H', bed.engines.classic.host, 'pull', '-q', ref], {env})
        expect(anonymous.code).not.toBe(0)
        await docker('login', '-u', secure.username!, '--password-stdin', secure.host)
        await docker('tag', bed.images.busybox, ref)
        await docker('push', '-q', ref)
        await docker('rmi', ref)
        expect(await docker('pull', '-q', ref)).toContain(ref)
      } finally {
        await run(bed.docker, ['-H', bed.engines.classic.host, 'rmi', ref], {env})
        await rm(config, {force: true, recursive: true})
      }
    })
  })

  it('tempHome() makes a HOME whose .ssh trusts the bed', async () => {
    const home = await tempHome({identity: true, sshConfig: 'Host bed\n  HostName 127.0.0.1\n'})
    try {
      // OpenSSH takes ~ from the password database, not from HOME, so name the files explicitly
      const args = sshArgs({knownHosts: path.join(home.sshDir, 'known_hosts')}, 'true')
      args[args.indexOf(bed.ssh.identityFile)] = path.join(home.sshDir, 'id_ed25519')
      const result = await run('ssh', args)
      expect(result.code, result.stderr).toBe(0)
      expect(await readFile(path.join(home.sshDir, 'config'), 'utf8')).toContain('Host bed')
    } finally {
      await home.cleanup()
    }
  })
})
