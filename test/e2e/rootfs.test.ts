// `rootfs build` and `rootfs diff` against real debootstrap (Debian's mirror) and real engines: the example
// recipe and a command-line build with the same inputs, two separate debootstrap runs, give the same image
// ID and layer digest; ping keeps its file capability in a container; the OCI layout reads with skopeo and
// the docker-archive loads into Docker 26.1 (containerd store); tarballs with hostile paths are contained or
// refused; no root, no debootstrap.
import {randomBytes} from 'node:crypto'
import {copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {gzipSync} from 'node:zlib'
import tar from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {readAll} from '../helpers/archive-fixtures.js'
import {repoRoot, transship} from '../helpers/cli.js'
import {exists} from '../helpers/files.js'
import {imageId, layers, removeImages} from '../helpers/images.js'
import {
  describeE2E,
  type EngineName,
  run,
  type RunResult,
  tempHome,
  type TempHome,
  type Testbed,
} from '../helpers/testbed.js'

interface BuildJson {
  diffID: string
  epoch: number
  epochSource: string
  outputs: Array<{configDigest: string; id?: string; layerDigest: string; manifestDigest?: string; output: string}>
}

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
// what recipes/debian-base.yaml says, as flags
const DEBIAN_FLAGS = [
  '--debootstrap',
  'bookworm',
  '--variant',
  'minbase',
  '--include',
  'iputils-ping',
  '--env',
  PATH_ENV,
  '--cmd',
  '["bash"]',
]

/** A tar of `entries` (a name ending in / is a directory), as tar-stream writes it. */
async function makeTarball(entries: Array<{content?: Buffer | string; mode?: number; name: string}>): Promise<Buffer> {
  const pack = tar.pack()
  const done = readAll(pack as unknown as AsyncIterable<Buffer>)
  for (const entry of entries) {
    const directory = entry.name.endsWith('/')
    const header = {
      mode: entry.mode ?? (directory ? 0o755 : 0o644),
      mtime: new Date(1_700_000_000_000),
      name: entry.name,
      type: directory ? ('directory' as const) : ('file' as const),
    }
    await new Promise<void>((resolve, reject) => {
      const callback = (error?: Error | null) => (error ? reject(error) : resolve())
      if (directory) pack.entry(header, callback)
      else pack.entry(header, Buffer.from(entry.content ?? ''), callback)
    })
  }

  pack.finalize()
  return done
}

/** The docker CLI against an engine of the bed, with its exit code (for commands expected to fail). */
function docker(bed: Testbed, engine: EngineName, args: string[]): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = {...process.env, DOCKER_CONFIG: path.join(bed.stateDir, 'docker-config')}
  delete env.DOCKER_HOST
  delete env.DOCKER_CONTEXT
  return run(bed.docker, ['-H', bed.engines[engine].host, ...args], {env})
}

