// Access to the real test bed (Docker engines, sshd, test images) from end-to-end tests.
// The bed is brought up by test/bed/global-setup.ts; see test/bed/up.sh for what runs.
import {spawn} from 'node:child_process'
import {chmod, copyFile, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {describe, inject, it} from 'vitest'

import type {EngineName, Testbed} from '../bed/types.js'

export type {EngineName, Testbed, TestbedEngine, TestbedSsh, TestbedUsers} from '../bed/types.js'

/** the test bed's description, or undefined when it is not available (see testbedSkipReason()) */
export function testbed(): Testbed | undefined {
  return inject('testbed') ?? undefined
}

/** why the test bed is not available, or undefined when it is */
export function testbedSkipReason(): string | undefined {
  if (testbed()) return undefined
  return inject('testbedSkipReason') ?? 'the test bed was not set up (run the tests with the e2e project)'
}

/** the test bed, or an error saying why it is not available */
export function requireTestbed(): Testbed {
  const bed = testbed()
  if (!bed) throw new Error(testbedSkipReason())
  return bed
}

/**
 * describe() for tests that need the test bed: skipped (without running fn) when the bed is not
 * available. fn receives the bed.
 */
export function describeE2E(name: string, fn: (bed: Testbed) => void): void {
  const bed = testbed()
  if (bed) {
    describe(name, () => fn(bed))
    return
  }

  describe.skip(name, () => {
    it(testbedSkipReason() ?? 'the test bed is not available', () => {})
  })
}

export interface RunResult {
  code: null | number
  stderr: string
  stdout: string
}

/** runs a command, collecting its output as text; never rejects on a non-zero exit */
export async function run(
  command: string,
  args: string[],
  options: {env?: NodeJS.ProcessEnv; input?: Buffer | string} = {},
): Promise<RunResult> {
  const result = await runBytes(command, args, options)
  return {code: result.code, stderr: result.stderr, stdout: result.stdout.toString('utf8')}
}

/** run(), with stdout as bytes: for output that is not text */
export function runBytes(
  command: string,
  args: string[],
  options: {env?: NodeJS.ProcessEnv; input?: Buffer | string} = {},
): Promise<{code: null | number; stderr: string; stdout: Buffer}> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
    child.on('error', reject)
    child.on('close', (code) =>
      resolve({code, stderr: Buffer.concat(err).toString('utf8'), stdout: Buffer.concat(out)}),
    )
    child.stdin.on('error', () => {})
    child.stdin.end(options.input)
  })
}

/**
 * Runs the Debian docker CLI against one of the bed's engines and returns its stdout; rejects
 * with its stderr on failure. For preparing and checking state in tests, not for code under test.
 * The output is decoded as UTF-8: for bytes that may be anything (random data), use dockerCliBytes.
 */
export async function dockerCli(
  engine: EngineName,
  args: string[],
  options: {input?: Buffer | string} = {},
): Promise<string> {
  return (await dockerCliBytes(engine, args, options)).toString('utf8')
}

/** dockerCli, with stdout as the bytes the command wrote. */
export async function dockerCliBytes(
  engine: EngineName,
  args: string[],
  options: {input?: Buffer | string} = {},
): Promise<Buffer> {
  const bed = requireTestbed()
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_BUILDKIT: '0', // 20.10 has no buildx here; the classic builder works on all three
    DOCKER_CONFIG: path.join(bed.stateDir, 'docker-config'),
  }
  delete env.DOCKER_HOST
  delete env.DOCKER_CONTEXT
  const result = await runBytes(bed.docker, ['-H', bed.engines[engine].host, ...args], {env, input: options.input})
  if (result.code !== 0) {
    throw new Error(`docker ${args.join(' ')} (${engine}) failed with exit ${result.code}: ${result.stderr.trim()}`)
  }

  return result.stdout
}

export interface TempHome {
  /** call when done: removes the directory */
  cleanup(): Promise<void>
  /** the temporary HOME */
  home: string
  /** HOME/.ssh */
  sshDir: string
}

/**
 * A temporary HOME with .ssh/known_hosts holding the bed's sshd host key ('wrong': a different
 * key for the same host; 'none': no known_hosts), optionally .ssh/config and a copy of the bed's
 * client key as .ssh/id_ed25519.
 */
export async function tempHome(
  options: {identity?: boolean; knownHosts?: 'none' | 'right' | 'wrong'; sshConfig?: string} = {},
): Promise<TempHome> {
  const bed = requireTestbed()
  const home = await mkdtemp(path.join(os.tmpdir(), 'transship-home-'))
  const sshDir = path.join(home, '.ssh')
  await mkdir(sshDir, {mode: 0o700})
  const knownHosts = options.knownHosts ?? 'right'
  if (knownHosts !== 'none') {
    const source = knownHosts === 'wrong' ? bed.ssh.wrongKnownHosts : bed.ssh.knownHosts
    await copyFile(source, path.join(sshDir, 'known_hosts'))
  }

  if (options.sshConfig !== undefined) {
    await writeFile(path.join(sshDir, 'config'), options.sshConfig, {mode: 0o600})
  }

  if (options.identity) {
    await copyFile(bed.ssh.identityFile, path.join(sshDir, 'id_ed25519'))
    await chmod(path.join(sshDir, 'id_ed25519'), 0o600)
    await copyFile(`${bed.ssh.identityFile}.pub`, path.join(sshDir, 'id_ed25519.pub'))
  }

  return {
    cleanup: () => rm(home, {force: true, recursive: true}),
    home,
    sshDir,
  }
}

/**
 * Arguments for the ssh CLI that log in to the bed's sshd (as the bed's user unless `user` says another), with the
 * bed's client key, strict host-key checking against `knownHosts` (default: the bed's), no user or system ssh
 * config, and run COMMAND.
 */
export function sshArgs(options: {knownHosts?: string; user?: string}, ...command: string[]): string[] {
  const bed = requireTestbed()
  const {knownHosts = bed.ssh.knownHosts, user = bed.ssh.user} = options
  return [
    '-F',
    'none',
    '-i',
    bed.ssh.identityFile,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-p',
    String(bed.ssh.port),
    `${user}@${bed.ssh.host}`,
    ...command,
  ]
}
