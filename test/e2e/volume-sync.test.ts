// Volume copies part two, against the real engines and sshd: the data crosses once and the proof is made on
// each host; sync sends only what changed (the hosts' rsync, or the changed files); a live move stops the
// writer only for the final delta; SSH users that are not root copy through sudo or a helper container; a cut
// copy is finished by the next run; a full destination fails clearly. Every engine of the bed runs on this
// machine, so what landed is checked here with our own lstat, sha256, readlink and xattrs (snapshot()).
import {createCipheriv, randomBytes} from 'node:crypto'
import {appendFile, mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {transship} from '../helpers/cli.js'
import {recipeYaml} from '../helpers/recipe.js'
import {describeE2E, dockerCli, type EngineName, run, tempHome, type TempHome} from '../helpers/testbed.js'
import {
  fillRich,
  isRunning,
  MARKER,
  MiB,
  runWithVolume,
  snapshot,
  startCli,
  waitFor,
} from '../helpers/volume-fixtures.js'

interface Report {
  access: {destination: string; source: string}
  bytes: number
  downtimeSeconds?: number
  files: number
  hashed: number
  limits: string[]
  method: 'files' | 'rsync' | 'tar'
  presync?: {bytes: number; method: string; seconds: number}
  removed: number
  seconds: number
  stopped: string[]
  verified: boolean
}

/** Deterministic bytes that do not compress (AES-CTR of zeros, keyed by the seed): a failure can be replayed. */
function seeded(seed: number, length: number): Buffer {
  const key = Buffer.alloc(16)
  key.writeUInt32LE(seed)
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length))
}

/** a small-files tree with one larger file: 200 files of 1-8 KiB, and big.bin of 20 MiB */
async function fillMany(root: string): Promise<void> {
  await mkdir(path.join(root, 'small'), {recursive: true})
  for (let i = 0; i < 200; i++) {
    await writeFile(path.join(root, 'small', `f${i}.txt`), seeded(i + 1, 1024 * (1 + (i % 8))))
  }

  await writeFile(path.join(root, 'big.bin'), seeded(7, 20 * MiB))
}

