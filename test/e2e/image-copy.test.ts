// `image copy` between real engines over real sshd: only missing layers cross, every destination is
// verified, whole images go where a partial load is impossible, and an interrupted copy leaves no tag.
import {spawn} from 'node:child_process'
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {edgeSshConfig, repoRoot, transship} from '../helpers/cli.js'
import {imageId, layers, removeImages} from '../helpers/images.js'
import {describeE2E, dockerCli, dockerCliBytes, type EngineName, tempHome, type TempHome} from '../helpers/testbed.js'

interface HostReport {
  bytesOnWire: number
  compression: string
  fallback?: string
  host: string
  layersSent: number
  layersSkipped: number
  status: string
}

/** Every name the copy tests give transship-test/copy:1, so that a destination holds none of its new layers. */
const COPY_NAMES = ['transship-test/copy:1', 'transship-test/copy:shared', 'transship-test/copy:stable']

/** app:1 plus a layer of random bytes and a layer of text, built on `engine`. */
async function build(engine: EngineName, ref: string, randomMiB: number, marker: string): Promise<void> {
  if (await imageId(engine, ref)) return
  const dockerfile = [
    'FROM transship-test/app:1',
    `RUN dd if=/dev/urandom of=/random.bin bs=1M count=${randomMiB} 2>/dev/null`,
    `RUN for i in $(seq 1 2000); do echo "${marker} line $i of a compressible text layer"; done > /text.txt`,
    '',
  ].join('\n')
  await dockerCli(engine, ['build', '--network', 'none', '-t', ref, '-'], {input: dockerfile})
}

