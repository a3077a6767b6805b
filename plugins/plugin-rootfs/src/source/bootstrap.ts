import {ExitCode, TransshipError, UsageError} from '@transship/kit'
import {hasCommand} from '@transship/kit/archive'
import {execFile, spawn} from 'node:child_process'
import {access, constants, open, readdir, readFile, realpath, rm} from 'node:fs/promises'
import path from 'node:path'

/** How a rootfs is bootstrapped from a Debian mirror. */
export interface BootstrapSpec {
  /** CPU architecture (Debian name, e.g. `amd64`); the host's when absent */
  arch?: string
  components?: string[]
  exclude?: string[]
  include?: string[]
  /** default http://deb.debian.org/debian */
  mirror?: string
  suite: string
  tool: 'debootstrap' | 'mmdebstrap'
  variant?: string
}

export interface BootstrapLog {
  debug(message: string): void
  info(message: string): void
}

export interface BootstrapOptions {
  /** debootstrap only: `--cache-dir`, where downloaded .debs are kept and reused */
  cacheDir?: string
  /** passed as SOURCE_DATE_EPOCH (whole seconds) */
  epoch?: number
  log: BootstrapLog
  signal?: AbortSignal
}

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian'

/** output lines kept for the error message and details */
const TAIL_LINES = 40
/** lines of the tool output and of debootstrap.log quoted in the error message */
const MESSAGE_LINES = 12
/** a line longer than this is cut (a tool printing without newlines must not grow memory without bound) */
const MAX_LINE = 4000
/** after SIGTERM, how long the process group gets before SIGKILL */
const KILL_GRACE_MS = 10_000
/** debootstrap and mmdebstrap live in /usr/sbin, which a non-root PATH usually lacks */
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin']
/** only the head of a Release file is read: `Date:` comes before the long checksum lists */
const RELEASE_HEAD_BYTES = 16_384

const PACKAGE_NAME = /^[\w+.:=~-]+$/
const WORD = /^\w[\w.+~-]*$/

/**
 * Checks the spec and the host before anything is done: spec problems, not root, tool missing (in that order).
 * Returns the error to report, or undefined when a bootstrap can run.
 */
export async function bootstrapProblem(spec: BootstrapSpec): Promise<TransshipError | undefined> {
  const invalid = specProblem(spec)
  if (invalid) return invalid
  if (process.geteuid?.() !== 0) {
    return new UsageError(
      `${spec.tool} needs root: it mounts /proc and /sys inside the new root file system and runs its package ` +
        'scripts in a chroot',
      {
        code: 'ROOTFS_NEEDS_ROOT',
        details: {tool: spec.tool},
        suggestions: [
          'run transship as root (e.g. with sudo)',
          'mmdebstrap can build without root in its unshare mode when /etc/subuid and /etc/subgid have an entry ' +
            'for your user: run it yourself (mmdebstrap --mode=unshare --format=tar SUITE rootfs.tar) and build ' +
            'from that tarball',
          'or build the root file system elsewhere and use it as a tarball or directory source',
        ],
      },
    )
  }

  if (!(await toolInstalled(spec.tool))) return toolMissing(spec.tool)
  return undefined
}

/**
 * The command line for `spec` (tool name first), without the umask wrapper. Throws a UsageError
 * (ROOTFS_SPEC_INVALID) when the spec cannot be expressed for the tool.
 */
export function bootstrapCommand(spec: BootstrapSpec, target: string, options: {cacheDir?: string} = {}): string[] {
  const invalid = specProblem(spec)
  if (invalid) throw invalid
  const args: string[] = []
  const add = (flag: string, value: string | undefined) => {
    if (value !== undefined) args.push(`${flag}=${value}`)
  }

  if (spec.tool === 'debootstrap') {
    add('--variant', spec.variant)
    add('--components', list(spec.components))
    add('--include', list(spec.include))
    add('--exclude', list(spec.exclude))
    add('--arch', spec.arch)
    add('--cache-dir', options.cacheDir === undefined ? undefined : path.resolve(options.cacheDir))
  } else {
    // apt's lists stay (transship leaves them out of the layer): their Release date is the epoch
    args.push('--mode=root', '--format=directory', '--skip=cleanup/apt/lists')
    add('--variant', spec.variant)
    add('--components', list(spec.components))
    add('--include', list(spec.include))
    add('--architectures', spec.arch)
  }

  return [spec.tool, ...args, spec.suite, path.resolve(target), spec.mirror ?? DEFAULT_MIRROR]
}