describeE2E('transship volume copy: once over the link, incremental, live, any SSH user', (bed) => {
  let home: TempHome
  let work: string
  let options: {dockerHost: string; home: string}
  const prefix = `e2e-vsync-${randomBytes(3).toString('hex')}`
  const volumes: Array<[EngineName, string]> = []
  const containers: Array<[EngineName, string]> = []
  const images: Array<[EngineName, string]> = []

  const remote = (user = bed.ssh.user) => `ssh://${user}@${bed.ssh.host}:${bed.ssh.port}${bed.engines.remote.socket}`

  async function mountpointOf(engine: EngineName, name: string): Promise<string | undefined> {
    const result = await run(bed.docker, ['-H', bed.engines[engine].host, 'volume', 'inspect', name])
    if (result.code !== 0) return undefined
    return (JSON.parse(result.stdout) as Array<{Mountpoint: string}>)[0]!.Mountpoint
  }

  async function createVolume(engine: EngineName, name: string, opts: string[] = []): Promise<string> {
    volumes.push([engine, name])
    await dockerCli(engine, ['volume', 'create', ...opts, name])
    return (await mountpointOf(engine, name))!
  }

  function expectVolume(engine: EngineName, name: string): string {
    volumes.push([engine, name])
    return name
  }

  async function copy(args: string[]): Promise<Report> {
    const result = await transship(['volume', 'copy', ...args, '--json'], options)
    expect(result.code, result.stderr + result.stdout).toBe(0)
    const report = JSON.parse(result.stdout) as Report
    expect(report.verified).toBe(true)
    return report
  }

  beforeAll(async () => {
    home = await tempHome({identity: true})
    options = {dockerHost: bed.engines.classic.host, home: home.home}
    work = await mkdtemp(path.join(os.tmpdir(), 'transship-e2e-vsync-'))
  })

  afterAll(async () => {
    for (const [engine, container] of containers) await dockerCli(engine, ['rm', '-f', container]).catch(() => '')
    for (const [engine, name] of volumes) await dockerCli(engine, ['volume', 'rm', '-f', name]).catch(() => '')
    for (const [engine, image] of images) await dockerCli(engine, ['rmi', '-f', image]).catch(() => '')
    await rm(work, {force: true, recursive: true})
    await home?.cleanup()
  })

  it('a full copy sends the data once and proves it with listings made on each host', async () => {
    const name = `${prefix}-full`
    const source = await createVolume('classic', name)
    await fillRich(source)
    await writeFile(path.join(source, 'random.bin'), seeded(3, 8 * MiB))
    const before = await snapshot(source)
    const report = await copy([expectVolume('remote', name), '--to', remote()])
    expect(report.method).toBe('tar')
    // every regular file's content was hashed on both hosts
    const regular = Object.values(before).filter((entry) => entry.type === 'file')
    expect(report.hashed).toBe(regular.length)
    // what crossed is the data once: the 8 MiB of random bytes and the rest, not twice that
    const content = regular.reduce((sum, entry) => sum + (entry.size ?? 0), 0) - 100 * MiB // the sparse file's hole
    expect(report.bytes).toBeGreaterThan(8 * MiB)
    expect(report.bytes).toBeLessThan(content * 1.2)
    const destination = (await mountpointOf('remote', name))!
    expect(await snapshot(destination)).toEqual(before)
  })

  it("sync sends only what changed, through the hosts' rsync, removes what is gone, and re-syncs an unchanged volume at once", async () => {
    const name = `${prefix}-sync`
    const source = await createVolume('classic', name)
    await fillMany(source)
    const target = expectVolume('remote', name)
    const first = await copy([name, '--to', remote(), '--mode', 'sync'])
    expect(first.method).toBe('tar') // an empty destination gets everything as one stream

    // 1 % of the small files rewritten, 1 MiB appended to the 20 MiB file, one file gone, one new
    await writeFile(path.join(source, 'small', 'f3.txt'), seeded(1003, 4096))
    await writeFile(path.join(source, 'small', 'f4.txt'), seeded(1004, 5120))
    await appendFile(path.join(source, 'big.bin'), seeded(1005, MiB))
    await rm(path.join(source, 'small', 'f5.txt'))
    await writeFile(path.join(source, 'new.txt'), 'new\n')
    const second = await copy([name, '--to', remote(), '--mode', 'sync'])
    expect(second.method).toBe('rsync')
    // the appended MiB and the two small files, not the 21 MiB file again
    expect(second.bytes).toBeGreaterThan(MiB)
    expect(second.bytes).toBeLessThan(3 * MiB)
    expect(second.removed).toBe(1)
    const destination = (await mountpointOf('remote', target))!
    expect(await snapshot(destination)).toEqual(await snapshot(source))

    // an equal volume is not touched at all: not even marked unfinished for the time of the sync
    const changedAt = (await stat(destination)).ctimeMs
    const third = await copy([name, '--to', remote(), '--mode', 'sync'])
    expect(third.method).toBe('none')
    expect(third.bytes).toBe(0)
    expect(third.removed).toBe(0)
    expect(third.hashed).toBe(0)
    expect((await stat(destination)).ctimeMs).toBe(changedAt)
    expect(await snapshot(destination)).toEqual(await snapshot(source))
  })

  it('sync without rsync at one end sends the changed files whole, and says so', async () => {
    // the bed's helper image without rsync, as a host without rsync
    const image = `transship-test/volume-helper:no-rsync-${prefix}`
    const builder = `${prefix}-no-rsync`
    await dockerCli('remote', [
      'run',
      '--name',
      builder,
      '--network',
      'none',
      bed.images.volumeHelper,
      'sh',
      '-c',
      'rm -f "$(command -v rsync)"',
    ])
    await dockerCli('remote', ['commit', builder, image])
    await dockerCli('remote', ['rm', builder])
    images.push(['remote', image])

    const name = `${prefix}-files`
    const source = await createVolume('classic', name)
    await fillMany(source)
    const target = expectVolume('remote', name)
    const engine = ['--to-access', 'engine', '--helper-image', image]
    const first = await copy([name, '--to', remote(), '--mode', 'sync', ...engine])
    expect(first.access.destination).toContain(image)
    await writeFile(path.join(source, 'small', 'f9.txt'), seeded(2009, 2048))
    await rm(path.join(source, 'small', 'f10.txt'))
    const second = await copy([name, '--to', remote(), '--mode', 'sync', ...engine])
    expect(second.method).toBe('files')
    expect(second.bytes).toBeLessThan(256 * 1024)
    expect(second.removed).toBe(1)
    expect(await snapshot((await mountpointOf('remote', target))!)).toEqual(await snapshot(source))
  })

  it('a live move copies while the writer runs and stops it only for the final delta', async () => {
    const name = `${prefix}-live`
    const source = await createVolume('classic', name)
    // 512 MiB: enough that copying it takes seconds even over loopback, written 64 MiB at a time
    for (let i = 0; i < 8; i++) await appendFile(path.join(source, 'bulk.bin'), seeded(11 + i, 64 * MiB))
    const writer = `${prefix}-live-writer`
    containers.push(['classic', writer])
    await runWithVolume(
      bed.images.busybox,
      writer,
      name,
      "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo line $i >> /data/log; sleep 0.05; done",
    )
    await waitFor(
      'the writer to write',
      async () => (await stat(path.join(source, 'log')).catch(() => {})) !== undefined,
    )
    // the baseline: stop, copy everything, start
    const stopCopy = await copy([
      name,
      '--as',
      expectVolume('remote', `${name}-stop`),
      '--to',
      remote(),
      '--quiesce',
      'stop',
      '--grace',
      '2',
    ])
    expect(stopCopy.stopped).toEqual([writer])
    const target = expectVolume('remote', name)
    const report = await copy([name, '--to', remote(), '--quiesce', 'stop', '--presync', '--grace', '2'])
    expect(report.stopped).toEqual([writer])
    expect(report.presync).toMatchObject({method: 'tar'})
    // the stop lasted the final delta: far less than stopping for the whole copy
    expect(report.downtimeSeconds!, JSON.stringify({live: report, stopCopy})).toBeLessThan(
      stopCopy.downtimeSeconds! / 2,
    )
    expect(report.bytes - report.presync!.bytes).toBeLessThan(MiB)
    expect(await isRunning(writer)).toBe(true)
    // a still picture of the moment it stopped: whole lines, and the source went on from exactly there
    const copied = await readFile(path.join((await mountpointOf('remote', target))!, 'log'), 'utf8')
    expect(copied.endsWith('\n')).toBe(true)
    await waitFor('the writer to write again', async () => (await stat(path.join(source, 'log'))).size > copied.length)
    expect((await readFile(path.join(source, 'log'), 'utf8')).startsWith(copied)).toBe(true)
  })

  it('an SSH user that is not root copies through sudo -n, and through a helper container on the engine', async () => {
    const name = `${prefix}-user`
    const source = await createVolume('classic', name)
    await fillRich(source)
    const before = await snapshot(source)

    const viaSudo = expectVolume('remote', `${name}-sudo`)
    const sudo = await copy([name, '--as', viaSudo, '--to', remote(bed.ssh.users.sudo), '--to-access', 'sudo'])
    expect(sudo.access.destination).toMatch(/sudo/)
    expect(await snapshot((await mountpointOf('remote', viaSudo))!)).toEqual(before)

    const viaEngine = expectVolume('remote', `${name}-engine`)
    const engine = await copy([
      name,
      '--as',
      viaEngine,
      '--to',
      remote(bed.ssh.users.docker),
      '--to-access',
      'engine',
      '--helper-image',
      bed.images.volumeHelper,
    ])
    expect(engine.access.destination).toContain(bed.images.volumeHelper)
    expect(await snapshot((await mountpointOf('remote', viaEngine))!)).toEqual(before)
    // no helper container is left behind
    const left = await dockerCli('remote', ['ps', '-aq', '--filter', 'label=transship.helper'])
    expect(left.trim()).toBe('')

    // auto picks the engine for a user without root or sudo
    const auto = await copy([
      name,
      '--as',
      expectVolume('remote', `${name}-auto`),
      '--to',
      remote(bed.ssh.users.docker),
      '--helper-image',
      bed.images.volumeHelper,
    ])
    expect(auto.access.destination).toContain(bed.images.volumeHelper)
  })

  it('refuses up front, changing nothing: sudo that asks for a password, a helper image without GNU tar', async () => {
    const name = `${prefix}-refuse`
    const source = await createVolume('classic', name)
    await writeFile(path.join(source, 'a.txt'), 'a\n')

    const password = await transship(
      ['volume', 'copy', name, '--as', `${name}-pw`, '--to', remote(bed.ssh.users.sudoPassword), '--to-access', 'sudo'],
      options,
    )
    expect(password.code, password.stderr).toBe(2)
    expect(password.stderr).toMatch(/password/)
    expect(password.stderr).toMatch(/NOPASSWD|access: engine|--to-access engine/)
    expect(await mountpointOf('remote', expectVolume('remote', `${name}-pw`))).toBeUndefined()

    const noTar = await transship(
      [
        'volume',
        'copy',
        name,
        '--as',
        `${name}-bb`,
        '--to',
        remote(),
        '--to-access',
        'engine',
        '--helper-image',
        bed.images.busybox,
      ],
      options,
    )
    expect(noTar.code, noTar.stderr).toBe(2)
    expect(noTar.stderr).toMatch(/GNU tar/)
    expect(noTar.stderr).toContain(bed.images.busybox)
    expect(await mountpointOf('remote', expectVolume('remote', `${name}-bb`))).toBeUndefined()
  })

  it('a copy cut mid-transfer is finished by the next run, which sends only what is still missing', async () => {
    const name = `${prefix}-cut`
    const source = await createVolume('classic', name)
    const size = 200 * MiB
    await writeFile(path.join(source, 'blob'), seeded(21, size))
    const target = expectVolume('remote', name)
    const cli = startCli(['volume', 'copy', name, '--to', remote()], options)
    await waitFor(
      'half of the blob to land',
      async () => {
        if (cli.child.exitCode !== null) return true
        const mountpoint = await mountpointOf('remote', target)
        const landed = mountpoint && (await stat(path.join(mountpoint, 'blob')).catch(() => {}))
        return landed !== undefined && landed !== '' && landed.size > size / 2
      },
      60_000,
      20,
    )
    expect(cli.child.exitCode, `the copy ended before it was cut: ${cli.output()}`).toBeNull()
    cli.child.kill('SIGKILL')
    await cli.closed
    const destination = (await mountpointOf('remote', target))!
    await waitFor('the cut tar to end', async () => (await run('pgrep', ['-f', destination])).code !== 0, 20_000, 100)
    expect(await readFile(path.join(destination, MARKER)).then(() => true)).toBe(true)

    const again = await copy([name, '--to', remote()])
    expect(again.method).toBe('rsync')
    expect(again.bytes).toBeLessThan(size * 0.6)
    expect(await snapshot(destination)).toEqual(await snapshot(source))
  })

  it('a destination that runs out of space fails clearly, stays marked unfinished, and the writer is started again', async () => {
    const name = `${prefix}-full-disk`
    const source = await createVolume('classic', name)
    await writeFile(path.join(source, 'blob'), seeded(31, 24 * MiB))
    const writer = `${prefix}-disk-writer`
    containers.push(['classic', writer])
    await runWithVolume(bed.images.busybox, writer, name, "trap 'exit 0' TERM; while true; do sleep 1; done")
    // an 8 MiB ext4 file system on a loop device: a volume the engine mounts, small, and kept between mounts
    const image = path.join(work, 'small.ext4')
    expect((await run('sh', ['-c', `truncate -s 8M '${image}' && mkfs.ext4 -q '${image}'`])).code).toBe(0)
    const loop = (await run('losetup', ['-f', '--show', image])).stdout.trim()
    expect(loop).toMatch(/^\/dev\/loop\d+$/)
    const target = `${name}-small`
    try {
      await createVolume('remote', target, ['--opt', 'type=ext4', '--opt', `device=${loop}`])
      const result = await transship(
        [
          'volume',
          'copy',
          name,
          '--as',
          target,
          '--to',
          remote(),
          '--mode',
          'replace', // a fresh ext4 holds lost+found
          '--quiesce',
          'stop',
          '--grace',
          '1',
          // the engine mounts it: its data is reached through a helper container
          '--helper-image',
          bed.images.volumeHelper,
        ],
        options,
      )
      expect(result.code, result.stderr).toBe(1)
      expect(result.stderr).toMatch(/the destination volume is full: \d+ KiB free of \d+ KiB/)
      expect(await isRunning(writer)).toBe(true)
      const inside = await dockerCli('remote', [
        'run',
        '--rm',
        '--network',
        'none',
        '-v',
        `${target}:/v`,
        bed.images.busybox,
        'ls',
        '-a',
        '/v',
      ])
      expect(inside).toContain(MARKER)
    } finally {
      await dockerCli('remote', ['volume', 'rm', '-f', target]).catch(() => '')
      await run('losetup', ['-d', loop])
    }
  })

  it('plan says, per volume, the files and bytes a copy or sync would send and how each host is reached', async () => {
    const name = `${prefix}-plan`
    const source = await createVolume('classic', name)
    await fillMany(source)
    const recipe = path.join(work, 'plan.yaml')
    await recipeYaml({
      hosts: {
        edge: {engine: bed.engines.remote.socket, ssh: `${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}`},
        src: {engine: bed.engines.classic.host},
      },
      volumes: [{from: 'src', mode: 'sync', name, to: 'edge'}],
    }).write(recipe)
    expectVolume('remote', name)
    const plan = await transship(['plan', recipe], options)
    expect(plan.code, plan.stderr).toBe(0)
    expect(plan.stdout).toMatch(/201 files, 21\.9 MB/)
    expect(plan.stdout).toMatch(/src: root/)
    const apply = await transship(['apply', recipe], options)
    expect(apply.code, apply.stderr + apply.stdout).toBe(0)
    await writeFile(path.join(source, 'small', 'f1.txt'), seeded(4001, 1024))
    const again = await transship(['plan', recipe, '--json'], options)
    expect(again.code, again.stderr).toBe(0)
    const {steps} = JSON.parse(again.stdout) as {
      steps: Array<{bytes?: number; detail: {files: number; method: string}}>
    }
    expect(steps[0]!.detail.files).toBe(1)
    expect(steps[0]!.bytes).toBe(1024)
    expect(steps[0]!.detail.method).toBe('files') // a small file: one tar of it is cheaper than rsync's walk
  })
})
