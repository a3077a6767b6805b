// rsync relayed by transship between a local directory (this machine's shell) and one reached over the bed's
// sshd: the destination's rsync receives, the source's rsync sends, transship pipes one into the other. What
// landed is checked here with rsync itself (a local -c dry run finds nothing to do), lstat and xattrs.
import type {RemoteShell} from '@transship/kit'

import {localShell, TransshipError} from '@transship/kit'
import {readXattrs, writeXattrs} from '@transship/kit/native'
import {createCipheriv} from 'node:crypto'
import {link, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {rsyncRelay, type RsyncSide} from '../../plugins/plugin-volumes/src/rsync-relay.js'
import {RunHosts} from '../../src/hosts/run-hosts.js'
import {describeE2E, run} from '../helpers/testbed.js'
import {rawAcl} from '../helpers/volume-fixtures.js'

const MiB = 1024 * 1024
const MARKER = '.transship-incomplete'
/** "caf\xE9.txt": a name that is not UTF-8 */
const NON_UTF8 = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from('.txt')])
const SMALL_FILES = 100
const log = {debug() {}, info() {}, warn() {}}

/** `size` bytes of a fixed pseudo-random stream (AES-CTR of zeros under a key made from `seed`), in 1 MiB writes */
async function writeSeeded(file: string, size: number, seed: string, flag = 'w'): Promise<void> {
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, seed), Buffer.alloc(16))
  const handle = await open(file, flag)
  try {
    for (let left = size; left > 0; left -= MiB) await handle.write(cipher.update(Buffer.alloc(Math.min(MiB, left))))
  } finally {
    await handle.close()
  }
}

function small(i: number): string {
  return `files/f${String(i).padStart(3, '0')}.bin`
}

/** the source tree: small files, a 200 MiB file, hard links, a sparse file, xattrs, an ACL, symlinks, odd names */
async function buildTree(root: string): Promise<void> {
  await mkdir(path.join(root, 'files'), {recursive: true})
  await mkdir(path.join(root, 'gone'))
  for (let i = 0; i < SMALL_FILES; i++) await writeSeeded(path.join(root, small(i)), 4096 + i * 100, `small-${i}`)
  await writeFile(path.join(root, 'gone', 'old.txt'), 'deleted later\n')
  await writeSeeded(path.join(root, 'big.bin'), 200 * MiB, 'big')
  await writeFile(path.join(root, 'linked'), 'one inode, two names\n')
  await link(path.join(root, 'linked'), path.join(root, 'files', 'linked-too'))
  // 64 MiB with 4 KiB of data at each end
  const sparse = await open(path.join(root, 'sparse.img'), 'w')
  await sparse.write(Buffer.alloc(4096, 1), 0, 4096, 0)
  await sparse.write(Buffer.alloc(4096, 2), 0, 4096, 64 * MiB - 4096)
  await sparse.close()
  await writeFile(path.join(root, 'attributes'), 'xattrs and an ACL\n')
  writeXattrs(
    path.join(root, 'attributes'),
    new Map([
      ['system.posix_acl_access', rawAcl()],
      ['user.transship', Buffer.from('rsync relay')],
    ]),
  )
  await symlink('files/f000.bin', path.join(root, 'to-f000'))
  await symlink('nowhere', path.join(root, 'dangling'))
  await writeFile(Buffer.concat([Buffer.from(`${root}/`), NON_UTF8]), 'latin1\n')
  await writeFile(path.join(root, 'a name\nwith a newline'), 'newline\n')
  await writeFile(path.join(root, MARKER), 'excluded\n')
  // nanosecond mtimes (set last, after every write in the directories)
  for (const name of ['attributes', 'linked', 'files', '.']) {
    const touched = await run('touch', ['-h', '-d', '2021-02-03 04:05:06.123456789', path.join(root, name)])
    expect(touched.code).toBe(0)
  }
}

