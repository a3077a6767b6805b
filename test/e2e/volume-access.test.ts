// The access modes of a volume's data against the real bed: a helper container on the classic engine (its socket
// here) and on the remote one (through SSH), `sudo -n` over each host's shell, and the refusals. The volumes'
// Mountpoints are local paths (every engine of the bed runs on this machine): what a command wrote is also
// checked there, with our own sha256.
import type {Host, RemoteProcess, RemoteShell, TransshipError} from '@transship/kit'

import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {
  DEFAULT_HELPER_IMAGE,
  openVolumeEnd,
  type VolumeEnd,
  type VolumeEndOptions,
} from '../../plugins/plugin-volumes/src/access/volume-end.js'
import {RunHosts} from '../../src/hosts/run-hosts.js'
import {resolveSshTarget} from '../../src/ssh/config.js'
import {SshPool} from '../../src/ssh/pool.js'
import {describeE2E, dockerCli, type EngineName, run, runBytes} from '../helpers/testbed.js'

const PREFIX = `tsacc-${process.pid}`
const MiB = 1024 * 1024
/** the bed's image with GNU tar, when the bed has it; else one is made from busybox and this machine's tar */
const BED_HELPER = 'transship-test/volume-helper:1'
const MADE_HELPER = `transship-e2e-access/helper:${process.pid}`
const log = {debug() {}, info() {}, warn() {}}

/** `size` bytes that are the same on every run: sha256 in counter mode from a fixed seed */
function seeded(size: number): Buffer {
  const blocks: Buffer[] = []
  for (let i = 0; i * 32 < size; i++) blocks.push(createHash('sha256').update(`volume-access-${i}`).digest())
  return Buffer.concat(blocks).subarray(0, size)
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file), hash)
  return hash.digest('hex')
}

/** Feeds `input` to a command and collects its stdout. */
async function talk(
  process: RemoteProcess,
  input?: Buffer,
): Promise<{code: null | number; stderr: string; stdout: Buffer}> {
  const chunks: Buffer[] = []
  const writing = input
    ? pipeline(Readable.from(chunksOf(input)), process.stdin as NodeJS.WritableStream)
    : Promise.resolve(process.stdin.end())
  const reading = (async () => {
    for await (const chunk of process.stdout) chunks.push(Buffer.from(chunk as Buffer))
  })()
  const [result] = await Promise.all([process.exit, writing, reading])
  return {...result, stdout: Buffer.concat(chunks)}
}

function* chunksOf(data: Buffer): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += 256 * 1024) yield data.subarray(offset, offset + 256 * 1024)
}

async function helpersOf(engine: EngineName, volume: string): Promise<string[]> {
  const out = await dockerCli(engine, ['ps', '-aq', '--filter', `label=transship.volume=${volume}`])
  return out.split('\n').filter(Boolean)
}

async function mountpoint(engine: EngineName, volume: string): Promise<string> {
  return (await dockerCli(engine, ['volume', 'inspect', '--format', '{{.Mountpoint}}', volume])).trim()
}

async function imageExists(engine: EngineName, image: string): Promise<boolean> {
  return dockerCli(engine, ['image', 'inspect', image]).then(
    () => true,
    () => false,
  )
}

/**
 * An image with GNU tar, from busybox plus this machine's tar and dash (busybox's sh would run its own tar
 * applet whatever PATH says, so `sh` is dash, found first on PATH in /usr/bin).
 */
async function makeHelperImage(engine: EngineName, busybox: string): Promise<void> {
  const files = new Set(['/usr/bin/dash', '/usr/bin/tar'])
  for (const binary of ['/usr/bin/tar', '/usr/bin/dash']) {
    const ldd = await run('ldd', [binary])
    for (const match of ldd.stdout.matchAll(/(\/\S+)/g)) files.add(match[1]!)
  }

  const archive = await runBytes('tar', [
    '-c',
    '--dereference',
    '-C',
    '/',
    '--transform=s,^usr/bin/dash$,usr/bin/sh,',
    ...[...files].map((file) => file.slice(1)),
  ])
  if (archive.code !== 0) throw new Error(`tar failed: ${archive.stderr}`)
  const container = (await dockerCli(engine, ['create', busybox, 'true'])).trim()
  try {
    await dockerCli(engine, ['cp', '-', `${container}:/`], {input: archive.stdout})
    await dockerCli(engine, ['commit', container, MADE_HELPER])
  } finally {
    await dockerCli(engine, ['rm', '-f', container])
  }
}