/**
 * Runs debootstrap or mmdebstrap into `target` (which should not exist or be empty). The caller checks
 * bootstrapProblem first (root is not checked here: the tool refuses by itself). Output lines go to
 * `log.debug`; a failure throws ROOTFS_BOOTSTRAP_FAILED with the last lines of the output (and of
 * debootstrap.log). On abort the whole process group is terminated, and the promise rejects with the signal's
 * reason once it has exited; either way the target may hold mounts and partial files: clean up with removeRootfs.
 */
function list(items: string[] | undefined): string | undefined {
  return items && items.length > 0 ? items.join(',') : undefined
}

export async function bootstrap(
  spec: BootstrapSpec,
  target: string,
  options: BootstrapOptions,
): Promise<{command: string[]; version: string}> {
  const command = bootstrapCommand(spec, target, spec.tool === 'debootstrap' ? {cacheDir: options.cacheDir} : {})
  if (spec.tool === 'mmdebstrap' && options.cacheDir !== undefined) {
    options.log.debug('mmdebstrap has no --cache-dir: the package cache is not used')
  }

  if (options.epoch !== undefined && !(Number.isSafeInteger(options.epoch) && options.epoch >= 0)) {
    throw new UsageError(`the epoch must be a whole number of seconds, not ${options.epoch}`, {
      code: 'ROOTFS_SPEC_INVALID',
    })
  }

  options.signal?.throwIfAborted()
  if (!(await toolInstalled(spec.tool))) throw toolMissing(spec.tool)

  const env = toolEnv(options.epoch)
  const version = await toolVersion(spec.tool, env)
  options.log.info(`${spec.tool} ${version}: ${spec.suite} into ${command.at(-2)}`)
  options.log.debug(command.join(' '))
  const result = await run(command, env, options)
  if (result.code !== 0) {
    const logTail =
      spec.tool === 'debootstrap' ? await lastLines(path.join(command.at(-2)!, 'debootstrap', 'debootstrap.log')) : []
    throw failure(spec, result, logTail)
  }

  return {command, version}
}

/**
 * The `Date:` of the newest apt Release/InRelease file the bootstrap left in `<rootfs>/var/lib/apt/lists`, in
 * whole seconds since the epoch; undefined when there is none.
 */
export async function releaseEpoch(rootfs: string): Promise<number | undefined> {
  const lists = path.join(rootfs, 'var', 'lib', 'apt', 'lists')
  let names: string[]
  try {
    names = await readdir(lists)
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return undefined
    throw error
  }

  let newest: number | undefined
  for (const name of names.sort()) {
    if (!name.endsWith('_InRelease') && !name.endsWith('_Release')) continue
    const date = parseReleaseDate(await readHead(path.join(lists, name), RELEASE_HEAD_BYTES))
    if (date !== undefined && (newest === undefined || date > newest)) newest = date
  }

  return newest
}

/** The `Date:` field of a Release or InRelease file (RFC 2822), whole seconds; undefined when absent or bad. */
export function parseReleaseDate(text: string): number | undefined {
  const match = /^Date:[ \t]*(\S.*?)[ \t]*\r?$/m.exec(text)
  if (!match) return undefined
  const ms = Date.parse(match[1]!)
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000)
}

/**
 * Deletes a bootstrapped rootfs. debootstrap mounts proc, sys and dev/pts inside the target, and a recursive
 * delete through a mount would delete the host's files: every mount at or under the target is unmounted first
 * (deepest first, lazily when busy), and nothing is deleted (ROOTFS_STILL_MOUNTED) while any remains.
 */