/** what a local `rsync -n -aHAXSc --numeric-ids --delete` would still change (the marker aside): nothing */
async function differences(source: string, destination: string): Promise<string> {
  const result = await run('rsync', [
    '-n',
    '-aHAXSc',
    '--numeric-ids',
    '--delete',
    '--itemize-changes',
    `--exclude=/${MARKER}`,
    `${source}/`,
    `${destination}/`,
  ])
  expect(result.code, result.stderr).toBe(0)
  return result.stdout
}

/** the processes of a run: those whose command line names `directory` (a receiver or a sender), and their children */
async function processesOn(directories: string[]): Promise<string[]> {
  const all = new Map<number, {command: string; parent: number}>()
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue
    try {
      const command = (await readFile(`/proc/${pid}/cmdline`)).toString().replaceAll('\0', ' ')
      // the parent's pid is the 4th field of stat, after the command name in parentheses
      const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).slice(
        (await readFile(`/proc/${pid}/stat`, 'utf8')).lastIndexOf(')') + 2,
      )
      all.set(Number(pid), {command, parent: Number(stat.split(' ')[1])})
    } catch {
      // gone meanwhile
    }
  }

  const ours = new Set<number>()
  for (const [pid, {command}] of all) {
    if (directories.some((directory) => command.includes(directory)) && command.includes('rsync')) ours.add(pid)
  }

  for (let grown = true; grown;) {
    grown = false
    for (const [pid, {parent}] of all) {
      if (!ours.has(pid) && ours.has(parent)) {
        ours.add(pid)
        grown = true
      }
    }
  }

  return [...ours].map((pid) => `${pid} ${all.get(pid)?.command}`)
}

