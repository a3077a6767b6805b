import {TransshipError, UsageError} from '@transship/kit'
import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
// vitest is a devDependency of the workspace root, not of this package
import {afterAll, afterEach, beforeAll, describe, expect, it, vi} from 'vitest'

import {failure} from '../../../../test/helpers/failure.js'
import {
  bootstrap,
  bootstrapCommand,
  bootstrapProblem,
  type BootstrapSpec,
  mountPointsUnder,
  parseMountInfo,
  parseReleaseDate,
  releaseEpoch,
  removeRootfs,
} from '../../src/source/bootstrap.js'

const isRoot = process.geteuid?.() === 0
const slow = process.env.TRANSSHIP_SLOW === '1'
const REAL_ROOTFS = '/var/tmp/rfdev/a'

function onPath(name: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin']
  return dirs.some((dir) => dir && existsSync(path.join(dir, name)))
}

function codeOf(error: unknown): string | undefined {
  return error instanceof TransshipError ? error.code : undefined
}

function silentLog(lines: string[] = []) {
  return {debug: (m: string) => lines.push(m), info() {}}
}

let scratch: string
beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'transship-bootstrap-'))
})
afterAll(async () => {
  await rm(scratch, {force: true, recursive: true})
})

describe('bootstrapCommand', () => {
  it('builds a debootstrap command line from every setting', () => {
    const spec: BootstrapSpec = {
      arch: 'amd64',
      components: ['main', 'contrib'],
      exclude: ['e2fsprogs'],
      include: ['ca-certificates', 'curl'],
      mirror: 'http://mirror.example/debian',
      suite: 'bookworm',
      tool: 'debootstrap',
      variant: 'minbase',
    }
    expect(bootstrapCommand(spec, '/var/tmp/r', {cacheDir: '/var/cache/d'})).toEqual([
      'debootstrap',
      '--variant=minbase',
      '--components=main,contrib',
      '--include=ca-certificates,curl',
      '--exclude=e2fsprogs',
      '--arch=amd64',
      '--cache-dir=/var/cache/d',
      'bookworm',
      '/var/tmp/r',
      'http://mirror.example/debian',
    ])
  })

  it('uses the default mirror and an absolute target', () => {
    expect(bootstrapCommand({suite: 'bookworm', tool: 'debootstrap'}, 'rel')).toEqual([
      'debootstrap',
      'bookworm',
      path.resolve('rel'),
      'http://deb.debian.org/debian',
    ])
  })

  it('builds an mmdebstrap command line in root mode', () => {
    const spec: BootstrapSpec = {
      arch: 'arm64',
      components: ['main'],
      include: ['curl'],
      suite: 'trixie',
      tool: 'mmdebstrap',
      variant: 'apt',
    }
    expect(bootstrapCommand(spec, '/t')).toEqual([
      'mmdebstrap',
      '--mode=root',
      '--format=directory',
      '--skip=cleanup/apt/lists',
      '--variant=apt',
      '--components=main',
      '--include=curl',
      '--architectures=arm64',
      'trixie',
      '/t',
      'http://deb.debian.org/debian',
    ])
  })

  it('refuses exclude for mmdebstrap', () => {
    const error = (() => {
      try {
        bootstrapCommand({exclude: ['x'], suite: 'bookworm', tool: 'mmdebstrap'}, '/t')
      } catch (error) {
        return error
      }
    })()
    expect(error).toBeInstanceOf(UsageError)
    expect(codeOf(error)).toBe('ROOTFS_SPEC_INVALID')
  })

  it.each([
    {suite: '--foreign', tool: 'debootstrap'},
    {suite: 'bookworm stable', tool: 'debootstrap'},
    {include: ['a,b'], suite: 'bookworm', tool: 'debootstrap'},
    {include: ['-x'], suite: 'bookworm', tool: 'debootstrap'},
    {mirror: '--print-debs', suite: 'bookworm', tool: 'debootstrap'},
    {suite: 'bookworm', tool: 'debootstrap', variant: '--x'},
  ] as BootstrapSpec[])('refuses values that would become other arguments: %o', async (spec) => {
    expect(() => bootstrapCommand(spec, '/t')).toThrow(UsageError)
    expect(codeOf(await bootstrapProblem(spec))).toBe('ROOTFS_SPEC_INVALID')
  })
})