export async function removeRootfs(target: string): Promise<void> {
  let root: string
  try {
    root = await realpath(target)
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return
    throw error
  }

  if (root === '/') {
    throw new TransshipError('ROOTFS_REMOVE_REFUSED', ExitCode.Failed, `refusing to remove ${target}: it is /`)
  }

  for (let round = 0; round < 3; round++) {
    const mounts = mountPointsUnder(await readFile('/proc/self/mountinfo', 'utf8'), root)
    if (mounts.length === 0) break
    for (const mountPoint of mounts) {
      // a point can appear more than once (stacked mounts); an earlier umount may already have removed it
      if (!(await umount(mountPoint, false))) await umount(mountPoint, true)
    }
  }

  const left = mountPointsUnder(await readFile('/proc/self/mountinfo', 'utf8'), root)
  if (left.length > 0) {
    throw new TransshipError(
      'ROOTFS_STILL_MOUNTED',
      ExitCode.Failed,
      `${target} was not removed: these mounts inside it could not be unmounted: ${left.join(', ')}`,
      {details: {mounts: left, target}, suggestions: [`unmount them (umount -R ${root}) and remove ${root} by hand`]},
    )
  }

  await rm(root, {force: true, recursive: true})
}

export interface MountInfo {
  /** field 5, with the octal escapes (`\040` for a space, ...) decoded */
  mountPoint: string
  /** field 9 */
  fsType: string
}

/** The mounts of a /proc/<pid>/mountinfo text, in its order (the order they were mounted). */
export function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = []
  for (const line of text.split('\n')) {
    const fields = line.split(' ')
    if (fields.length < 10) continue
    // optional fields (shared:N, master:N) end with a lone '-', then fstype, source, super options
    const separator = fields.indexOf('-', 6)
    mounts.push({
      fsType: separator === -1 ? '' : unescapeMountField(fields[separator + 1] ?? ''),
      mountPoint: unescapeMountField(fields[4]!),
    })
  }

  return mounts
}

/**
 * The mount points at or under `root` (an absolute, resolved path), in the order to unmount them: deepest first,
 * and of mounts at the same point the newest first. A point is listed once for each mount stacked on it.
 */
export function mountPointsUnder(mountinfo: string, root: string): string[] {
  const prefix = root.endsWith('/') ? root : `${root}/`
  const under = parseMountInfo(mountinfo)
    .map((mount, index) => ({index, mountPoint: mount.mountPoint}))
    .filter(({mountPoint}) => mountPoint === root || mountPoint.startsWith(prefix))
  under.sort((a, b) => depth(b.mountPoint) - depth(a.mountPoint) || b.index - a.index)
  return under.map(({mountPoint}) => mountPoint)
}

function depth(mountPoint: string): number {
  return mountPoint.split('/').filter(Boolean).length
}

/** Decodes the kernel's `\ooo` escapes (space, tab, newline, backslash), byte-wise so UTF-8 names survive. */
function unescapeMountField(field: string): string {
  if (!field.includes('\\')) return field
  const parts: Buffer[] = []
  let last = 0
  for (const match of field.matchAll(/\\([0-7]{3})/g)) {
    parts.push(Buffer.from(field.slice(last, match.index), 'utf8'), Buffer.from([Number.parseInt(match[1]!, 8)]))
    last = match.index + match[0].length
  }

  parts.push(Buffer.from(field.slice(last), 'utf8'))
  return Buffer.concat(parts).toString('utf8')
}

