// The bed's non-root SSH users and its volume helper image: what copies of volumes by a user in
// group docker, a passwordless sudoer and a sudoer with a password rely on.
import {describe, expect, it} from 'vitest'

import {describeE2E, dockerCli, type EngineName, run, sshArgs} from '../helpers/testbed.js'

const ENGINES: EngineName[] = ['classic', 'remote', 'containerd']

/** runs COMMAND on the bed's sshd as USER */
function ssh(user: string, command: string) {
  return run('ssh', sshArgs({user}, command))
}

describeE2E('test bed users and volume helper', (bed) => {
  const {docker, sudo, sudoPassword} = bed.ssh.users
  const remoteSocket = bed.engines.remote.socket

  describe.each([docker, sudo, sudoPassword])('%s', (user) => {
    it('logs in with the bed key and is not root, with bash and a home directory', async () => {
      const result = await ssh(user, 'id -u; echo "$0"; test -d "$HOME" && echo home')
      expect(result.code, result.stderr).toBe(0)
      const [uid, shell, home] = result.stdout.trim().split('\n')
      expect(Number(uid)).toBeGreaterThan(0)
      expect(shell).toBe('bash')
      expect(home).toBe('home')
    })
  })

  it(`${docker} reaches the remote engine's socket but has no sudo`, async () => {
    const ping = await ssh(docker, `curl -sS --max-time 10 --unix-socket ${remoteSocket} http://localhost/_ping`)
    expect(ping.code, ping.stderr).toBe(0)
    expect(ping.stdout).toBe('OK')
    const groups = await ssh(docker, 'id -nG')
    expect(groups.stdout.trim().split(' ')).toContain('docker')
    const sudoTry = await ssh(docker, 'sudo -n true')
    expect(sudoTry.code).not.toBe(0)
  })

  // transship reaches a host's engine through its socket forwarded as the SSH user: every user of the bed may
  it(`${sudo} runs sudo without a password and reaches the engine`, async () => {
    const result = await ssh(sudo, 'sudo -n id -u')
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.trim()).toBe('0')
    const ping = await ssh(sudo, `curl -sS --max-time 10 --unix-socket ${remoteSocket} http://localhost/_ping`)
    expect(ping.stdout).toBe('OK')
  })

  it(`${sudoPassword} needs a password for sudo`, async () => {
    const result = await ssh(sudoPassword, 'sudo -n true')
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain('a password is required')
  })

  describe.each(ENGINES)('volume helper image on the %s engine', (engine) => {
    it('has GNU tar, GNU findutils, coreutils, zstd, rsync and getfattr', async () => {
      const out = await dockerCli(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        bed.images.volumeHelper,
        'sh',
        '-c',
        'tar --version; find --version; sha256sum --version; zstd --version; rsync --version; getfattr --version',
      ])
      expect(out).toContain('tar (GNU tar)')
      expect(out).toContain('find (GNU findutils)')
      expect(out).toContain('sha256sum (GNU coreutils)')
      expect(out).toContain('Zstandard CLI')
      expect(out).toMatch(/rsync +version/)
      expect(out).toMatch(/^getfattr \d/m)
    })

    it('keeps busybox as a helper image that lacks GNU tar', async () => {
      const out = await dockerCli(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        bed.images.busybox,
        'sh',
        '-c',
        'tar --version 2>&1; true',
      ])
      expect(out).not.toContain('GNU tar')
      expect(out).toContain('tar (busybox)')
    })
  })
})