describe('bootstrapProblem', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('asks for root when not root', async () => {
    vi.spyOn(process, 'geteuid').mockReturnValue(1000)
    const problem = await bootstrapProblem({suite: 'bookworm', tool: 'debootstrap'})
    expect(problem).toBeInstanceOf(UsageError)
    expect(problem?.code).toBe('ROOTFS_NEEDS_ROOT')
    expect(problem?.exit).toBe(2)
    expect(problem?.suggestions.join('\n')).toMatch(/mmdebstrap/)
  })

  it.skipIf(!isRoot || !onPath('debootstrap'))('finds nothing wrong as root with debootstrap installed', async () => {
    expect(await bootstrapProblem({suite: 'bookworm', tool: 'debootstrap'})).toBeUndefined()
  })

  it.skipIf(!isRoot || onPath('mmdebstrap'))('reports a missing tool with the package to install', async () => {
    const problem = await bootstrapProblem({suite: 'bookworm', tool: 'mmdebstrap'})
    expect(problem?.code).toBe('ROOTFS_TOOL_MISSING')
    expect(problem?.suggestions).toContain('install it: apt-get install mmdebstrap')
  })
})

describe('bootstrap with a stand-in debootstrap', () => {
  let bin: string
  let savedPath: string | undefined
  beforeAll(async () => {
    bin = path.join(scratch, 'bin')
    await mkdir(bin)
    // behaves by suite: ok prints its environment, fail fails like debootstrap does, hang waits in a child
    await writeFile(
      path.join(bin, 'debootstrap'),
      `#!/bin/sh
[ "$1" = --version ] && { echo 'debootstrap 1.0.999'; exit 0; }
suite=; target=
for a; do
  [ -n "$suite" ] && [ -z "$target" ] && target=$a
  case $a in ok|fail|hang) suite=$a;; esac
done
case $suite in
ok) echo "umask=$(umask) LC_ALL=$LC_ALL TZ=$TZ SDE=$SOURCE_DATE_EPOCH"; echo "args=$*" >&2; printf 'no newline';;
fail)
  mkdir -p "$target/debootstrap"
  printf 'log 1\\nlog 2\\n\\nlog last\\n' > "$target/debootstrap/debootstrap.log"
  echo 'I: Retrieving InRelease'; echo 'E: Failed getting release file' >&2; echo; exit 3;;
hang) sleep 60 & echo $! > "$target.pid"; echo started; wait;;
esac
`,
    )
    await chmod(path.join(bin, 'debootstrap'), 0o755)
    savedPath = process.env.PATH
    process.env.PATH = `${bin}:${process.env.PATH}`
  })
  afterAll(() => {
    process.env.PATH = savedPath
  })

  it('runs it without a shell-split command line, umask 022 and a fixed environment', async () => {
    const lines: string[] = []
    const target = path.join(scratch, 'ok')
    const result = await bootstrap({suite: 'ok', tool: 'debootstrap', variant: 'minbase'}, target, {
      epoch: 1_700_000_000,
      log: silentLog(lines),
    })
    expect(result).toEqual({
      command: ['debootstrap', '--variant=minbase', 'ok', target, 'http://deb.debian.org/debian'],
      version: '1.0.999',
    })
    expect(lines).toContain('umask=0022 LC_ALL=C TZ=UTC SDE=1700000000')
    expect(lines).toContain(`args=--variant=minbase ok ${target} http://deb.debian.org/debian`)
    expect(lines).toContain('no newline')
  })

  it('throws ROOTFS_BOOTSTRAP_FAILED with the last output and debootstrap.log lines', async () => {
    const target = path.join(scratch, 'fail')
    const error = await failure(bootstrap({suite: 'fail', tool: 'debootstrap'}, target, {log: silentLog()}))
    expect(codeOf(error)).toBe('ROOTFS_BOOTSTRAP_FAILED')
    expect((error as TransshipError).exit).toBe(1)
    const {message} = error as Error
    expect(message).toMatch(/^debootstrap fail failed: it exited with code 3/)
    expect(message).toContain('E: Failed getting release file')
    expect(message).toContain('I: Retrieving InRelease')
    expect(message).toMatch(/debootstrap\.log:\n {2}log 1\n {2}log 2\n {2}log last$/)
  })

  it('kills the whole process group on abort and rejects with the reason', async () => {
    const target = path.join(scratch, 'hang')
    const controller = new AbortController()
    const reason = new Error('stop')
    const log = {
      debug(m: string) {
        if (m === 'started') controller.abort(reason)
      },
      info() {},
    }
    const error = await failure(
      bootstrap({suite: 'hang', tool: 'debootstrap'}, target, {log, signal: controller.signal}),
    )
    expect(error).toBe(reason)
    const pid = Number(await readFile(`${target}.pid`, 'utf8'))
    await expect.poll(() => alive(pid), {timeout: 3000}).toBe(false)
  })

  it('does not start when already aborted', async () => {
    const reason = new Error('early')
    const error = await failure(
      bootstrap({suite: 'ok', tool: 'debootstrap'}, path.join(scratch, 'early'), {
        log: silentLog(),
        signal: AbortSignal.abort(reason),
      }),
    )
    expect(error).toBe(reason)
  })
})

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }

  // a zombie still answers signal 0 until it is reaped
  try {
    return !/^State:\s+Z/m.test(execFileSync('cat', [`/proc/${pid}/status`], {encoding: 'utf8'}))
  } catch {
    return false
  }
}

