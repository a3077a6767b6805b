/* eslint-disable no-bitwise -- file modes are bit fields */
// The volume commands against real engines: a local one (classic) and one reached over SSH (remote). Every
// engine of the bed runs on this machine, so each volume's Mountpoint is a local path: what landed is checked
// here with lstat, sha256, readlink and the xattrs of every path, not with transship's own manifest.
import {randomBytes} from 'node:crypto'
import {lstat, lutimes, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {gzipSync} from 'node:zlib'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {edgeSshConfig, transship} from '../helpers/cli.js'
import {exists, head} from '../helpers/files.js'
import {
  globalPax,
  archive as rawArchive,
  directory as rawDirectory,
  entry as rawEntry,
  file as rawFile,
  hardlink as rawHardlink,
  symlink as rawSymlink,
  sparseEntry,
} from '../helpers/raw-tar.js'
import {recipeYaml} from '../helpers/recipe.js'
import {describeE2E, dockerCli, type EngineName, run, tempHome, type TempHome} from '../helpers/testbed.js'
import {
  fillRich,
  isRunning,
  jsonEvents,
  MARKER,
  MiB,
  NON_UTF8,
  processesNaming,
  runWithVolume,
  snapshot,
  startCli,
  waitFor,
  warningsOf,
  which,
} from '../helpers/volume-fixtures.js'

describeE2E('transship volume', (bed) => {
  let home: TempHome
  let work: string
  let options: {dockerHost: string; home: string}
  const prefix = `e2e-vol-${randomBytes(4).toString('hex')}`
  const volumes: Array<[EngineName, string]> = []
  const containers: Array<[EngineName, string]> = []

  const remote = () => `ssh://${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}${bed.engines.remote.socket}`

  /** The volume's Mountpoint, or undefined when the engine has no such volume. */
  async function mountpointOf(engine: EngineName, name: string): Promise<string | undefined> {
    const result = await run(bed.docker, ['-H', bed.engines[engine].host, 'volume', 'inspect', name])
    if (result.code !== 0) return undefined
    return (JSON.parse(result.stdout) as Array<{Mountpoint: string}>)[0]!.Mountpoint
  }

  async function labelsOf(engine: EngineName, name: string): Promise<unknown> {
    return JSON.parse(await dockerCli(engine, ['volume', 'inspect', '--format', '{{json .Labels}}', name]))
  }

  async function createVolume(engine: EngineName, name: string, labels: Record<string, string> = {}): Promise<string> {
    volumes.push([engine, name])
    const flags = Object.entries(labels).flatMap(([key, value]) => ['--label', `${key}=${value}`])
    await dockerCli(engine, ['volume', 'create', '--driver', 'local', ...flags, name])
    return (await mountpointOf(engine, name))!
  }

  /** a name for a volume that a command under test creates (removed in afterAll) */
  function expectVolume(engine: EngineName, name: string): string {
    volumes.push([engine, name])
    return name
  }

  /** a container that appends the date to /data/log five times a second; stops at once on SIGTERM */
  async function startWriter(container: string, volume: string): Promise<void> {
    containers.push(['classic', container])
    await runWithVolume(
      bed.images.busybox,
      container,
      volume,
      "trap 'exit 0' TERM; while true; do date >> /data/log; sleep 0.2; done",
    )
  }

  beforeAll(async () => {
    home = await tempHome({identity: true})
    options = {dockerHost: bed.engines.classic.host, home: home.home}
    work = await mkdtemp(path.join(os.tmpdir(), 'transship-e2e-volume-'))
  })

  afterAll(async () => {
    for (const [engine, container] of containers) await dockerCli(engine, ['rm', '-f', container]).catch(() => '')
    for (const [engine, name] of volumes) await dockerCli(engine, ['volume', 'rm', '-f', name]).catch(() => '')
    await rm(work, {force: true, recursive: true})
    await home?.cleanup()
  })

  it('copies every kind of file to a host over SSH as it was: owners, modes, times, links, holes, xattrs', async () => {
    const name = `${prefix}-rich`
    const source = await createVolume('classic', name, {'com.docker.compose.project': 'e2e'})
    const {setfacl} = await fillRich(source)
    if (!setfacl) console.warn('setfacl is missing: the ACL was set as the raw system.posix_acl_access xattr')
    const before = await snapshot(source)
    // the fixture is what it should be, so that comparing with it means something
    expect(before['.']).toMatchObject({gid: 70, mode: '750', uid: 70})
    expect(before['setuid-999']).toMatchObject({gid: 999, mode: '4755', uid: 999})
    expect(before['cap-true']!.xattrs['security.capability']).toBeDefined()
    expect(before['acl.txt']!.xattrs['system.posix_acl_access']).toBeDefined()
    expect(before['hard-a']!.hardlinks).toEqual(['hard-a', 'nested/hard-b'])
    expect(before[String.raw`caf\xe9.txt`]!.type).toBe('file')

    const result = await transship(
      ['volume', 'copy', expectVolume('remote', name), '--to', remote(), '--json'],
      options,
    )
    expect(result.code, result.stderr).toBe(0)
    // the first copy is the one that succeeded: no broken stream was noted, nothing was copied again
    expect(warningsOf(result.stderr)).toEqual([])
    expect(result.stderr).not.toMatch(/broke|again/)
    const report = JSON.parse(result.stdout) as {files: number; verified: boolean}
    expect(report.verified).toBe(true)
    expect(report.files).toBe(Object.keys(before).length)

    const destination = await mountpointOf('remote', name)
    expect(destination).toBeDefined()
    expect(destination).not.toBe(source)
    const after = await snapshot(destination!)
    // type, mode, owner, size, mtime (s), sha256, symlink target, xattrs (capability and ACL included), hardlinks
    expect(after).toEqual(before)
    expect(await exists(path.join(destination!, MARKER))).toBe(false)

    // hardlinks stay one inode; the sparse file stays sparse; the odd name is there byte for byte
    const [a, b] = await Promise.all([
      lstat(path.join(destination!, 'hard-a')),
      lstat(path.join(destination!, 'nested/hard-b')),
    ])
    expect(a.ino).toBe(b.ino)
    const sparse = await stat(path.join(destination!, 'sparse.img'))
    expect(sparse.size).toBe(100 * MiB)
    expect(sparse.blocks * 512).toBeLessThan(MiB)
    const du = await run('du', ['-k', path.join(destination!, 'sparse.img')])
    expect(Number.parseInt(du.stdout, 10)).toBeLessThan(1024)
    const names = await readdir(destination!, {encoding: 'buffer'})
    expect(names.some((entry) => entry.equals(NON_UTF8))).toBe(true)
    const root = await lstat(destination!)
    expect([root.uid, root.gid, root.mode & 0o7777]).toEqual([70, 70, 0o750])

    // the same as the system tools see it
    const xattrsOf = async (file: string) =>
      (await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', file])).stdout.replace(
        /^# file:.*\n/m,
        '',
      )
    for (const file of ['xattr.txt', 'cap-true', 'acl.txt']) {
      expect(await xattrsOf(path.join(destination!, file))).toBe(await xattrsOf(path.join(source, file)))
    }

    expect(await xattrsOf(path.join(destination!, 'xattr.txt'))).toContain(
      `user.e2e=0x${Buffer.from('value of a user xattr').toString('hex')}`,
    )
    if (await which('getcap')) {
      const getcap = await run('getcap', [path.join(destination!, 'cap-true')])
      expect(getcap.stdout).toMatch(/cap_net_raw[=+]ep/)
    }

    if (await which('getfacl')) {
      const acl = async (dir: string) =>
        (await run('getfacl', ['--omit-header', '--numeric', path.join(dir, 'acl.txt')])).stdout
      expect(await acl(destination!)).toBe(await acl(source))
      expect(await acl(destination!)).toContain('user:1234:r--')
    }

    expect(await labelsOf('remote', name)).toEqual(await labelsOf('classic', name))
    expect(await labelsOf('remote', name)).toEqual({'com.docker.compose.project': 'e2e'})
    // the source was only read
    expect(await snapshot(source)).toEqual(before)
  })

  it('stops the containers that write to a volume for the copy and starts them again; --strict refuses', async () => {
    const name = `${prefix}-busy`
    const source = await createVolume('classic', name)
    const writer = `${prefix}-writer`
    await startWriter(writer, name)
    await waitFor('the writer to write', () => exists(path.join(source, 'log')))

    // in use, no quiesce, --strict: refused, naming the container, nothing made at the destination
    const strict = await transship(['volume', 'copy', name, '--to', remote(), '--as', `${name}-3`, '--strict'], options)
    expect(strict.code).toBe(2)
    expect(strict.stderr).toContain(writer)
    expect(await mountpointOf('remote', expectVolume('remote', `${name}-3`))).toBeUndefined()
    expect(await isRunning(writer)).toBe(true)

    const startedBefore = (await dockerCli('classic', ['inspect', '--format', '{{.State.StartedAt}}', writer])).trim()
    const target = expectVolume('remote', `${name}-2`)
    const copy = await transship(
      ['volume', 'copy', name, '--to', remote(), '--as', target, '--quiesce', 'stop', '--grace', '5', '--json'],
      options,
    )
    expect(copy.code, copy.stderr).toBe(0)
    const report = JSON.parse(copy.stdout) as {stopped: string[]; verified: boolean}
    expect(report.stopped).toEqual([writer])
    expect(report.verified).toBe(true)
    expect(await isRunning(writer)).toBe(true)
    // it was really stopped and started again
    const startedAfter = (await dockerCli('classic', ['inspect', '--format', '{{.State.StartedAt}}', writer])).trim()
    expect(startedAfter).not.toBe(startedBefore)

    // a still picture: the copied log is whole lines, and the source's log went on from exactly there
    const copied = await readFile(path.join((await mountpointOf('remote', target))!, 'log'), 'utf8')
    expect(copied.length).toBeGreaterThan(0)
    expect(copied.endsWith('\n')).toBe(true)
    await waitFor('the writer to write again', async () => (await stat(path.join(source, 'log'))).size > copied.length)
    expect((await readFile(path.join(source, 'log'), 'utf8')).startsWith(copied)).toBe(true)
  })

  it('restarts on the next run the containers a killed copy left stopped, however the host is written; the half copy looks unfinished', async () => {
    const name = `${prefix}-big-${randomBytes(2).toString('hex')}`
    const source = await createVolume('classic', name)
    const fill = await run('sh', ['-c', `head -c 300M /dev/urandom > '${source}/blob'`])
    expect(fill.code, fill.stderr).toBe(0)
    const writer = `${name}-writer`
    await startWriter(writer, name)
    await waitFor('the writer to write', () => exists(path.join(source, 'log')))
    const target = expectVolume('remote', `${name}-copy`)
    // the first run names the hosts through a recipe, the second by their addresses: the same engines
    const recipe = path.join(work, `${name}.yaml`)
    await recipeYaml({
      hosts: {
        edge: {engine: bed.engines.remote.socket, ssh: `${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}`},
        src: {engine: bed.engines.classic.host},
      },
    }).write(recipe)
    const copy = ['volume', 'copy', name, '--as', target, '--quiesce', 'stop', '--grace', '5']
    const cli = startCli([...copy, '--recipe', recipe, '--from', 'src', '--to', 'edge'], options)
    await waitFor(
      'the copy to stop the writer',
      async () => cli.child.exitCode !== null || !(await isRunning(writer)),
      60_000,
      20,
    )
    expect(cli.child.exitCode, `the copy ended before it could be killed: ${cli.output()}`).toBeNull()
    cli.child.kill('SIGKILL')
    const [, signal] = await cli.closed
    expect(signal).toBe('SIGKILL')
    expect(await isRunning(writer)).toBe(false)

    // the killed copy's destination is marked as unfinished (or was never made)
    const destination = await mountpointOf('remote', target)
    if (destination) {
      const entries = await readdir(destination)
      expect(entries.length === 0 || entries.includes(MARKER), `left: ${entries.join(', ')}`).toBe(true)
    }

    // let the orphaned tar of the killed copy finish before its destination is replaced
    await waitFor(
      'the killed copy to let go of the destination',
      async () => !(await processesNaming(target)),
      20_000,
      200,
    )

    const args = [...copy, '--from', bed.engines.classic.host, '--to', remote()]
    const again = await transship([...args, '--mode', 'replace', '--json'], options)
    expect(again.code, again.stderr + again.stdout).toBe(0)
    // it says so
    expect(warningsOf(again.stderr).join('\n')).toMatch(
      new RegExp(`earlier copy of ${name} .*interrupted with ${writer} stopped: starting it again`),
    )
    const report = JSON.parse(again.stdout) as {stopped: string[]; verified: boolean}
    expect(report.verified).toBe(true)
    // the journal started it first, so this run found it running, stopped it and started it again
    expect(report.stopped).toEqual([writer])
    expect(await isRunning(writer)).toBe(true)
    const copied = (await mountpointOf('remote', target))!
    expect(await exists(path.join(copied, MARKER))).toBe(false)
    const [sent, landed] = await Promise.all([snapshot(source), snapshot(copied)])
    expect(landed.blob).toEqual(sent.blob)
  })

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`on ${signal} mid-copy to a host over SSH, starts the stopped containers again and exits 130 at once`, async () => {
      const name = `${prefix}-sig-${signal.toLowerCase()}`
      const source = await createVolume('classic', name)
      const fill = await run('sh', ['-c', `head -c 200M /dev/urandom > '${source}/blob'`])
      expect(fill.code, fill.stderr).toBe(0)
      const writer = `${name}-writer`
      await startWriter(writer, name)
      await waitFor('the writer to write', () => exists(path.join(source, 'log')))
      const target = expectVolume('remote', `${name}-copy`)
      const cli = startCli(
        ['volume', 'copy', name, '--to', remote(), '--as', target, '--quiesce', 'stop', '--grace', '5'],
        options,
      )
      // mid-copy: the writer stopped, and data landing at the destination
      await waitFor(
        'the copy to be under way',
        async () => {
          if (cli.child.exitCode !== null) return true
          const mountpoint = await mountpointOf('remote', target)
          if (!mountpoint || (await isRunning(writer))) return false
          return (await stat(path.join(mountpoint, 'blob')).catch(() => {}))?.size !== undefined
        },
        60_000,
        20,
      )
      expect(cli.child.exitCode, `the copy ended before the signal: ${cli.output()}`).toBeNull()
      const signalled = performance.now()
      cli.child.kill(signal)
      const [code] = await cli.closed
      const seconds = (performance.now() - signalled) / 1000
      expect(code, cli.output()).toBe(130)
      expect(cli.output()).not.toContain('Unhandled')
      expect(seconds, `exited ${seconds.toFixed(2)} s after ${signal}`).toBeLessThan(1.5)
      expect(await isRunning(writer), cli.output()).toBe(true)
      expect(cli.output()).toContain(`started ${writer} again`)
      // the half copy is marked unfinished
      expect(await readdir((await mountpointOf('remote', target))!)).toContain(MARKER)
    })
  }

  it('refuses to replace or sync a destination volume that containers use, changing nothing; --quiesce stop stops them for it', async () => {
    const name = `${prefix}-dest-used`
    const source = await createVolume('classic', name)
    await writeFile(path.join(source, 'new.txt'), 'from the source\n')
    const target = `${name}-copy`
    const destination = await createVolume('remote', target)
    await writeFile(path.join(destination, 'precious.txt'), 'what the destination container uses\n')
    const user = `${name}-user`
    containers.push(['remote', user])
    await dockerCli('remote', [
      'run',
      '-d',
      '--name',
      user,
      '--network',
      'none',
      '-v',
      `${target}:/data`,
      bed.images.busybox,
      'sh',
      '-c',
      "trap 'exit 0' TERM; while true; do sleep 0.2; done",
    ])
    const startedAt = async () => (await dockerCli('remote', ['inspect', '-f', '{{.State.StartedAt}}', user])).trim()
    const before = await snapshot(destination)
    const startedBefore = await startedAt()
    const copy = ['volume', 'copy', name, '--to', remote(), '--as', target]

    for (const mode of ['replace', 'sync']) {
      const refused = await transship([...copy, '--mode', mode], options)
      expect(refused.code, refused.stderr).toBe(2)
      expect(refused.stderr).toContain(`${target} on ${remote()} is used by ${user}`)
      expect(refused.stderr).toContain('--quiesce stop')
      expect(await snapshot(destination)).toEqual(before)
      expect(await startedAt()).toBe(startedBefore)
    }

    // a stopped container that uses it counts too: replace would change its data under it
    const idle = `${name}-idle`
    containers.push(['remote', idle])
    await dockerCli('remote', ['create', '--name', idle, '-v', `${target}:/data`, bed.images.busybox, 'true'])
    await dockerCli('remote', ['stop', '-t', '1', user])
    const stoppedOnly = await transship([...copy, '--mode', 'replace'], options)
    expect(stoppedOnly.code, stoppedOnly.stderr).toBe(2)
    expect(stoppedOnly.stderr).toMatch(new RegExp(`used by .*${idle} \\(created\\)`))
    expect(await snapshot(destination)).toEqual(before)
    await dockerCli('remote', ['start', user])
    const startedAgain = await startedAt()

    const replaced = await transship(
      [...copy, '--mode', 'replace', '--quiesce', 'stop', '--grace', '1', '--json'],
      options,
    )
    expect(replaced.code, replaced.stderr).toBe(0)
    const report = JSON.parse(replaced.stdout) as {stoppedAtDestination: string[]; verified: boolean}
    expect(report).toMatchObject({stoppedAtDestination: [user], verified: true})
    expect(await snapshot(destination)).toEqual(await snapshot(source))
    expect((await dockerCli('remote', ['inspect', '-f', '{{.State.Running}}', user])).trim()).toBe('true')
    expect(await startedAt()).not.toBe(startedAgain)
    // the stopped one stays stopped
    expect((await dockerCli('remote', ['inspect', '-f', '{{.State.Status}}', idle])).trim()).toBe('created')
  })

  it('refuses a volume name Docker would not take, wherever it is given (exit 2)', async () => {
    const archiveFile = path.join(work, 'names.tar')
    await writeFile(archiveFile, rawArchive(rawDirectory('.'), rawFile('a.txt', 'a')))
    const cases: Array<{args: string[]; value: string}> = [
      {args: ['volume', 'copy', '../evil', '--to', remote()], value: '../evil'},
      {args: ['volume', 'copy', `${prefix}-rich`, '--to', remote(), '--as', 'a/b'], value: 'a/b'},
      {args: ['volume', 'export', '../evil', '-o', path.join(work, 'evil.tar')], value: '../evil'},
      {args: ['volume', 'import', archiveFile, '.hidden'], value: '.hidden'},
      {args: ['volume', 'verify', 'x', '--against', archiveFile], value: 'x'},
      {args: ['volume', 'verify', `${prefix}-rich`, '--against', remote(), '--as', '../x'], value: '../x'},
    ]
    for (const {args, value} of cases) {
      const result = await transship(args, options)
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2)
      expect(result.stderr).toContain(`${JSON.stringify(value)} is not a volume name`)
      expect(result.stderr).not.toMatch(/HTTP|301/)
    }

    expect(await exists(path.join(work, 'evil.tar'))).toBe(false)
    const recipe = path.join(work, 'bad-name.yaml')
    await recipeYaml({volumes: [{as: 'ok-name', from: 'local', name: '../evil', to: 'local'}]}).write(recipe)
    const validate = await transship(['recipe', 'validate', recipe], options)
    expect(validate.code).toBe(2)
    expect(validate.stderr).toMatch(/bad-name\.yaml:3:\d+ .*volumes\[0\]\.name.*a volume name/)
  })

  it('refuses to copy a volume onto itself however either side is written, changing nothing (exit 2)', async () => {
    const name = `${prefix}-self`
    const here = await createVolume('classic', name)
    await writeFile(path.join(here, 'a.txt'), 'here\n')
    const there = await createVolume('remote', name)
    await writeFile(path.join(there, 'a.txt'), 'there\n')
    // an alias of ~/.ssh/config (HostName 127.0.0.1) and user@127.0.0.1:port are one sshd, one engine
    const aliasHome = await tempHome({identity: true, sshConfig: edgeSshConfig(bed)})
    const recipe = path.join(work, `${name}.yaml`)
    await writeFile(
      recipe,
      ['version: 1', 'hosts:', `  edge: {ssh: edge, engine: '${bed.engines.remote.socket}'}`, ''].join('\n'),
    )
    try {
      const cases = [
        {args: ['--from', 'local', '--to', bed.engines.classic.host], home: options.home},
        {args: ['--from', bed.engines.classic.socket, '--to', 'local'], home: options.home},
        {args: ['--recipe', recipe, '--from', 'edge', '--to', remote()], home: aliasHome.home},
      ]
      for (const {args, home: caseHome} of cases) {
        const result = await transship(['volume', 'copy', name, ...args, '--json'], {...options, home: caseHome})
        expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2)
        const {error} = JSON.parse(result.stdout) as {error: {code: string; message: string}}
        expect(error.code).toBe('VOLUME_SAME')
        expect(error.message).toContain(`are the same engine: ${name} would be copied onto itself`)
      }
    } finally {
      await aliasHome.cleanup()
    }

    expect(await readdir(here)).toEqual(['a.txt'])
    expect(await readFile(path.join(here, 'a.txt'), 'utf8')).toBe('here\n')
    expect(await readdir(there)).toEqual(['a.txt'])
    expect(await readFile(path.join(there, 'a.txt'), 'utf8')).toBe('there\n')
  })

  it('imports over SSH, first time, an archive whose last record holds more than tar reads', async () => {
    // GNU tar writes records of 20 blocks; tar -b 16384 (8 MiB records) is as valid, and tar -x stops reading at
    // its end-of-archive blocks, megabytes before the end of the stream
    const tree = path.join(work, 'big-record')
    await mkdir(tree)
    await writeFile(path.join(tree, 'a.txt'), 'written with a large blocking factor\n')
    const archiveFile = path.join(work, 'big-record.tar')
    const made = await run('tar', ['-C', tree, '-b', '16384', '-cf', archiveFile, '.'])
    expect(made.code, made.stderr).toBe(0)
    expect((await stat(archiveFile)).size).toBe(16_384 * 512)
    const target = expectVolume('remote', `${prefix}-big-record`)
    const imported = await transship(['volume', 'import', archiveFile, target, '--host', remote(), '--json'], options)
    expect(imported.code, imported.stderr).toBe(0)
    expect(warningsOf(imported.stderr)).toEqual([])
    expect(await readFile(path.join((await mountpointOf('remote', target))!, 'a.txt'), 'utf8')).toBe(
      'written with a large blocking factor\n',
    )
  })

  it('handles in seconds a tiny archive that claims a 1 TiB sparse file, and stops at once on Ctrl-C', async () => {
    const archiveFile = path.join(work, 'terabyte.tar')
    await writeFile(
      archiveFile,
      rawArchive(
        rawDirectory('.'),
        // as GNU tar stores it: every segment but the last in whole blocks
        sparseEntry('huge', 2 ** 40, [
          {data: Buffer.concat([Buffer.from('start'), Buffer.alloc(507)]), offset: 0},
          {data: Buffer.from('end'), offset: 2 ** 40 - 3},
        ]),
      ),
    )
    expect((await stat(archiveFile)).size).toBeLessThan(10_000)
    const target = expectVolume('remote', `${prefix}-terabyte`)
    const started = performance.now()
    const imported = await transship(['volume', 'import', archiveFile, target, '--host', remote()], options)
    expect(imported.code, imported.stderr).toBe(0)
    expect(performance.now() - started).toBeLessThan(30_000)
    const huge = await stat(path.join((await mountpointOf('remote', target))!, 'huge'))
    expect(huge.size).toBe(2 ** 40)
    expect(huge.blocks * 512).toBeLessThan(1024 * 1024)
    const verified = await transship(['volume', 'verify', target, '--on', remote(), '--against', archiveFile], options)
    expect(verified.code, verified.stderr).toBe(0)

    // Ctrl-C while the archive comes in on stdin: the CLI stops within a second, nothing is made
    const interrupted = expectVolume('classic', `${prefix}-interrupted`)
    const cli = startCli(['volume', 'import', '-', interrupted], options)
    // more than a pipe holds: once it is taken, the CLI is reading its input
    const head = await readFile(archiveFile)
    const taken = new Promise((resolve) => {
      cli.child.stdin!.write(Buffer.concat([head.subarray(0, 1024), Buffer.alloc(4 * 1024 * 1024)]), resolve)
    })
    await taken
    expect(cli.child.exitCode, cli.output()).toBeNull()
    const signalled = performance.now()
    cli.child.kill('SIGINT')
    const [code] = await cli.closed
    expect(code, cli.output()).toBe(130)
    expect(performance.now() - signalled).toBeLessThan(1000)
    expect(await mountpointOf('classic', interrupted)).toBeUndefined()
  })

  it('with --json, warnings are JSON events on stderr', async () => {
    const name = `${prefix}-warn`
    const source = await createVolume('classic', name)
    const writer = `${name}-writer`
    // a busy writer: it appends all the time, so the copy is sure to see it change the log
    containers.push(['classic', writer])
    await runWithVolume(
      bed.images.busybox,
      writer,
      name,
      "trap 'exit 0' TERM; while true; do date >> /data/log; sleep 0.01; done",
    )
    await waitFor('the writer to write', () => exists(path.join(source, 'log')))
    const target = expectVolume('remote', `${name}-copy`)
    const result = await transship(['volume', 'copy', name, '--to', remote(), '--as', target, '--json'], options)
    expect(result.code, result.stderr).toBe(0)
    // the writer appended to its log while it was copied: that difference is told, not hidden
    const report = JSON.parse(result.stdout) as {changedDuringCopy: string[]; verified: boolean}
    expect(report.changedDuringCopy).toEqual(['log'])
    expect(report.verified).toBe(false)
    const warnings = warningsOf(result.stderr)
    expect(warnings.some((message) => message.includes(`${name} is in use by ${writer}`))).toBe(true)
    expect(warnings.some((message) => message.includes(`${name} changed on local while it was copied`))).toBe(true)
    expect(jsonEvents(result.stderr).every((event) => typeof event.type === 'string')).toBe(true)
  })

  it('refuses a destination that is not empty, changing nothing; --mode replace makes it equal', async () => {
    const name = `${prefix}-full`
    const source = await createVolume('classic', name)
    await mkdir(path.join(source, 'dir'))
    await writeFile(path.join(source, 'dir', 'new.txt'), 'from the source\n')
    await writeFile(path.join(source, 'a.txt'), 'source a\n')
    await lutimes(path.join(source, 'a.txt'), 1_100_000_000, 1_100_000_000)
    const target = `${name}-dest`
    const destination = await createVolume('remote', target)
    await mkdir(path.join(destination, 'dir'))
    await writeFile(path.join(destination, 'dir', 'keep.txt'), 'already there\n')
    await writeFile(path.join(destination, 'a.txt'), 'destination a\n')
    const before = await snapshot(destination)

    const refused = await transship(['volume', 'copy', name, '--to', remote(), '--as', target], options)
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain(target)
    expect(await snapshot(destination)).toEqual(before)

    const replaced = await transship(
      ['volume', 'copy', name, '--to', remote(), '--as', target, '--mode', 'replace', '--json'],
      options,
    )
    expect(replaced.code, replaced.stderr).toBe(0)
    expect((JSON.parse(replaced.stdout) as {verified: boolean}).verified).toBe(true)
    expect(await snapshot(destination)).toEqual(await snapshot(source))
  })

  it('exports a volume to a .tar.zst, imports it on another host, and verifies it against the archive', async () => {
    const name = `${prefix}-exp`
    const source = await createVolume('classic', name)
    await fillRich(source)
    const archive = path.join(work, 'volume.tar.zst')
    const exported = await transship(['volume', 'export', name, '-o', archive], options)
    expect(exported.code, exported.stderr).toBe(0)
    expect((await head(archive, 4)).toString('hex')).toBe('28b52ffd') // zstd, by the suffix

    const target = expectVolume('remote', `${name}-imported`)
    const imported = await transship(['volume', 'import', archive, target, '--host', remote()], options)
    expect(imported.code, imported.stderr).toBe(0)
    const destination = (await mountpointOf('remote', target))!
    expect(await snapshot(destination)).toEqual(await snapshot(source))

    const verify = await transship(['volume', 'verify', target, '--on', remote(), '--against', archive], options)
    expect(verify.code, verify.stderr).toBe(0)

    // one byte changed, same size and mtime: only the content tells
    const file = path.join(destination, 'nested', 'deeper', 'random.bin')
    const {atime, mtime} = await stat(file)
    const content = await readFile(file)
    content[35_000] = 0xff - content[35_000]!
    await writeFile(file, content)
    await utimes(file, atime, mtime)
    const differs = await transship(['volume', 'verify', target, '--on', remote(), '--against', archive], options)
    expect(differs.code).toBe(5)
    expect(differs.stderr).toContain('nested/deeper/random.bin')
    expect(differs.stderr).not.toContain('regular.txt')
  })

  it('refuses hostile and broken archives before writing anything, naming the entry (exit 2)', async () => {
    const tag = randomBytes(4).toString('hex')
    /** names that must not appear anywhere: in /tmp, beside the volumes, or in the volume */
    const evil = (what: string) => `e2e-${what}-${tag}`
    const sparse = (name: string, header = 'innocent') =>
      sparseEntry(name, 1000, [{data: Buffer.from('x'), offset: 10}], {}, header)
    const whole = gzipSync(rawArchive(rawFile('ok.txt'), rawFile('blob', Buffer.alloc(300_000, 7))))
    const archives: Array<{data: Buffer; entry?: string; file: string; names: string[]}> = [
      {
        data: rawArchive(rawFile('ok.txt', 'ok'), rawFile(`../../tmp/${evil('up')}`, 'x')),
        entry: `../../tmp/${evil('up')}`,
        file: 'escape.tar',
        names: [evil('up')],
      },
      {
        data: rawArchive(rawFile('ok.txt', 'ok'), rawFile(`/tmp/${evil('abs')}`, 'x')),
        entry: `/tmp/${evil('abs')}`,
        file: 'absolute.tar',
        names: [evil('abs')],
      },
      {
        data: rawArchive(rawFile('ok.txt', 'ok'), rawSymlink('d', '/tmp'), rawFile(`d/${evil('through')}`, 'x')),
        entry: `d/${evil('through')}`,
        file: 'through.tar',
        names: [evil('through')],
      },
      {
        // a hard link whose target goes through a symlink: link(2) follows it, and /tmp's file is in the volume
        data: rawArchive(rawSymlink('t', '/tmp'), rawHardlink(evil('hardlink'), `t/${evil('target')}`)),
        entry: evil('hardlink'),
        file: 'hardlink-through.tar',
        names: [evil('hardlink')],
      },
      {
        data: rawArchive(rawSymlink('.', '/tmp'), rawFile(evil('dot'), 'x')),
        entry: '.',
        file: 'dot-symlink.tar',
        names: [evil('dot')],
      },
      {
        // GNU tar names the entry by GNU.sparse.name, whatever its header says
        data: rawArchive(rawFile('ok.txt'), sparse(`../../tmp/${evil('sparse-name')}`)),
        entry: `../../tmp/${evil('sparse-name')}`,
        file: 'sparse-name.tar',
        names: [evil('sparse-name')],
      },
      {
        data: rawArchive(rawSymlink('d', '/tmp'), sparse(`d/${evil('sparse-through')}`)),
        entry: `d/${evil('sparse-through')}`,
        file: 'sparse-through.tar',
        names: [evil('sparse-through')],
      },
      {
        data: rawArchive(rawHardlink(evil('hard-out'), '../../../../etc/hostname')),
        entry: evil('hard-out'),
        file: 'hardlink-outside.tar',
        names: [evil('hard-out')],
      },
      {
        data: rawArchive(rawDirectory('d'), rawFile('d/a'), rawSymlink('d', '/tmp'), rawFile(`d/${evil('replaced')}`)),
        entry: 'd',
        file: 'directory-replaced.tar',
        names: [evil('replaced')],
      },
      {
        data: rawArchive(rawFile(evil('retyped'), 'data'), rawSymlink(evil('retyped'), '/etc/passwd')),
        entry: evil('retyped'),
        file: 'duplicate.tar',
        names: [],
      },
      {
        data: rawArchive(globalPax({path: `../../tmp/${evil('global')}`}), rawFile('a.txt')),
        entry: `../../tmp/${evil('global')}`,
        file: 'global-path.tar',
        names: [evil('global')],
      },
      {
        data: rawArchive(rawEntry({devmajor: 1, devminor: 1, name: 'null', type: '3'})),
        entry: 'null',
        file: 'char-device.tar',
        names: [],
      },
      {
        data: rawArchive(rawEntry({devmajor: 8, devminor: 0, name: 'sda', type: '4'})),
        entry: 'sda',
        file: 'block-device.tar',
        names: [],
      },
      {data: whole.subarray(0, Math.floor(whole.length / 2)), file: 'truncated.tar.gz', names: []},
    ]
    const volumesDir = path.join(bed.engines.classic.dataRoot, 'volumes')
    for (const [i, hostile] of archives.entries()) {
      const file = path.join(work, hostile.file)
      await writeFile(file, hostile.data)
      const target = expectVolume('classic', `${prefix}-hostile-${i}`)
      const result = await transship(['volume', 'import', file, target], options)
      expect(result.code, `${hostile.file}: ${result.stderr}`).toBe(2)
      if (hostile.entry) expect(result.stderr, hostile.file).toContain(`entry ${JSON.stringify(hostile.entry)}`)
      for (const name of hostile.names) {
        expect(await exists(path.join('/tmp', name)), hostile.file).toBe(false)
        // where ../../tmp lands from a volume's data directory
        expect(await exists(path.join(volumesDir, 'tmp', name)), hostile.file).toBe(false)
      }

      // nothing written: the volume was not even made
      expect(await mountpointOf('classic', target), hostile.file).toBeUndefined()
    }

    // devices when asked: the nodes are made, as they were in the archive
    const devices = path.join(work, 'devices.tar')
    await writeFile(
      devices,
      rawArchive(
        rawDirectory('.'),
        rawEntry({devmajor: 1, devminor: 1, name: 'null', type: '3'}),
        rawEntry({devmajor: 8, devminor: 0, name: 'sda', type: '4'}),
        rawEntry({name: 'fifo', type: '6'}),
      ),
    )
    const target = expectVolume('classic', `${prefix}-devices`)
    const allowed = await transship(['volume', 'import', devices, target, '--allow-devices'], options)
    expect(allowed.code, allowed.stderr).toBe(0)
    const mountpoint = (await mountpointOf('classic', target))!
    const [nullDevice, disk, fifo] = await Promise.all(
      ['null', 'sda', 'fifo'].map((name) => lstat(path.join(mountpoint, name))),
    )
    expect([nullDevice!.isCharacterDevice(), nullDevice!.rdev]).toEqual([true, 0x1_01])
    expect([disk!.isBlockDevice(), disk!.rdev]).toEqual([true, 0x8_00])
    expect(fifo!.isFIFO()).toBe(true)
  })

  it('names an unknown volume (exit 2); a recipe copies a volume, and a second apply verifies it', async () => {
    const missing = `${prefix}-missing`
    const unknown = await transship(['volume', 'copy', missing, '--to', remote()], options)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain(missing)
    const unknownExport = await transship(['volume', 'export', missing, '-o', path.join(work, 'x.tar')], options)
    expect(unknownExport.code).toBe(2)
    expect(unknownExport.stderr).toContain(missing)
    expect(await exists(path.join(work, 'x.tar'))).toBe(false)

    const name = `${prefix}-recipe`
    const source = await createVolume('classic', name, {'com.docker.compose.project': 'e2e'})
    await mkdir(path.join(source, 'sub'))
    await writeFile(path.join(source, 'sub', 'data.txt'), 'through a recipe\n')
    await lutimes(path.join(source, 'sub', 'data.txt'), 1_200_000_000, 1_200_000_000)
    const target = expectVolume('remote', `${name}-copy`)
    const recipe = path.join(work, 'volumes.yaml')
    await recipeYaml({
      hosts: {edge: {engine: bed.engines.remote.socket, ssh: `${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}`}},
      volumes: [{as: target, from: 'local', name, to: 'edge'}],
    }).write(recipe)

    const apply = await transship(['apply', recipe], options)
    expect(apply.code, apply.stderr + apply.stdout).toBe(0)
    expect(apply.stdout + apply.stderr).toContain(`copy volume ${name} from local to edge as ${target}`)
    const destination = (await mountpointOf('remote', target))!
    expect(await snapshot(destination)).toEqual(await snapshot(source))
    expect(await labelsOf('remote', target)).toEqual({'com.docker.compose.project': 'e2e'})

    const again = await transship(['apply', recipe], options)
    expect(again.code, again.stderr + again.stdout).toBe(0)
    expect(again.stdout + again.stderr).toMatch(new RegExp(`verify volume ${target} on edge .*\\(already there`))

    // a copy already there that differs is not taken for done
    await writeFile(path.join(destination, 'sub', 'data.txt'), 'through a recipe?\n')
    const differs = await transship(['apply', recipe], options)
    expect(differs.code).not.toBe(0)
    expect(differs.stdout + differs.stderr).toContain('sub/data.txt')
  })
})
