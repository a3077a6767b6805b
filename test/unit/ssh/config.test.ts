import {UsageError} from '@transship/kit'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'

import {resolveSshTarget, sshTargetKey} from '../../../src/ssh/config.js'

let home: string
let sshDir: string
beforeEach(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'transship-ssh-home-'))
  sshDir = path.join(home, '.ssh')
  await mkdir(sshDir, {mode: 0o700})
  vi.stubEnv('HOME', home)
  vi.stubEnv('SSH_AUTH_SOCK', '')
})
afterEach(async () => {
  vi.unstubAllEnvs()
  await rm(home, {force: true, recursive: true})
})

async function sshConfig(text: string): Promise<void> {
  await writeFile(path.join(sshDir, 'config'), text)
}

describe('resolveSshTarget', () => {
  it('uses the defaults without a config file', async () => {
    await writeFile(path.join(sshDir, 'id_ecdsa'), 'key')
    await writeFile(path.join(sshDir, 'id_rsa'), 'key')
    vi.stubEnv('SSH_AUTH_SOCK', '/run/agent.sock')
    const target = await resolveSshTarget('edge')
    expect(target).toMatchObject({
      acceptNewHostKey: false,
      agentSocket: '/run/agent.sock',
      alias: 'edge',
      host: 'edge',
      identityFiles: [path.join(sshDir, 'id_ecdsa'), path.join(sshDir, 'id_rsa')],
      knownHostsFile: path.join(sshDir, 'known_hosts'),
      port: 22,
      user: os.userInfo().username,
      warnings: [],
    })
    expect(target.knownHostsFiles[0]).toBe(path.join(sshDir, 'known_hosts'))
    expect(target.knownHostsFiles).toContain('/etc/ssh/ssh_known_hosts')
  })

  it('resolves an alias through HostName, User, Port, IdentityFile (with tokens) and UserKnownHostsFile', async () => {
    await sshConfig(
      [
        'Host edge',
        '  HostName 127.0.0.1',
        '  User deploy',
        '  Port 2222',
        '  IdentityFile ~/.ssh/%r_at_%h',
        '  IdentityFile %d/keys/%u-%n-%p.key',
        '  UserKnownHostsFile ~/.ssh/known_%h_%%',
        '  StrictHostKeyChecking accept-new',
        '  HashKnownHosts yes',
        'Host *',
        '  User nobody',
        '  Port 22',
      ].join('\n'),
    )
    const target = await resolveSshTarget('edge')
    const localUser = os.userInfo().username
    expect(target).toMatchObject({
      acceptNewHostKey: true,
      alias: 'edge',
      hashKnownHosts: true,
      host: '127.0.0.1',
      identityFiles: [path.join(sshDir, 'deploy_at_127.0.0.1'), path.join(home, 'keys', `${localUser}-edge-2222.key`)],
      knownHostsFile: path.join(sshDir, 'known_127.0.0.1_%'),
      port: 2222,
      user: 'deploy',
    })
    expect(sshTargetKey(target)).toBe('deploy@127.0.0.1:2222')
  })

  it('lets the destination and explicit values beat the config file', async () => {
    await sshConfig(
      ['Host edge', '  HostName 10.1.1.1', '  User deploy', '  Port 2222', '  StrictHostKeyChecking accept-new'].join(
        '\n',
      ),
    )
    expect(await resolveSshTarget('root@edge:2200')).toMatchObject({host: '10.1.1.1', port: 2200, user: 'root'})
    const target = await resolveSshTarget('root@edge:2200', {
      acceptNewHostKey: false,
      identityFile: '~/keys/ci',
      knownHostsFile: '/tmp/transship-kh',
      port: 2300,
      user: 'ci',
    })
    expect(target).toMatchObject({
      acceptNewHostKey: false,
      identityFiles: [path.join(home, 'keys', 'ci')],
      knownHostsFile: '/tmp/transship-kh',
      port: 2300,
      user: 'ci',
    })
    expect(target.knownHostsFiles[0]).toBe('/tmp/transship-kh')
  })

  it('takes the first value found, as ssh does, and matches Host patterns', async () => {
    await sshConfig(['Host *.prod !db.prod', '  User ops', 'Host *', '  User fallback'].join('\n'))
    expect((await resolveSshTarget('web.prod')).user).toBe('ops')
    expect((await resolveSshTarget('db.prod')).user).toBe('fallback')
  })

  it('treats StrictHostKeyChecking no as accept-new, with a warning', async () => {
    await sshConfig(['Host lax', '  StrictHostKeyChecking no', 'Host strict', '  StrictHostKeyChecking yes'].join('\n'))
    const lax = await resolveSshTarget('lax')
    expect(lax.acceptNewHostKey).toBe(true)
    expect(lax.warnings?.join('\n')).toMatch(/never disables host key checking/)
    expect((await resolveSshTarget('strict')).acceptNewHostKey).toBe(false)
    expect((await resolveSshTarget('lax', {acceptNewHostKey: false})).acceptNewHostKey).toBe(false)
  })

  it('honours IdentitiesOnly, IdentityAgent none and UserKnownHostsFile none', async () => {
    vi.stubEnv('SSH_AUTH_SOCK', '/run/agent.sock')
    await sshConfig(
      [
        'Host a',
        '  IdentitiesOnly yes',
        '  IdentityFile ~/.ssh/a',
        'Host b',
        '  IdentityAgent none',
        '  UserKnownHostsFile none',
      ].join('\n'),
    )
    expect(await resolveSshTarget('a')).toMatchObject({agentSocket: '/run/agent.sock', identitiesOnly: true})
    const b = await resolveSshTarget('b')
    expect(b.agentSocket).toBeUndefined()
    expect(b.knownHostsFile).toBeUndefined()
    expect(b.knownHostsFiles).not.toContain(path.join(sshDir, 'known_hosts'))
  })

  it('follows Include, relative to ~/.ssh, with globs', async () => {
    await mkdir(path.join(sshDir, 'config.d'))
    await writeFile(
      path.join(sshDir, 'config.d', '10-edge.conf'),
      ['Host edge', '  HostName 192.0.2.10', '  Port 2022'].join('\n'),
    )
    await writeFile(path.join(sshDir, 'config.d', '20-all.conf'), ['Host *', '  User included'].join('\n'))
    await sshConfig(['Include config.d/*.conf', 'Host edge', '  Port 9999'].join('\n'))
    expect(await resolveSshTarget('edge')).toMatchObject({host: '192.0.2.10', port: 2022, user: 'included'})
  })

  it('warns that ProxyJump is not supported', async () => {
    await sshConfig(['Host inner', '  ProxyJump bastion'].join('\n'))
    expect((await resolveSshTarget('inner')).warnings?.join('\n')).toMatch(
      /ProxyJump, which transship does not support/,
    )
  })

  it('refuses a bad Port or an unknown token in the config, and a bad destination', async () => {
    await sshConfig(['Host badport', '  Port ssh', 'Host badtoken', '  IdentityFile ~/.ssh/%Z'].join('\n'))
    await expect(resolveSshTarget('badport')).rejects.toThrow(
      /Port "ssh" in .*config \(Host badport\) is not a valid port/,
    )
    await expect(resolveSshTarget('badtoken')).rejects.toThrow(/"%Z" in "~\/.ssh\/%Z" is not a supported token/)
    await expect(resolveSshTarget('badtoken')).rejects.toBeInstanceOf(UsageError)
    await expect(resolveSshTarget('edge:99999')).rejects.toMatchObject({code: 'SSH_DESTINATION_INVALID'})
  })
})