describe('release dates', () => {
  it('parses the Date: of a Release file in whole seconds', () => {
    const text = 'Origin: Debian\nSuite: stable\nDate: Sat, 08 Nov 2026 09:25:13 UTC\nValid-Until: Sat, 15 Nov 2026\n'
    expect(parseReleaseDate(text)).toBe(Date.UTC(2026, 10, 8, 9, 25, 13) / 1000)
    expect(parseReleaseDate('Origin: Debian\n')).toBeUndefined()
    expect(parseReleaseDate('Date: not a date\n')).toBeUndefined()
  })

  it('takes the newest InRelease/Release Date: and ignores other lists', async () => {
    const rootfs = path.join(scratch, 'dates')
    const lists = path.join(rootfs, 'var/lib/apt/lists')
    await mkdir(lists, {recursive: true})
    await writeFile(
      path.join(lists, 'deb.debian.org_debian_dists_bookworm_InRelease'),
      '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: oldstable\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n',
    )
    await writeFile(
      path.join(lists, 'security.debian.org_dists_bookworm-security_Release'),
      'Date: Sun, 12 Jul 2026 00:00:01 +0000\n',
    )
    await writeFile(
      path.join(lists, 'deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages'),
      'Date: Mon, 13 Jul 2026 00:00:00 UTC\n',
    )
    expect(await releaseEpoch(rootfs)).toBe(Date.UTC(2026, 6, 12, 0, 0, 1) / 1000)
  })

  it('is undefined without apt lists', async () => {
    expect(await releaseEpoch(path.join(scratch, 'nothing-here'))).toBeUndefined()
  })

  it.skipIf(!existsSync(`${REAL_ROOTFS}/var/lib/apt/lists`))('reads a real debootstrap rootfs', async () => {
    expect(await releaseEpoch(REAL_ROOTFS)).toBe(Date.UTC(2026, 6, 11, 10, 16, 37) / 1000)
  })
})