describeE2E('rootfs build', (bed) => {
  let home: TempHome
  let options: {dockerHost: string; home: string}
  let work: string
  const images = ['base/debian:bookworm', 'e2e-rootfs/debian:cli', 'e2e-rootfs/tiny:1', 'e2e-rootfs/tiny:2']

  beforeAll(async () => {
    home = await tempHome({identity: true})
    options = {dockerHost: bed.engines.classic.host, home: home.home}
    work = await mkdtemp(path.join('/var/tmp', 'transship-e2e-rootfs-'))
    await removeImages('classic', ...images)
    await removeImages('containerd', 'e2e-rootfs/debian:cli')
  })

  afterAll(async () => {
    await removeImages('classic', ...images)
    await removeImages('containerd', 'e2e-rootfs/debian:cli')
    await removeImages('remote', 'e2e-rootfs/tiny:1')
    await rm(work, {force: true, recursive: true})
    await home?.cleanup()
  })

  // Two debootstrap builds (the example recipe, and the same inputs from flags), made once for the tests of
  // this group, so each test stands on its own in any order.
  describe('from debootstrap', () => {
    let recipeDir: string
    let recipe: string
    let scratch: string
    let apply: RunResult
    let cli: RunResult

    beforeAll(async () => {
      recipeDir = path.join(work, 'recipe')
      await mkdir(recipeDir)
      recipe = path.join(recipeDir, 'debian-base.yaml')
      await copyFile(path.join(repoRoot, 'recipes', 'debian-base.yaml'), recipe)
      scratch = path.join(work, 'scratch')
      apply = await transship(['apply', recipe], options)
      cli = await transship(
        [
          'rootfs',
          'build',
          ...DEBIAN_FLAGS,
          '--tag',
          'e2e-rootfs/debian:cli',
          '--work-dir',
          scratch,
          '-o',
          'engine',
          '-o',
          `oci:${path.join(work, 'oci')}`,
          '-o',
          `docker-archive:${path.join(work, 'debian.tar')}`,
          '--json',
        ],
        options,
      )
    }, 600_000) // two debootstrap runs against Debian's mirror, on a machine shared with other test runs

    it('builds the example recipe and the same inputs from flags to the same image ID, layer and manifest', async () => {
      expect(apply.stderr + apply.stdout).toContain('build base/debian:bookworm')
      expect(apply.code, apply.stderr).toBe(0)
      // the epoch is printed, so the build can be repeated
      expect(apply.stdout + apply.stderr).toMatch(/epoch \d+ \(release date\)/)
      expect(cli.code, cli.stderr).toBe(0)
      const [built] = JSON.parse(cli.stdout) as BuildJson[]
      expect(built!.epochSource).toBe('release date')

      // two separate debootstrap runs, bit for bit the same image
      const fromRecipe = await imageId('classic', 'base/debian:bookworm')
      const fromFlags = await imageId('classic', 'e2e-rootfs/debian:cli')
      expect(fromRecipe).toMatch(/^sha256:[\da-f]{64}$/)
      expect(fromFlags).toBe(fromRecipe)
      expect(await layers('classic', 'e2e-rootfs/debian:cli')).toEqual(await layers('classic', 'base/debian:bookworm'))
      expect(await layers('classic', 'base/debian:bookworm')).toEqual([built!.diffID])

      // the OCI layouts of both builds name the same manifest, and skopeo reads it
      const recipeIndex = JSON.parse(
        await readFile(path.join(recipeDir, 'out', 'debian-bookworm', 'index.json'), 'utf8'),
      ) as {manifests: Array<{digest: string}>}
      const oci = built!.outputs.find((output) => output.output.startsWith('oci:'))!
      expect(recipeIndex.manifests[0]!.digest).toBe(oci.manifestDigest)
      const inspect = await run('skopeo', ['inspect', `oci:${path.join(work, 'oci')}`])
      expect(inspect.code, inspect.stderr).toBe(0)
      const inspected = JSON.parse(inspect.stdout) as {Digest: string; Layers: string[]}
      expect(inspected.Digest).toBe(oci.manifestDigest)
      expect(inspected.Layers).toEqual([oci.layerDigest])
      const config = await run('skopeo', ['inspect', '--config', `oci:${path.join(work, 'oci')}`])
      expect(JSON.parse(config.stdout)).toMatchObject({
        config: {Cmd: ['bash'], Env: [PATH_ENV]},
        created: new Date(built!.epoch * 1000).toISOString().replace('.000Z', 'Z'),
        // eslint-disable-next-line camelcase -- the image spec's key
        rootfs: {diff_ids: [built!.diffID]},
      })

      // nothing left behind where debootstrap worked
      expect(await readdir(scratch)).toEqual([])

      // the image records its inputs, with the Date of the Release file debootstrap fetched
      const labels = JSON.parse(
        (
          await docker(bed, 'classic', [
            'image',
            'inspect',
            '--format',
            '{{json .Config.Labels}}',
            'base/debian:bookworm',
          ])
        ).stdout,
      ) as Record<string, string>
      expect(JSON.parse(labels['org.transship.rootfs.inputs']!)).toMatchObject({
        epoch: null,
        include: ['iputils-ping'],
        mirror: 'http://deb.debian.org/debian',
        release: new Date(built!.epoch * 1000).toISOString(),
        source: 'debootstrap',
        suite: 'bookworm',
        variant: 'minbase',
      })

      // plan reads the mirror's Release date again: the same, so the engine and the OCI layout are up to date
      const again = await transship(['plan', recipe], options)
      expect(again.code, again.stderr).toBe(0)
      expect(again.stdout).toContain('Nothing to do')

      // another package list: plan says it rebuilds, and why
      const changed = path.join(recipeDir, 'changed.yaml')
      await writeFile(
        changed,
        (await readFile(recipe, 'utf8')).replace('include: [iputils-ping]', 'include: [iputils-ping, curl]'),
      )
      const rebuild = await transship(['plan', changed], options)
      expect(rebuild.code, rebuild.stderr).toBe(0)
      expect(rebuild.stdout).toContain('build base/debian:bookworm from debootstrap bookworm (minbase) → engine, oci:')
      expect(rebuild.stdout).toContain('(rebuild: include changed (iputils-ping → iputils-ping, curl))')
    })

    it('starts containers from the image, with the cleanup applied and the capability of ping kept', async () => {
      const image = 'e2e-rootfs/debian:cli'
      const release = await docker(bed, 'classic', [
        'run',
        '--rm',
        '--network',
        'none',
        image,
        'cat',
        '/etc/debian_version',
      ])
      expect(release.code, release.stderr).toBe(0)
      expect(release.stdout).toMatch(/^12\.\d+/)

      const gone = await docker(bed, 'classic', [
        'run',
        '--rm',
        '--network',
        'none',
        image,
        'sh',
        '-c',
        'for f in /var/log/dpkg.log /var/cache/ldconfig/aux-cache /var/lib/apt/lists/*Release /debootstrap; do test -e "$f" && echo "$f"; done; true',
      ])
      expect(gone.stdout.trim()).toBe('')

      // an unprivileged user can ping only through the file capability: the ICMP socket sysctl is closed
      const ping = ['run', '--rm', '--network', 'none', '--user', '65534', '--sysctl', 'net.ipv4.ping_group_range=1 0']
      const withCap = await docker(bed, 'classic', [...ping, image, 'ping', '-c', '1', '-W', '2', '127.0.0.1'])
      expect(withCap.code, withCap.stderr).toBe(0)
      // the control: without CAP_NET_RAW in the bounding set, the same command fails
      const without = await docker(bed, 'classic', [
        ...ping.slice(0, 1),
        '--cap-drop',
        'NET_RAW',
        ...ping.slice(1),
        image,
        'ping',
        '-c',
        '1',
        '-W',
        '2',
        '127.0.0.1',
      ])
      expect(without.code).not.toBe(0)
    })

    it('writes a docker-archive that Docker 26.1 (containerd store) loads and runs', async () => {
      const load = await docker(bed, 'containerd', ['load', '-i', path.join(work, 'debian.tar')])
      expect(load.code, load.stderr).toBe(0)
      expect(load.stdout).toContain('e2e-rootfs/debian:cli')
      const echo = await docker(bed, 'containerd', [
        'run',
        '--rm',
        '--network',
        'none',
        'e2e-rootfs/debian:cli',
        'cat',
        '/etc/debian_version',
      ])
      expect(echo.code, echo.stderr).toBe(0)
      expect(echo.stdout).toMatch(/^12\.\d+/)
    })
  })

  it('builds a tarball reproducibly, keeps absolute paths inside the image, and diffs two builds', async () => {
    const busybox = await readFile('/bin/busybox')
    const entries = [
      {name: 'bin/'},
      {content: busybox, mode: 0o755, name: 'bin/busybox'},
      {name: 'etc/'},
      {content: 'hello\n', name: '/etc/motd'},
      {content: 'one\n', name: './etc/version'},
    ]
    const tarball = path.join(work, 'tiny.tar.gz')
    await writeFile(tarball, gzipSync(await makeTarball(entries)))
    const first = await transship(
      [
        'rootfs',
        'build',
        '--tarball',
        tarball,
        '--tag',
        'e2e-rootfs/tiny:1',
        '--cmd',
        '["/bin/busybox","sh"]',
        '-o',
        'engine',
        '-o',
        `engine:ssh://${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}${bed.engines.remote.socket}`,
      ],
      options,
    )
    expect(first.code, first.stderr).toBe(0)
    expect(first.stderr).toContain('newest file')
    const motd = await docker(bed, 'classic', [
      'run',
      '--rm',
      '--network',
      'none',
      'e2e-rootfs/tiny:1',
      '/bin/busybox',
      'cat',
      '/etc/motd',
    ])
    expect(motd.stdout).toBe('hello\n')
    // the same image reached the engine over SSH
    expect(await imageId('remote', 'e2e-rootfs/tiny:1')).toBe(await imageId('classic', 'e2e-rootfs/tiny:1'))

    // the same tarball again: the same image; `rootfs diff` agrees
    const again = await transship(
      ['rootfs', 'build', '--tarball', tarball, '--tag', 'e2e-rootfs/tiny:2', '--cmd', '["/bin/busybox","sh"]'],
      options,
    )
    expect(again.code, again.stderr).toBe(0)
    expect(await imageId('classic', 'e2e-rootfs/tiny:2')).toBe(await imageId('classic', 'e2e-rootfs/tiny:1'))
    const same = await transship(['rootfs', 'diff', 'e2e-rootfs/tiny:1', 'e2e-rootfs/tiny:2'], options)
    expect(same.code, same.stderr).toBe(0)
    expect(same.stdout).toContain('identical')

    // one file changed: the diff names it, exit 5
    const changed = entries.map((entry) => (entry.name === './etc/version' ? {...entry, content: 'two\n'} : entry))
    await writeFile(tarball, gzipSync(await makeTarball(changed)))
    const rebuilt = await transship(
      [
        'rootfs',
        'build',
        '--tarball',
        tarball,
        '--tag',
        'e2e-rootfs/tiny:2',
        '--epoch',
        '1700000000',
        '--cmd',
        '["/bin/busybox","sh"]',
      ],
      options,
    )
    expect(rebuilt.code, rebuilt.stderr).toBe(0)
    const diff = await transship(['rootfs', 'diff', 'e2e-rootfs/tiny:1', 'e2e-rootfs/tiny:2', '--json'], options)
    expect(diff.code).toBe(5)
    const report = JSON.parse(diff.stdout) as {error: {code: string; details: {files: Array<{path: string}>}}}
    expect(report.error.code).toBe('ROOTFS_DIFFERENT')
    expect(report.error.details.files.map((file) => file.path)).toEqual(['etc/version'])
  })

  it('refuses hostile and broken tarballs before anything is written', async () => {
    const escape = `transship-e2e-escape-${randomBytes(4).toString('hex')}`
    const hostile = path.join(work, 'hostile.tar')
    await writeFile(hostile, await makeTarball([{name: 'etc/'}, {content: 'x', name: `../../../../tmp/${escape}`}]))
    const refused = await transship(
      [
        'rootfs',
        'build',
        '--tarball',
        hostile,
        '--tag',
        'e2e-rootfs/hostile:1',
        '-o',
        `oci:${path.join(work, 'hostile-oci')}`,
      ],
      options,
    )
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain(`tmp/${escape}`)
    expect(await exists(path.join(os.tmpdir(), escape))).toBe(false)
    expect(await exists(path.join(work, 'hostile-oci', 'index.json'))).toBe(false)

    const whole = gzipSync(await makeTarball([{name: 'etc/'}, {content: randomBytes(200_000), name: 'etc/blob'}]))
    const truncated = path.join(work, 'truncated.tar.gz')
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length / 2)))
    const cut = await transship(['rootfs', 'build', '--tarball', truncated, '--tag', 'e2e-rootfs/cut:1'], options)
    expect(cut.code).toBe(2)
    expect(cut.stderr).toMatch(/truncated|corrupt/i)
    expect(await imageId('classic', 'e2e-rootfs/cut:1')).toBeUndefined()
  })

  it('says that debootstrap needs root, and does nothing, when run without it', async () => {
    const nobodyHome = await mkdtemp(path.join(os.tmpdir(), 'transship-nobody-'))
    await run('chown', ['65534:65534', nobodyHome])
    try {
      const result = await run(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          // the checkout may be readable by root alone (mktemp -d): nobody may read it, and is still not root
          '--inh-caps=+dac_read_search',
          '--ambient-caps=+dac_read_search',
          '--',
          process.execPath,
          path.join(repoRoot, 'bin', 'run.js'),
          'rootfs',
          'build',
          '--debootstrap',
          'bookworm',
          '--tag',
          'e2e-rootfs/nobody:1',
          '-o',
          `oci:${path.join(nobodyHome, 'oci')}`,
        ],
        {env: {HOME: nobodyHome, NO_COLOR: '1', PATH: process.env.PATH}},
      )
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/needs root/)
      expect(await exists(path.join(nobodyHome, 'oci'))).toBe(false)
    } finally {
      await rm(nobodyHome, {force: true, recursive: true})
    }
  })
})