function specProblem(spec: BootstrapSpec): undefined | UsageError {
  const problems: string[] = []
  if (spec.tool !== 'debootstrap' && spec.tool !== 'mmdebstrap') {
    problems.push(`the tool must be debootstrap or mmdebstrap, not ${String(spec.tool)}`)
  }

  // everything ends up on a command line: nothing may look like an option or split into two arguments
  if (!WORD.test(spec.suite)) problems.push(`invalid suite ${JSON.stringify(spec.suite)}`)
  if (spec.variant !== undefined && !WORD.test(spec.variant)) {
    problems.push(`invalid variant ${JSON.stringify(spec.variant)}`)
  }

  if (spec.arch !== undefined && !WORD.test(spec.arch)) problems.push(`invalid arch ${JSON.stringify(spec.arch)}`)
  if (spec.mirror !== undefined && (spec.mirror.startsWith('-') || /[\0\n\r]/.test(spec.mirror) || !spec.mirror)) {
    problems.push(`invalid mirror ${JSON.stringify(spec.mirror)}`)
  }

  problems.push(...listProblems(spec))

  const suggestions: string[] = []
  if (spec.tool === 'mmdebstrap' && spec.exclude && spec.exclude.length > 0) {
    problems.push('mmdebstrap has no --exclude')
    suggestions.push(
      'use debootstrap, or choose a smaller mmdebstrap variant (e.g. essential) and --include what you need',
    )
  }

  if (problems.length === 0) return undefined
  return new UsageError(`invalid ${String(spec.tool)} settings: ${problems.join('; ')}`, {
    code: 'ROOTFS_SPEC_INVALID',
    details: {problems},
    suggestions,
  })
}

function toolMissing(tool: string): UsageError {
  return new UsageError(`${tool} is not installed`, {
    code: 'ROOTFS_TOOL_MISSING',
    details: {tool},
    suggestions: [`install it: apt-get install ${tool}`],
  })
}

function listProblems(spec: BootstrapSpec): string[] {
  const problems: string[] = []
  for (const key of ['components', 'include', 'exclude'] as const) {
    for (const item of spec[key] ?? []) {
      if (!PACKAGE_NAME.test(item) || item.startsWith('-')) problems.push(`invalid ${key} item ${JSON.stringify(item)}`)
    }
  }

  return problems
}

async function toolInstalled(tool: string): Promise<boolean> {
  if (await hasCommand(tool)) return true
  for (const directory of SBIN_DIRS) {
    try {
      await access(path.join(directory, tool), constants.X_OK)
      return true
    } catch {
      // not here
    }
  }

  return false
}

function toolEnv(epoch?: number): NodeJS.ProcessEnv {
  const dirs = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(path.delimiter).filter(Boolean)
  for (const directory of SBIN_DIRS) if (!dirs.includes(directory)) dirs.push(directory)
  const env: NodeJS.ProcessEnv = {...process.env, LC_ALL: 'C', PATH: dirs.join(path.delimiter), TZ: 'UTC'}
  if (epoch !== undefined) env.SOURCE_DATE_EPOCH = String(epoch)
  return env
}

async function toolVersion(tool: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', 'exec "$@"', 'sh', tool, '--version'], {env, timeout: 30_000}, (error, stdout) => {
      // `debootstrap 1.0.128+nmu2+deb12u2`, `mmdebstrap 1.3.5`
      const first = error ? '' : (stdout.split('\n')[0] ?? '').trim()
      resolve(first.split(/\s+/).at(-1) || 'unknown')
    })
  })
}

interface RunResult {
  code: null | number
  signal: NodeJS.Signals | null
  tail: string[]
}

/**
 * Runs `command` in its own process group with umask 022 (set in a /bin/sh wrapper: the parent's umask is
 * process-wide and must not change under other work), streaming its lines to log.debug.
 */