describe('mountinfo', () => {
  const sample = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    '30 22 0:25 / /var/tmp/r rw shared:5 - tmpfs tmpfs rw',
    '31 30 0:5 / /var/tmp/r/proc rw,nosuid - proc proc rw',
    '32 30 0:6 / /var/tmp/r/dev/pts rw master:2 - devpts devpts rw',
    String.raw`33 30 0:26 / /var/tmp/r/my\040dir rw - tmpfs tmpfs rw`,
    '34 30 0:27 / /var/tmp/r/caf\u00E9\\134x\\011y rw - tmpfs tmpfs rw',
    '35 31 0:28 / /var/tmp/r/proc rw - tmpfs none rw',
    '36 22 0:29 / /var/tmp/rr rw - tmpfs tmpfs rw',
    '37 22 0:30 / /var/tmp/r2/x rw - tmpfs tmpfs rw',
    '',
  ].join('\n')

  it('parses mount points with octal escapes and the fs type after the optional fields', () => {
    const mounts = parseMountInfo(sample)
    expect(mounts).toHaveLength(9)
    expect(mounts[0]).toEqual({fsType: 'ext4', mountPoint: '/'})
    expect(mounts[3]).toEqual({fsType: 'devpts', mountPoint: '/var/tmp/r/dev/pts'})
    expect(mounts[4]!.mountPoint).toBe('/var/tmp/r/my dir')
    expect(mounts[5]!.mountPoint).toBe('/var/tmp/r/caf\u00E9\\x\ty')
  })

  it('lists the mounts at or under a root, deepest and newest first, and nothing beside it', () => {
    expect(mountPointsUnder(sample, '/var/tmp/r')).toEqual([
      '/var/tmp/r/dev/pts',
      '/var/tmp/r/proc',
      '/var/tmp/r/caf\u00E9\\x\ty',
      '/var/tmp/r/my dir',
      '/var/tmp/r/proc',
      '/var/tmp/r',
    ])
    expect(mountPointsUnder(sample, '/var/tmp/nothing')).toEqual([])
  })
})

describe('removeRootfs', () => {
  it('does nothing for a target that does not exist', async () => {
    await removeRootfs(path.join(scratch, 'absent'))
  })

  it('removes a plain directory tree', async () => {
    const target = path.join(scratch, 'plain')
    await mkdir(path.join(target, 'etc'), {recursive: true})
    await writeFile(path.join(target, 'etc/hostname'), 'x\n')
    await removeRootfs(target)
    expect(existsSync(target)).toBe(false)
  })

  it.skipIf(!isRoot)('unmounts what is mounted inside before deleting (root)', async () => {
    const target = path.join(scratch, 'mounted')
    const proc = path.join(target, 'proc')
    const spaced = path.join(target, 'dev', 'my pts')
    await mkdir(proc, {recursive: true})
    await mkdir(spaced, {recursive: true})
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', proc])
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', proc]) // stacked
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', spaced])
    try {
      await writeFile(path.join(proc, 'inside'), 'x')
      expect(mountPointsUnder(await readFile('/proc/self/mountinfo', 'utf8'), target)).toHaveLength(3)
      await removeRootfs(target)
      expect(mountPointsUnder(await readFile('/proc/self/mountinfo', 'utf8'), target)).toEqual([])
      expect(existsSync(target)).toBe(false)
    } finally {
      for (const point of mountPointsUnder(await readFile('/proc/self/mountinfo', 'utf8'), target)) {
        execFileSync('umount', ['-l', point])
      }
    }
  })
})

describe.skipIf(!slow || !isRoot || !existsSync('/var/tmp/rfdev/cache'))('a real debootstrap (slow)', () => {
  it('bootstraps bookworm minbase and cleans up', {timeout: 600_000}, async () => {
    const target = path.join(await mkdtemp('/var/tmp/transship-debootstrap-'), 'rootfs')
    try {
      const result = await bootstrap({suite: 'bookworm', tool: 'debootstrap', variant: 'minbase'}, target, {
        cacheDir: '/var/tmp/rfdev/cache',
        epoch: 1_700_000_000,
        log: silentLog(),
      })
      expect(result.command).toContain('--cache-dir=/var/tmp/rfdev/cache')
      expect(result.version).toMatch(/^\d/)
      expect(existsSync(path.join(target, 'usr/bin/apt-get'))).toBe(true)
      expect(await releaseEpoch(target)).toBeGreaterThan(1_700_000_000)
    } finally {
      await removeRootfs(path.dirname(target))
    }

    expect(existsSync(target)).toBe(false)
  })
})