/** false when `user` exists here (where the bed's sshd runs), else why its test is skipped */
async function missing(user: string): Promise<false | string> {
  if ((await run('getent', ['passwd', user])).code === 0) return false
  return `the bed has no user ${user} yet (getent passwd ${user} found nothing)`
}

describeE2E('volume access', (bed) => {
  const engines: EngineName[] = ['classic', 'remote']
  let hosts: RunHosts
  const pool = new SshPool()
  let helperImage = BED_HELPER
  const volumes: Array<[EngineName, string]> = []
  let count = 0

  const ssh = (user: string) => ({
    engine: bed.engines.remote.socket,
    identityFile: bed.ssh.identityFile,
    knownHosts: bed.ssh.knownHosts,
    ssh: `${user}@${bed.ssh.host}:${bed.ssh.port}`,
  })

  async function createVolume(engine: EngineName): Promise<string> {
    const name = `${PREFIX}-${++count}`
    await dockerCli(engine, ['volume', 'create', name])
    volumes.push([engine, name])
    return name
  }

  /**
   * Host `engine`; with `user`, the remote host whose shell is that user's SSH session. Its engine is root's
   * when the user may not use it (sudo users need none), as the engine of a recipe host may be reached apart.
   */
  async function hostFor(engine: EngineName, user?: string): Promise<Host> {
    if (!user) return hosts.host(engine)
    if (user === 'tsdocker') return hosts.host(`remote-${user}`)
    const target = await resolveSshTarget(`${user}@${bed.ssh.host}:${bed.ssh.port}`, {
      identityFile: bed.ssh.identityFile,
      knownHostsFile: bed.ssh.knownHosts,
    })
    const connection = await pool.get(target)
    const root = await hosts.host('remote')
    const shell: RemoteShell = {
      engineSocket: root.shell.engineSocket,
      exec: (command, options) => connection.exec(command, options),
      run: async (command, options) => connection.run(command, options),
    }
    return {...root, name: `remote-${user}`, shell}
  }

  async function open(engine: EngineName, name: string, options: VolumeEndOptions, user?: string): Promise<VolumeEnd> {
    const host = await hostFor(engine, user)
    const {Driver, Mountpoint} = JSON.parse(
      await dockerCli(engine, ['volume', 'inspect', '--format', '{{json .}}', name]),
    ) as {
      Driver: string
      Mountpoint: string
    }
    return openVolumeEnd(host, {Driver, Mountpoint, Name: name}, options)
  }

  beforeAll(async () => {
    hosts = new RunHosts(
      {
        classic: {engine: bed.engines.classic.socket},
        remote: ssh(bed.ssh.user),
        'remote-tsdocker': ssh('tsdocker'),
      },
      {log},
    )
    for (const engine of engines) {
      if (await imageExists(engine, BED_HELPER)) continue
      helperImage = MADE_HELPER
      await makeHelperImage(engine, bed.images.busybox)
    }

    // sudo -n works for root where sudo is installed: the sudo end is tested as root until the bed has its users
    if ((await run('sh', ['-c', 'command -v sudo'])).code !== 0) {
      const install = await run('apt-get', ['install', '-y', '-q', 'sudo'])
      if (install.code !== 0) throw new Error(`no sudo, and apt-get install sudo failed: ${install.stderr}`)
    }
  })

  afterAll(async () => {
    await hosts?.close()
    await pool.closeAll()
    for (const [engine, name] of volumes) {
      for (const id of await helpersOf(engine, name)) await dockerCli(engine, ['rm', '-f', id])
      await dockerCli(engine, ['volume', 'rm', '-f', name])
    }

    if (helperImage === MADE_HELPER) {
      for (const engine of engines) await dockerCli(engine, ['rmi', '-f', MADE_HELPER]).catch(() => '')
    }
  })

  describe.each(engines)('engine end on %s', (engine) => {
    it('writes a file through stdin and reads it back through stdout, byte for byte; closing removes the helper', async () => {
      const name = await createVolume(engine)
      const end = await open(engine, name, {access: 'engine', helperImage, readOnly: false})
      try {
        expect(end).toMatchObject({access: 'engine', host: engine, root: '/volume'})
        expect(end.describe).toBe(`helper container ${helperImage} on the engine`)
        expect(end.tools.gnuTar).toBe(true)
        expect(end.limits).toEqual(['trusted.* xattrs (the helper lacks CAP_SYS_ADMIN)'])
        expect(await helpersOf(engine, name)).toHaveLength(1)

        const data = seeded(5 * MiB + 123)
        const written = await talk(end.shell.exec('cat > /volume/x && wc -c < /volume/x'), data)
        expect(written).toMatchObject({code: 0, stderr: ''})
        expect(written.stdout.toString().trim()).toBe(String(data.length))
        expect(await fileSha256(path.join(await mountpoint(engine, name), 'x'))).toBe(sha256(data))

        const read = await talk(end.shell.exec('cat /volume/x'))
        expect(read.code).toBe(0)
        expect(read.stdout.length).toBe(data.length)
        expect(sha256(read.stdout)).toBe(sha256(data))
      } finally {
        await end.close()
        await end.close()
      }

      expect(await helpersOf(engine, name)).toEqual([])
    })

    it('gives the exit code and stderr of a command; run() collects its output', async () => {
      const name = await createVolume(engine)
      const end = await open(engine, name, {access: 'engine', helperImage, readOnly: false})
      try {
        expect(await talk(end.shell.exec('echo out; echo oops >&2; exit 7'))).toMatchObject({
          code: 7,
          stderr: 'oops\n',
        })
        expect(await end.shell.run('id -u; pwd; echo "$0"')).toEqual({code: 0, stderr: '', stdout: '0\n/\nsh\n'})
        // input the command does not read: its writer is not left waiting
        const unread = end.shell.exec('exit 3')
        unread.stdout.resume()
        const writing = pipeline(Readable.from(chunksOf(seeded(8 * MiB))), unread.stdin).catch(() => 'failed')
        expect((await unread.exit).code).toBe(3)
        await writing
      } finally {
        await end.close()
      }
    })

    it('aborting stops a command within a second and removes the helper', async () => {
      const name = await createVolume(engine)
      const controller = new AbortController()
      const end = await open(engine, name, {access: 'engine', helperImage, readOnly: false, signal: controller.signal})
      const process = end.shell.exec('sleep 60', {signal: controller.signal})
      process.stdin.end()
      process.stdout.on('error', () => {})
      process.stdout.resume()
      setTimeout(() => controller.abort(new Error('stop')), 300)
      const started = Date.now()
      await expect(process.exit).rejects.toThrow('stop')
      expect(Date.now() - started).toBeLessThan(1300)
      for (let i = 0; i < 50 && (await helpersOf(engine, name)).length > 0; i++) {
        await sleep(100)
      }

      expect(await helpersOf(engine, name)).toEqual([])
      await end.close()
    })

    it('mounts the volume read-only for a source end', async () => {
      const name = await createVolume(engine)
      const end = await open(engine, name, {access: 'engine', helperImage, readOnly: true})
      try {
        const touched = await end.shell.run('touch /volume/y')
        expect(touched.code).not.toBe(0)
        expect(touched.stderr).toMatch(/read-only/i)
      } finally {
        await end.close()
      }
    })

    it('refuses a helper image without GNU tar, and one the engine has not and cannot pull; no helper is left', async () => {
      const name = await createVolume(engine)
      const noTar = await open(engine, name, {
        access: 'engine',
        helperImage: bed.images.busybox,
        readOnly: false,
      }).catch((error: unknown) => error as TransshipError)
      expect(noTar).toMatchObject({code: 'VOLUME_TAR_MISSING', exit: 2})
      expect((noTar as Error).message).toContain(`the helper image ${bed.images.busybox} has no GNU tar`)

      const absent = `${bed.registries.plain.host}/${PREFIX}/absent:0`
      const missing = await open(engine, name, {access: 'engine', helperImage: absent, readOnly: false}).catch(
        (error: unknown) => error as TransshipError,
      )
      expect(missing).toMatchObject({code: 'VOLUME_HELPER_IMAGE_MISSING', exit: 2})
      expect((missing as Error).message).toContain(absent)
      expect((missing as TransshipError).suggestions.join('\n')).toContain('helperImage')
      expect(await helpersOf(engine, name)).toEqual([])
    })
  })

  describe.each(engines)('sudo and root ends on %s (as root)', (engine) => {
    it('sudo -n runs the commands as root on the Mountpoint', async () => {
      const name = await createVolume(engine)
      const end = await open(engine, name, {access: 'sudo', readOnly: false})
      expect(end).toMatchObject({
        access: 'sudo',
        describe: 'sudo -n as root',
        limits: [],
        root: await mountpoint(engine, name),
      })
      const data = seeded(3 * MiB)
      const quoted = `'${end.root}/it'\\''s'`
      expect(await talk(end.shell.exec(`cat > ${quoted}; id -u`), data)).toMatchObject({
        code: 0,
        stdout: Buffer.from('0\n'),
      })
      expect(await fileSha256(path.join(end.root, "it's"))).toBe(sha256(data))
      expect(await end.shell.run('echo oops >&2; exit 7')).toMatchObject({code: 7, stderr: 'oops\n'})
      await end.close()
    })

    it('auto as root is root, and never starts a helper', async () => {
      const name = await createVolume(engine)
      const end = await open(engine, name, {readOnly: false})
      expect(end).toMatchObject({
        access: 'root',
        describe: engine === 'remote' ? 'root over SSH' : 'root on this machine',
        root: await mountpoint(engine, name),
      })
      expect(await helpersOf(engine, name)).toEqual([])
      await end.close()
    })
  })

  describe('users that are not root (SSH to the remote host)', async () => {
    it.skipIf(await missing('tssudo'))('tssudo (NOPASSWD sudo): auto and sudo go through sudo -n', async () => {
      const name = await createVolume('remote')
      for (const access of ['auto', 'sudo'] as const) {
        const end = await open('remote', name, {access, readOnly: false}, 'tssudo')
        expect(end).toMatchObject({access: 'sudo', describe: 'sudo -n as tssudo'})
        expect(await end.shell.run(`id -u; touch '${end.root}/by-sudo'`)).toMatchObject({code: 0, stdout: '0\n'})
        await end.close()
      }
    })

    it.skipIf(await missing('tspass'))('tspass (sudo wants a password): sudo is refused up front', async () => {
      const name = await createVolume('remote')
      const refused = await open('remote', name, {access: 'sudo', readOnly: false}, 'tspass').catch(
        (error: unknown) => error as TransshipError,
      )
      expect(refused).toMatchObject({code: 'VOLUME_SUDO_PASSWORD', exit: 2})
      expect((refused as TransshipError).suggestions.join('\n')).toMatch(/NOPASSWD[\s\S]*access: engine/)
      expect(await run('ls', ['-A', await mountpoint('remote', name)])).toMatchObject({stdout: ''})
    })

    it.skipIf(await missing('tsdocker'))(
      'tsdocker (docker group only): auto is engine; root and sudo are refused',
      async () => {
        const name = await createVolume('remote')
        const end = await open('remote', name, {helperImage, readOnly: false}, 'tsdocker')
        expect(end.access).toBe('engine')
        expect(await end.shell.run('id -u')).toMatchObject({code: 0, stdout: '0\n'})
        await end.close()
        await expect(open('remote', name, {access: 'root', readOnly: false}, 'tsdocker')).rejects.toMatchObject({
          code: 'VOLUME_NEEDS_ROOT',
        })
        await expect(open('remote', name, {access: 'sudo', readOnly: false}, 'tsdocker')).rejects.toMatchObject({
          code: expect.stringMatching(/^VOLUME_SUDO_(PASSWORD|MISSING)$/),
        })
        expect(await helpersOf('remote', name)).toEqual([])
      },
    )
  })

  it('names debian:bookworm-slim as the default helper image', () => {
    expect(DEFAULT_HELPER_IMAGE).toBe('debian:bookworm-slim')
  })
})