describeE2E('rsync relayed between a local directory and one over SSH', (bed) => {
  let work: string
  let hosts: RunHosts
  let remoteShell: RemoteShell
  let source: RsyncSide
  let destination: RsyncSide

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'transship-e2e-rsync-relay-'))
    await buildTree(path.join(work, 'source'))
    await mkdir(path.join(work, 'destination'))
    await writeFile(path.join(work, 'destination', MARKER), 'kept: excluded on both sides\n')
    await writeFile(path.join(work, 'destination', 'stray'), 'not in the source\n')
    hosts = new RunHosts(
      {
        edge: {
          engine: bed.engines.remote.socket,
          identityFile: bed.ssh.identityFile,
          knownHosts: bed.ssh.knownHosts,
          ssh: `${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}`,
        },
      },
      {log},
    )
    remoteShell = (await hosts.host('edge')).shell
    source = {host: 'local', root: path.join(work, 'source'), shell: localShell()}
    destination = {host: 'edge', root: path.join(work, 'destination'), shell: remoteShell}
  })

  afterAll(async () => {
    await hosts?.close()
    if (work) await rm(work, {force: true, recursive: true})
  })

  it('copies everything first, then nothing, then only what changed', async () => {
    const first = await rsyncRelay(source, destination, {exclude: [MARKER]})
    const {root} = destination
    expect(await differences(source.root, root)).toBe('')
    expect(first.deleted).toEqual(['stray'])
    expect(first.changed).toEqual(
      expect.arrayContaining(['big.bin', 'files', small(0), 'sparse.img', String.raw`caf\xE9.txt`]),
    )
    expect(first.changed).toContain('a name\nwith a newline')
    expect(first.changed).not.toContain(MARKER)
    expect(first.bytesSent).toBeGreaterThan(200 * MiB)
    // the marker was neither sent nor deleted
    expect((await run('cat', [path.join(root, MARKER)])).stdout).toBe('kept: excluded on both sides\n')
    // checked one by one as well: hard link, sparse, xattrs and ACL, symlinks, nanoseconds, the latin1 name
    const [linked, linkedToo] = await Promise.all([
      lstat(path.join(root, 'linked')),
      lstat(path.join(root, 'files', 'linked-too')),
    ])
    expect(linked.ino).toBe(linkedToo.ino)
    const sparse = await lstat(path.join(root, 'sparse.img'))
    expect(sparse.size).toBe(64 * MiB)
    expect(sparse.blocks * 512).toBeLessThan(MiB)
    const xattrs = readXattrs(path.join(root, 'attributes'))
    expect(xattrs.get('user.transship')?.toString()).toBe('rsync relay')
    expect(xattrs.get('system.posix_acl_access')).toEqual(rawAcl())
    expect(await readlink(path.join(root, 'to-f000'))).toBe('files/f000.bin')
    expect(await readlink(path.join(root, 'dangling'))).toBe('nowhere')
    const stamp = await run('stat', ['-c', '%y', path.join(root, 'attributes'), path.join(root, 'files')])
    expect(stamp.stdout).toMatch(/^2021-02-03 04:05:06\.123456789 \S+\n2021-02-03 04:05:06\.123456789 \S+\n$/)
    const names = await readdir(root, {encoding: 'buffer'})
    expect(names.some((name) => name.equals(NON_UTF8))).toBe(true)

    const again = await rsyncRelay(source, destination, {exclude: [MARKER]})
    expect(again.changed).toEqual([])
    expect(again.deleted).toEqual([])
    expect(again.bytesSent).toBeLessThan(64 * 1024)

    // 1 % of the small files rewritten, 10 MiB appended to the big one, a file deleted (its directory changes)
    await writeSeeded(path.join(source.root, small(42)), 5000, 'rewritten')
    await writeSeeded(path.join(source.root, 'big.bin'), 10 * MiB, 'appended', 'a')
    await rm(path.join(source.root, 'gone', 'old.txt'))
    const expected = {changed: ['big.bin', small(42), 'gone'], deleted: ['gone/old.txt']}

    const planned = await rsyncRelay(source, destination, {dryRun: true, exclude: [MARKER]})
    expect({changed: planned.changed.sort(), deleted: planned.deleted}).toEqual(expected)
    expect(await differences(source.root, root)).not.toBe('')
    expect(planned.bytesSent).toBeLessThan(64 * 1024)

    const third = await rsyncRelay(source, destination, {exclude: [MARKER]})
    expect({changed: third.changed.sort(), deleted: third.deleted}).toEqual(expected)
    expect(third.bytesSent).toBeLessThan(15 * MiB)
    expect(await differences(source.root, root)).toBe('')
  })

  it('fails with what both rsyncs said', async () => {
    const missing = {...source, root: path.join(work, 'no-such-directory')}
    const failed = rsyncRelay(missing, {...destination, root: path.join(work, 'unused')})
    await expect(failed).rejects.toBeInstanceOf(TransshipError)
    await expect(failed).rejects.toMatchObject({
      code: 'VOLUME_TRANSFER_FAILED',
      message: expect.stringMatching(
        /^rsync from local to edge failed: receiver exit 23 \(partial transfer due to error\)[^]*change_dir .*no-such-directory.* failed: No such file or directory/,
      ),
    })
  })

  it('ends both rsyncs within a second of an abort', async () => {
    const target = path.join(work, 'aborted')
    await mkdir(target)
    const controller = new AbortController()
    const copy = rsyncRelay(source, {...destination, root: target}, {signal: controller.signal})
    // abort once the 200 MiB file is partly written (rsync writes it as a dot-file beside it)
    const deadline = Date.now() + 60_000
    for (;;) {
      const partial = (await readdir(target)).find((name) => name.startsWith('.big.bin.'))
      const size = partial ? ((await lstat(path.join(target, partial)).catch(() => {}))?.size ?? 0) : 0
      if (size > 10 * MiB) break
      expect(Date.now()).toBeLessThan(deadline)
      await sleep(10)
    }

    // the check below sees the run: the sender, the receiver and the relay under it
    expect((await processesOn([target, source.root])).length).toBeGreaterThanOrEqual(3)
    const aborted = Date.now()
    controller.abort(new Error('stop here'))
    await expect(copy).rejects.toThrow('stop here')
    let left = await processesOn([target, source.root])
    while (left.length > 0 && Date.now() - aborted < 1000) {
      await sleep(20)
      left = await processesOn([target, source.root])
    }

    expect(left).toEqual([])
    expect(Date.now() - aborted).toBeLessThan(1000)
  })
})