async function run(command: string[], env: NodeJS.ProcessEnv, options: BootstrapOptions): Promise<RunResult> {
  const {log, signal} = options
  signal?.throwIfAborted()
  const child = spawn('/bin/sh', ['-c', 'umask 022; exec "$@"', 'sh', ...command], {
    detached: true,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const tail: string[] = []
  const onLine = (line: string) => {
    log.debug(line)
    tail.push(line)
    if (tail.length > TAIL_LINES) tail.shift()
  }

  splitLines(child.stdout, onLine)
  splitLines(child.stderr, onLine)

  const killGroup = (sig: NodeJS.Signals) => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(-child.pid, sig)
    } catch {
      // already gone
    }
  }

  // detached: Ctrl-C does not reach the group, so it must not outlive us
  const onExit = () => killGroup('SIGKILL')
  let killTimer: NodeJS.Timeout | undefined
  const onAbort = () => {
    killGroup('SIGTERM')
    killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS)
    killTimer.unref()
  }

  process.once('exit', onExit)
  signal?.addEventListener('abort', onAbort, {once: true})
  try {
    return await new Promise<RunResult>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code, exitSignal) => {
        if (signal?.aborted) reject(signal.reason)
        else resolve({code, signal: exitSignal, tail})
      })
    })
  } finally {
    clearTimeout(killTimer)
    process.removeListener('exit', onExit)
    signal?.removeEventListener('abort', onAbort)
  }
}

function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let pending = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    const parts = (pending + chunk).split(/\r\n|\n|\r/)
    pending = parts.pop() ?? ''
    if (pending.length > MAX_LINE) {
      parts.push(pending.slice(0, MAX_LINE))
      pending = ''
    }

    for (const line of parts) onLine(line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line)
  })
  stream.on('end', () => {
    if (pending) onLine(pending)
  })
}

function failure(spec: BootstrapSpec, result: RunResult, logTail: string[]): TransshipError {
  const how = result.code === null ? `was killed by ${result.signal}` : `exited with code ${result.code}`
  const output = result.tail.filter((line) => line.trim() !== '').slice(-MESSAGE_LINES)
  let message = `${spec.tool} ${spec.suite} failed: it ${how}`
  if (output.length > 0) message += `\n${output.map((line) => `  ${line}`).join('\n')}`
  if (logTail.length > 0) {
    message += `\nlast lines of debootstrap.log:\n${logTail
      .slice(-MESSAGE_LINES)
      .map((line) => `  ${line}`)
      .join('\n')}`
  }

  return new TransshipError('ROOTFS_BOOTSTRAP_FAILED', ExitCode.Failed, message, {
    details: {
      code: result.code,
      log: logTail,
      output: result.tail,
      signal: result.signal,
      suite: spec.suite,
      tool: spec.tool,
    },
    suggestions: [
      `check that the mirror (${spec.mirror ?? DEFAULT_MIRROR}) is reachable and has the suite ${spec.suite}`,
      'run with --verbose to see all of its output',
    ],
  })
}

/** The last non-blank lines of a text file; [] when it cannot be read. */
async function lastLines(file: string): Promise<string[]> {
  try {
    const text = await readTail(file, 16_384)
    return text
      .split('\n')
      .slice(1) // the first may be cut
      .filter((line) => line.trim() !== '')
      .slice(-MESSAGE_LINES)
  } catch {
    return []
  }
}

async function readHead(file: string, bytes: number): Promise<string> {
  const handle = await open(file, 'r')
  try {
    const buffer = Buffer.alloc(bytes)
    const {bytesRead} = await handle.read(buffer, 0, bytes, 0)
    return buffer.toString('utf8', 0, bytesRead)
  } finally {
    await handle.close()
  }
}

async function readTail(file: string, bytes: number): Promise<string> {
  const handle = await open(file, 'r')
  try {
    const {size} = await handle.stat()
    const start = Math.max(0, size - bytes)
    const buffer = Buffer.alloc(size - start)
    const {bytesRead} = await handle.read(buffer, 0, buffer.length, start)
    // keep the first line when the whole file was read
    return (start === 0 ? '\n' : '') + buffer.toString('utf8', 0, bytesRead)
  } finally {
    await handle.close()
  }
}

async function umount(mountPoint: string, lazy: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('umount', lazy ? ['-l', mountPoint] : [mountPoint], {env: toolEnv()}, (error) => resolve(!error))
  })
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code
}
