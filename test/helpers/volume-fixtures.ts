/* eslint-disable no-bitwise -- file modes are bit fields */
// Volume fixtures and independent checks for the end-to-end tests of the volume commands: a volume's tree read
// with our own lstat, sha256, readlink and xattrs (never with transship's manifest), a tree with every kind of
// file, waiting, containers' states, and the CLI as a child process to signal.
import {readXattrs, writeXattrs} from '@transship/kit/native'
import {type ChildProcess, spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {once} from 'node:events'
import {
  chmod,
  chown,
  copyFile,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  symlink,
  writeFile,
} from 'node:fs/promises'
import path from 'node:path'
import {expect} from 'vitest'

import {repoRoot} from './cli.js'
import {dockerCli, run} from './testbed.js'

export const MARKER = '.transship-incomplete'
export const MiB = 1024 * 1024
/** a file name that is not UTF-8: "caf\xE9.txt" (Latin-1) */
export const NON_UTF8 = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from('.txt')])
/** cap_net_raw+ep as the security.capability xattr (VFS_CAP_REVISION_2) */
export const RAW_CAPABILITY = Buffer.from('0100000200200000000000000000000000000000', 'hex')

/** system.posix_acl_access for `u::rw-,u:1234:r--,g::r--,m::r--,o::r--` (what `setfacl -m u:1234:r` makes) */
export function rawAcl(): Buffer {
  const entries: Array<[number, number, number]> = [
    [0x01, 6, 0xff_ff_ff_ff],
    [0x02, 4, 1234],
    [0x04, 4, 0xff_ff_ff_ff],
    [0x10, 4, 0xff_ff_ff_ff],
    [0x20, 4, 0xff_ff_ff_ff],
  ]
  const buffer = Buffer.alloc(4 + entries.length * 8)
  buffer.writeUInt32LE(2, 0)
  for (const [i, [tag, perm, id]] of entries.entries()) {
    buffer.writeUInt16LE(tag, 4 + i * 8)
    buffer.writeUInt16LE(perm, 6 + i * 8)
    buffer.writeUInt32LE(id, 8 + i * 8)
  }

  return buffer
}

