// `hosts check` against real engines (local socket, and a remote one over OpenSSH) and every way an SSH
// host can be refused: each gives a clear error, a non-zero exit, and changes nothing.
import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {afterEach, beforeEach, expect, it} from 'vitest'

import {edgeSshConfig, transship} from '../helpers/cli.js'
import {recipeYaml} from '../helpers/recipe.js'
import {describeE2E, tempHome, type TempHome} from '../helpers/testbed.js'

describeE2E('transship hosts check', (bed) => {
  let home: TempHome
  let recipe: string
  beforeEach(async () => {
    home = await tempHome({sshConfig: edgeSshConfig(bed)})
    recipe = path.join(home.home, 'hosts.yaml')
    await recipeYaml({
      hosts: {
        edge: {engine: bed.engines.remote.socket, ssh: 'edge'},
        modern: {engine: `unix://${bed.engines.containerd.socket}`},
      },
    }).write(recipe)
  })
  afterEach(async () => home.cleanup())

  const local = () => ({dockerHost: bed.engines.classic.host, home: home.home})

  it('reports every host: engine version, API version, image store and free disk', async () => {
    const result = await transship(['hosts', 'check', recipe, '--json'], local())
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const checks = JSON.parse(result.stdout) as Array<Record<string, unknown>>
    const byHost = Object.fromEntries(checks.map((check) => [check.host, check]))
    expect(byHost.local).toMatchObject({
      apiVersion: '1.41',
      imageStore: 'classic',
      reachable: true,
      version: bed.engines.classic.version,
    })
    expect(byHost.modern).toMatchObject({
      apiVersion: '1.45',
      imageStore: 'containerd',
      reachable: true,
      version: bed.engines.containerd.version,
    })
    expect(byHost.edge).toMatchObject({
      apiVersion: '1.41',
      imageStore: 'classic',
      reachable: true,
      version: bed.engines.remote.version,
    })
    for (const check of checks) expect(check.freeBytes).toBeGreaterThan(0)

    const human = await transship(['hosts', 'check', recipe], local())
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/^edge\s+ok\s+20\.10\.\d+\S*\s+1\.41\s+classic \(overlay2\)/m)
    expect(human.stdout).toMatch(/^modern\s+ok\s+26\.1\.\d+\S*\s+1\.45\s+containerd snapshotter \(overlayfs\)/m)
  })

  it('refuses a host whose key differs from known_hosts, and leaves known_hosts alone', async () => {
    await writeFile(path.join(home.sshDir, 'known_hosts'), await readFile(bed.ssh.wrongKnownHosts))
    const before = await readFile(path.join(home.sshDir, 'known_hosts'), 'utf8')
    const result = await transship(['hosts', 'check', recipe, '--host', 'edge', '--accept-new-host-key'], local())
    expect(result.code).toBe(4)
    expect(result.stdout).toMatch(/^edge\s+UNREACHABLE/m)
    expect(result.stderr).toMatch(/host key/i)
    expect(await readFile(path.join(home.sshDir, 'known_hosts'), 'utf8')).toBe(before)
  })

  it('refuses an unknown host unless told to accept a new key, then remembers it', async () => {
    const fresh = await tempHome({knownHosts: 'none', sshConfig: edgeSshConfig(bed)})
    try {
      const refused = await transship(['hosts', 'check', recipe, '--host', 'edge'], {home: fresh.home})
      expect(refused.code).toBe(4)
      expect(refused.stdout).toMatch(/is not known/)
      expect(refused.stderr).toMatch(/ssh-keyscan|accept-new-host-key/)
      await expect(readFile(path.join(fresh.sshDir, 'known_hosts'))).rejects.toThrow()

      const accepted = await transship(['hosts', 'check', recipe, '--host', 'edge', '--accept-new-host-key'], {
        home: fresh.home,
      })
      expect(accepted.code).toBe(0)
      const knownHosts = await readFile(path.join(fresh.sshDir, 'known_hosts'), 'utf8')
      expect(knownHosts).toContain(`[${bed.ssh.host}]:${bed.ssh.port} ssh-ed25519 `)

      const again = await transship(['hosts', 'check', recipe, '--host', 'edge'], {home: fresh.home})
      expect(again.code).toBe(0)
    } finally {
      await fresh.cleanup()
    }
  })

  it('reports a refused client key as an authentication failure', async () => {
    const stranger = await tempHome({sshConfig: edgeSshConfig(bed, {identityFile: '~/.ssh/stranger'})})
    try {
      const {generateKeyPairSync} = await import('node:crypto')
      const {privateKey} = generateKeyPairSync('ed25519', {
        privateKeyEncoding: {format: 'pem', type: 'pkcs8'},
        publicKeyEncoding: {format: 'pem', type: 'spki'},
      })
      await writeFile(path.join(stranger.sshDir, 'stranger'), privateKey, {mode: 0o600})
      const result = await transship(['hosts', 'check', recipe, '--host', 'edge'], {home: stranger.home})
      expect(result.code).toBe(4)
      expect(result.stdout).toMatch(/^edge\s+UNREACHABLE/m)
      expect(result.stdout).toMatch(/root@127\.0\.0\.1/)
    } finally {
      await stranger.cleanup()
    }
  })

  it('reports a closed port as unreachable (exit 3)', async () => {
    await recipeYaml({hosts: {gone: {ssh: 'root@127.0.0.1:1'}}}).write(recipe)
    const result = await transship(['hosts', 'check', recipe, '--host', 'gone'], local())
    expect(result.code).toBe(3)
    expect(result.stdout).toMatch(/^gone\s+UNREACHABLE.*refused/m)
  })

  it('reports an engine socket that does not exist', async () => {
    await recipeYaml({hosts: {nowhere: {engine: 'unix:///run/transship-testbed/none.sock'}}}).write(recipe)
    const result = await transship(['hosts', 'check', recipe, '--host', 'nowhere'], local())
    expect(result.code).toBe(3)
    expect(result.stdout).toMatch(/no Docker engine answers at unix:\/\/\/run\/transship-testbed\/none\.sock/)
  })
})