describeE2E('transship image copy', (bed) => {
  let home: TempHome
  const remote = `ssh://${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}${bed.engines.remote.socket}`
  const modern = `unix://${bed.engines.containerd.socket}`
  const copyRef = 'transship-test/copy:1'

  beforeAll(async () => {
    home = await tempHome({identity: true})
    await build('classic', copyRef, 8, 'copy-1')
  })
  afterAll(async () => home.cleanup())

  const cli = (args: string[]) =>
    transship(args, {
      dockerHost: bed.engines.classic.host,
      env: {XDG_CACHE_HOME: path.join(home.home, 'cache')},
      home: home.home,
    })

  it('sends only the layers the destination lacks, and verifies the result', async () => {
    await removeImages('remote', ...COPY_NAMES)
    const sourceLayers = await layers('classic', copyRef)
    expect(sourceLayers).toHaveLength(4) // busybox, app, random, text: the remote has the first two

    const result = await cli(['image', 'copy', copyRef, '--to', remote, '--json'])
    expect(result.stderr).not.toMatch(/Error/)
    expect(result.code).toBe(0)
    const [report] = (JSON.parse(result.stdout) as {hosts: HostReport[]}).hosts
    expect(report).toMatchObject({compression: 'none', layersSent: 2, layersSkipped: 2, status: 'copied'})
    // the 8 MiB random layer and the text layer crossed; the 2 MB busybox layer did not
    expect(report!.bytesOnWire).toBeGreaterThan(8 * 1024 * 1024)
    expect(report!.bytesOnWire).toBeLessThan(8 * 1024 * 1024 + 512 * 1024)

    expect(await imageId('remote', copyRef)).toBe(await imageId('classic', copyRef))
    expect(await layers('remote', copyRef)).toEqual(sourceLayers)
    expect(
      (await dockerCli('remote', ['run', '--rm', '--network', 'none', copyRef, 'cat', '/app/hello.txt'])).trim(),
    ).toBe('hello from app 1')

    const again = await cli(['image', 'copy', copyRef, '--to', remote, '--json'])
    expect(again.code).toBe(0)
    expect((JSON.parse(again.stdout) as {hosts: HostReport[]}).hosts[0]).toMatchObject({
      bytesOnWire: 0,
      status: 'up-to-date',
    })
  })

  it('sends each shared layer once and compresses when asked', async () => {
    await removeImages('remote', ...COPY_NAMES)
    await dockerCli('classic', ['tag', copyRef, 'transship-test/copy:shared'])
    const result = await cli([
      'image',
      'copy',
      copyRef,
      'transship-test/copy:shared',
      '--to',
      remote,
      '--compress',
      'gzip',
      '--json',
    ])
    expect(result.code).toBe(0)
    const [report] = (JSON.parse(result.stdout) as {hosts: HostReport[]}).hosts
    expect(report).toMatchObject({compression: 'gzip', layersSent: 2, status: 'copied'})
    expect(await imageId('remote', 'transship-test/copy:shared')).toBe(await imageId('classic', copyRef))
  })

  it('sends zstd to an engine that cannot read it, through the zstd and curl of its host', async () => {
    await removeImages('remote', ...COPY_NAMES)
    const result = await cli(['image', 'copy', copyRef, '--to', remote, '--compress', 'zstd', '--json'])
    expect(result.code).toBe(0)
    const [report] = (JSON.parse(result.stdout) as {hosts: HostReport[]}).hosts
    expect(report).toMatchObject({compression: 'zstd', layersSent: 2, layersSkipped: 2, status: 'copied'})
    expect(await imageId('remote', copyRef)).toBe(await imageId('classic', copyRef))
  })

  it('copies to a containerd-store engine and a classic one at once', async () => {
    await removeImages('remote', ...COPY_NAMES)
    await removeImages('containerd', ...COPY_NAMES)
    const result = await cli(['image', 'copy', copyRef, '--to', remote, '--to', modern, '--json'])
    expect(result.code).toBe(0)
    const reports = (JSON.parse(result.stdout) as {hosts: HostReport[]}).hosts
    expect(reports.map((report) => report.status)).toEqual(['copied', 'copied'])
    // both get only the two new layers: the containerd store through an OCI layout made on the way
    expect(reports[0]).toMatchObject({layersSent: 2, layersSkipped: 2})
    expect(reports[1]).toMatchObject({layersSent: 2, layersSkipped: 2})
    expect(await layers('containerd', copyRef)).toEqual(await layers('classic', copyRef))
    // random bytes are compared as bytes: as text, four of them may decode to fewer characters
    const head = ['run', '--rm', '--network', 'none', copyRef, 'head', '-c', '4096', '/random.bin']
    const copied = await dockerCliBytes('containerd', head)
    expect(copied).toHaveLength(4096)
    expect(copied.equals(await dockerCliBytes('classic', head))).toBe(true)
  })

  it('refuses an ssh:// address without a host, instead of taking it for the local engine', async () => {
    const copy = await cli(['image', 'copy', copyRef, '--to', 'ssh://'])
    expect(copy.code).toBe(2)
    expect(copy.stderr).toContain('"ssh://" is not a valid engine address: the host is empty')
    expect(copy.stderr).toContain('ssh://user@host[:port][/socket]')
    expect(copy.stdout).not.toContain('copied')

    // a socket path with no host before it would be a local socket reached without SSH
    const ls = await cli(['image', 'ls', '--host', `ssh://${bed.engines.classic.socket}`])
    expect(ls.code).toBe(2)
    expect(ls.stderr).toContain('the host is empty')
    expect(ls.stdout).toBe('')

    for (const bad of ['ssh://@127.0.0.1', `ssh://${bed.ssh.user}@${bed.ssh.host}:0`, 'unix://', 'ftp://edge']) {
      const result = await cli(['image', 'ls', '--host', bad])
      expect(result.code, `${bad}: ${result.stderr}`).toBe(2)
      expect(result.stderr).toContain(`${JSON.stringify(bad)} is not a valid engine address`)
    }
  })

  it('copies two images that share layers, each layer once, to both engine kinds', async () => {
    const [one, two] = ['transship-test/multi:1', 'transship-test/multi:2']
    if (!(await imageId('classic', one))) {
      await dockerCli('classic', ['build', '--network', 'none', '-t', one, '-'], {
        input: 'FROM transship-test/app:1\nRUN echo one > /one\n',
      })
    }

    if (!(await imageId('classic', two))) {
      await dockerCli('classic', ['build', '--network', 'none', '-t', two, '-'], {
        input: `FROM ${one}\nRUN echo two > /two\n`,
      })
    }

    await removeImages('remote', one, two)
    await removeImages('containerd', one, two)
    // Docker 20.10 saves a layer shared by two images once, and links the other directory to it
    const result = await cli(['image', 'copy', one, two, '--to', remote, '--to', modern, '--json'])
    expect(result.code, result.stderr + result.stdout).toBe(0)
    const reports = (JSON.parse(result.stdout) as {hosts: HostReport[]}).hosts
    for (const report of reports) expect(report).toMatchObject({layersSkipped: 2, status: 'copied'})
    for (const engine of ['remote', 'containerd'] as const) {
      expect(await layers(engine, two)).toEqual(await layers('classic', two))
      expect((await dockerCli(engine, ['run', '--rm', '--network', 'none', two, 'cat', '/one', '/two'])).trim()).toBe(
        'one\ntwo',
      )
    }
  })

  it('pulls from a remote host to this one', async () => {
    const pulled = 'transship-test/pulled:1'
    await build('remote', pulled, 1, 'pulled')
    await removeImages('classic', pulled)
    const result = await cli(['image', 'copy', pulled, '--from', remote, '--to', 'local', '--json'])
    expect(result.code).toBe(0)
    expect((JSON.parse(result.stdout) as {hosts: HostReport[]}).hosts[0]).toMatchObject({
      layersSkipped: 2,
      status: 'copied',
    })
    expect(await imageId('classic', pulled)).toBe(await imageId('remote', pulled))
  })

  it('pulls with the save stream compressed on the source host by its own curl and zstd', async () => {
    const pulled = 'transship-test/pulled:1'
    await build('remote', pulled, 1, 'pulled')
    await removeImages('classic', pulled)
    const result = await cli([
      'image',
      'copy',
      pulled,
      '--from',
      remote,
      '--to',
      'local',
      '--compress',
      'zstd',
      '--debug',
    ])
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/exec: curl -sS --fail --unix-socket .*\| zstd -3/)
    expect(await imageId('classic', pulled)).toBe(await imageId('remote', pulled))
  })

  it('leaves no tag when interrupted, and completes when run again', async () => {
    const big = 'transship-test/big:1'
    await build('classic', big, 96, 'big')
    await removeImages('remote', big)
    const child = spawn(
      process.execPath,
      [path.join(repoRoot, 'bin', 'run.js'), 'image', 'copy', big, '--to', remote, '--compress', 'gzip'],
      {
        env: {
          ...process.env,
          DOCKER_HOST: bed.engines.classic.host,
          HOME: home.home,
          XDG_CACHE_HOME: path.join(home.home, 'cache'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stderr = ''
    const exited = new Promise<null | number>((resolve) => {
      child.on('close', resolve)
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      // interrupt once bytes are flowing
      if (/"type":"task-progress"/.test(stderr) && child.exitCode === null && !child.killed) child.kill('SIGINT')
    })
    const code = await exited
    expect(code).toBe(130)
    expect(await imageId('remote', big)).toBeUndefined()

    const again = await cli(['image', 'copy', big, '--to', remote, '--json'])
    expect(again.code).toBe(0)
    expect(await imageId('remote', big)).toBe(await imageId('classic', big))
  })

  it('says so when a copy moves a tag away from another image, which is kept', async () => {
    await removeImages('remote', ...COPY_NAMES)
    await dockerCli('remote', ['tag', 'transship-test/busybox:1', copyRef])
    const previous = await imageId('remote', copyRef)
    const result = await cli(['image', 'copy', copyRef, '--to', remote])
    expect(result.code).toBe(0)
    expect(result.stderr).toContain(`${copyRef} pointed at ${previous}; that image is kept, untagged`)
    expect(await imageId('remote', copyRef)).toBe(await imageId('classic', copyRef))
    expect(await imageId('remote', 'transship-test/busybox:1')).toBe(previous)
  })

  it('refuses an unknown image and an unreachable host with clear errors', async () => {
    const missing = await cli(['image', 'copy', 'transship-test/none:1', '--to', remote])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('image transship-test/none:1 is not on host "local"')

    const unreachable = await cli(['image', 'copy', copyRef, '--to', 'ssh://root@127.0.0.1:1'])
    expect(unreachable.code).toBe(3)
    expect(unreachable.stderr).toMatch(/refused the connection/)
  })
})

describeE2E('transship apply with image copies', (bed) => {
  let home: TempHome
  beforeAll(async () => {
    home = await tempHome({sshConfig: edgeSshConfig(bed)})
    await build('classic', 'transship-test/copy:1', 8, 'copy-1')
  })
  afterAll(async () => home.cleanup())

  it('plans the copy per destination, applies it, tags the result, and then has nothing to do', async () => {
    const recipe = path.join(repoRoot, 'recipes', 'copy.yaml')
    await removeImages('remote', ...COPY_NAMES)
    await removeImages('containerd', ...COPY_NAMES)
    const options = {
      dockerHost: bed.engines.classic.host,
      env: {XDG_CACHE_HOME: path.join(home.home, 'cache')},
      home: home.home,
    }

    const plan = await transship(['plan', recipe], options)
    expect(plan.code).toBe(0)
    expect(plan.stdout).toMatch(
      /copy transship-test\/copy:1 to edge \(2 layers missing, [\d.]+ MB\), modern \(\d layers missing/,
    )
    expect(plan.stdout).toMatch(/^edge .*\n\s+\+ \[images\] tag transship-test\/copy:1 as transship-test\/copy:stable/m)

    const apply = await transship(['apply', recipe], options)
    expect(apply.stderr).not.toMatch(/✗/)
    expect(apply.code).toBe(0)
    for (const engine of ['remote', 'containerd'] as const) {
      expect(await imageId(engine, 'transship-test/copy:stable')).toBe(await imageId(engine, 'transship-test/copy:1'))
      expect(await layers(engine, 'transship-test/copy:1')).toEqual(await layers('classic', 'transship-test/copy:1'))
    }

    const again = await transship(['apply', recipe], options)
    expect(again.code).toBe(0)
    expect(again.stdout).toContain('Nothing to do')
  })
})