export async function which(command: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${command}`])).code === 0
}

/** A path relative to a volume's root as text; bytes that are not ASCII as \xNN. */
export function display(relative: Buffer): string {
  if (relative.length === 0) return '.'
  return [...relative].map((byte) => (byte < 0x80 ? String.fromCodePoint(byte) : `\\x${byte.toString(16)}`)).join('')
}

export interface Entry {
  gid: number
  /** the other names of the same inode, for files with more than one link */
  hardlinks?: string[]
  /** symlink target */
  link?: string
  mode: string
  mtime: number
  nlink: number
  sha256?: string
  size?: number
  type: 'dir' | 'fifo' | 'file' | 'other' | 'symlink'
  uid: number
  xattrs: Record<string, string>
}

/** Every path under `root` (root included, as "."), read with our own lstat, sha256, readlink and xattrs. */
export async function snapshot(root: string): Promise<Record<string, Entry>> {
  const entries: Record<string, Entry> = {}
  const inodes = new Map<number, string[]>()
  const visit = async (relative: Buffer) => {
    const full = relative.length === 0 ? Buffer.from(root) : Buffer.concat([Buffer.from(`${root}/`), relative])
    const info = await lstat(full)
    const type = info.isDirectory()
      ? 'dir'
      : info.isFile()
        ? 'file'
        : info.isSymbolicLink()
          ? 'symlink'
          : info.isFIFO()
            ? 'fifo'
            : 'other'
    const xattrs = Object.fromEntries([...readXattrs(full)].map(([name, value]) => [name, value.toString('hex')]))
    const entry: Entry = {
      gid: info.gid,
      mode: (info.mode & 0o7777).toString(8),
      mtime: Math.floor(info.mtimeMs / 1000),
      nlink: type === 'dir' ? 0 : info.nlink,
      type,
      uid: info.uid,
      xattrs,
    }
    if (type !== 'dir') entry.size = info.size
    if (type === 'file')
      entry.sha256 = createHash('sha256')
        .update(await readFile(full))
        .digest('hex')
    if (type === 'symlink') entry.link = display(await readlink(full, {encoding: 'buffer'}))
    const key = display(relative)
    entries[key] = entry
    if (type !== 'dir' && info.nlink > 1) inodes.set(info.ino, [...(inodes.get(info.ino) ?? []), key])
    if (type === 'dir') {
      for (const name of await readdir(full, {encoding: 'buffer'})) {
        await visit(relative.length === 0 ? name : Buffer.concat([relative, Buffer.from('/'), name]))
      }
    }
  }

  await visit(Buffer.alloc(0))
  for (const names of inodes.values()) for (const name of names) entries[name]!.hardlinks = names.toSorted()
  return entries
}

/**
 * Fills a volume's data directory with every kind of file `volume copy` promises to keep, each with its own
 * old mtime. Says whether the ACL was set with setfacl (else as the raw xattr).
 */
export async function fillRich(root: string): Promise<{setfacl: boolean}> {
  const at = (name: string) => path.join(root, name)
  await writeFile(at('regular.txt'), 'regular content\n')
  await mkdir(at('empty-dir'))
  await mkdir(at('nested/deeper'), {recursive: true})
  await writeFile(at('nested/deeper/random.bin'), randomBytes(70_000))
  await symlink('regular.txt', at('link-to-regular'))
  await symlink('/nonexistent/target', at('dangling-link'))
  await writeFile(at('hard-a'), 'one inode, two names\n')
  await link(at('hard-a'), at('nested/hard-b'))
  const fifo = await run('mkfifo', [at('fifo')])
  expect(fifo.code, fifo.stderr).toBe(0)
  const sparse = await open(at('sparse.img'), 'w')
  await sparse.truncate(100 * MiB)
  await sparse.write(Buffer.from('x'), 0, 1, 50 * MiB)
  await sparse.close()
  await writeFile(at('setuid-999'), '#!/bin/sh\necho hi\n')
  await chown(at('setuid-999'), 999, 999)
  await chmod(at('setuid-999'), 0o4755)
  await writeFile(at('xattr.txt'), 'has a user xattr\n')
  writeXattrs(at('xattr.txt'), new Map([['user.e2e', Buffer.from('value of a user xattr')]]))
  await copyFile('/bin/true', at('cap-true'))
  await chmod(at('cap-true'), 0o755)
  if (await which('setcap')) {
    const setcap = await run('setcap', ['cap_net_raw+ep', at('cap-true')])
    expect(setcap.code, setcap.stderr).toBe(0)
  } else {
    writeXattrs(at('cap-true'), new Map([['security.capability', RAW_CAPABILITY]]))
  }

  await writeFile(at('acl.txt'), 'has an ACL\n')
  const setfacl = await which('setfacl')
  if (setfacl) {
    const result = await run('setfacl', ['-m', 'u:1234:r', at('acl.txt')])
    expect(result.code, result.stderr).toBe(0)
  } else {
    writeXattrs(at('acl.txt'), new Map([['system.posix_acl_access', rawAcl()]]))
  }

  await writeFile(Buffer.concat([Buffer.from(`${root}/`), NON_UTF8]), 'a name that is not UTF-8\n')
  await chown(root, 70, 70)
  await chmod(root, 0o750)
  // old, distinct times (set last: creating an entry touches its directory)
  const names = Object.keys(await snapshot(root)).filter((name) => name !== '.')
  for (const [i, name] of names.entries()) {
    const full = name.includes(String.raw`\x`) ? Buffer.concat([Buffer.from(`${root}/`), NON_UTF8]) : at(name)
    await lutimes(full, 1_000_000_000 + i * 86_400, 1_000_000_000 + i * 86_400)
  }

  await lutimes(root, 999_000_000, 999_000_000)
  return {setfacl}
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeout = 30_000,
  every = 100,
): Promise<void> {
  const deadline = Date.now() + timeout
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => {
      setTimeout(resolve, every)
    })
  }
}

export async function isRunning(container: string): Promise<boolean> {
  return (await dockerCli('classic', ['inspect', '--format', '{{.State.Running}}', container])).trim() === 'true'
}

/** Whether a process has `text` in its command line. */
export async function processesNaming(text: string): Promise<boolean> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(text)) return true
  }

  return false
}

/** The JSON-lines events a --json run wrote on stderr. */
export function jsonEvents(stderr: string): Array<{message?: string; type: string}> {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as {message?: string; type: string})
}

export function warningsOf(stderr: string): string[] {
  return jsonEvents(stderr)
    .filter((event) => event.type === 'warning')
    .map((event) => event.message ?? '')
}

/** The CLI as a child process, to signal it: its output so far, and its end. */
export function startCli(args: string[], options: {dockerHost: string; home: string}) {
  const env: NodeJS.ProcessEnv = {...process.env, DOCKER_HOST: options.dockerHost, HOME: options.home, NO_COLOR: '1'}
  delete env.SSH_AUTH_SOCK
  delete env.DEBUG
  const child: ChildProcess = spawn(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), ...args], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const state = {child, output: ''}
  const collect = (chunk: Buffer) => {
    state.output += chunk.toString()
  }

  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)
  child.stdin!.on('error', () => {})
  const closed = once(child, 'close') as Promise<[null | number, NodeJS.Signals | null]>
  return {...state, closed, output: () => state.output}
}

/**
 * A container on the classic engine that runs `script` (sh) with `volume` at /data, without network. A script
 * that traps TERM (`trap 'exit 0' TERM`) stops at once when the container is stopped.
 */
export async function runWithVolume(image: string, container: string, volume: string, script: string): Promise<void> {
  await dockerCli('classic', [
    'run',
    '-d',
    '--name',
    container,
    '--network',
    'none',
    '-v',
    `${volume}:/data`,
    image,
    'sh',
    '-c',
    script,
  ])
}
