// What the benchmarks share: the test bed, running commands (timed, with their peak RSS and the link's byte
// counters), the order of side-by-side pairs, medians of per-pair ratios, and the cells of their markdown tables.
import {spawn} from 'node:child_process'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import type {Testbed} from '../bed/types.js'

/** test/bench: the scripts, workload.sh, link.sh and results/ */
export const HERE = path.dirname(fileURLToPath(import.meta.url))
export const REPO = path.resolve(HERE, '../..')
export const DOCKER = '/usr/bin/docker'
export const TIME = '/usr/bin/time'
export const MB = 1_000_000

// ---------------------------------------------------------------------------------------------
// the bed and the environment of every command
// ---------------------------------------------------------------------------------------------

export async function loadTestbed(): Promise<Testbed> {
  const text = await readFile(path.join(REPO, 'test/.state/testbed.json'), 'utf8').catch(() => {
    throw new Error('test/.state/testbed.json is missing: bring the test bed up first (npm run testbed:up)')
  })
  return JSON.parse(text) as Testbed
}

/**
 * The environment of every command: the bed's docker config, Debian's docker CLI first on PATH, nothing of the
 * user's docker context, SSH agent or cache; then `set` (e.g. DOCKER_HOST).
 */
export function benchEnv(bed: Testbed, set: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_CONFIG: path.join(bed.stateDir, 'docker-config'),
    PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}`,
  }
  for (const name of [
    'DOCKER_HOST',
    'DOCKER_CONTEXT',
    'DOCKER_TLS_VERIFY',
    'DOCKER_CERT_PATH',
    'SSH_AUTH_SOCK',
    'XDG_CACHE_HOME',
  ]) {
    delete env[name]
  }

  return {...env, ...set}
}

/** The options every benchmark takes (parseArgs): --cli, --help, --keep, --pairs. */
export const COMMON_OPTIONS = {
  cli: {default: 'bin/run.js', type: 'string'},
  help: {default: false, short: 'h', type: 'boolean'},
  keep: {default: false, type: 'boolean'},
  pairs: {default: '3', type: 'string'},
} as const

/** `--pairs N` as a positive integer */
export function parsePairs(text: string): number {
  const pairs = Number.parseInt(text, 10)
  if (!Number.isInteger(pairs) || pairs < 1) throw new Error(`--pairs ${text}: not a positive integer`)
  return pairs
}

// ---------------------------------------------------------------------------------------------
// processes
// ---------------------------------------------------------------------------------------------

export interface Exec {
  code: number
  ms: number
  seconds: number
  signal?: string
  stderr: string
  stdout: string
}

export interface ExecOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** the command's output goes to the terminal (setup scripts) */
  inherit?: boolean
  timeoutMs?: number
}

/** A run under /usr/bin/time, with the link's counters read around it. */
export interface Measured {
  exec: Exec
  /** kB: the largest process of the command's tree */
  peakRssKb?: number
  wireRx?: number
  wireTx?: number
}

export interface Runner {
  /** runs argv, collects its output, measures its wall time; never rejects for a non-zero exit */
  exec(argv: string[], options?: ExecOptions): Promise<Exec>
  /** runs argv under /usr/bin/time -f %M, with the counters of the interface `wire` read around it */
  measured(argv: string[], options?: ExecOptions & {wire?: string}): Promise<Measured>
  /** exec, rejecting with the command's first words of explanation when it fails; its stdout */
  mustExec(argv: string[], options?: ExecOptions): Promise<string>
  /** the first line a command prints (stdout, else stderr) when it succeeds; '' when it fails or is missing */
  quiet(argv: string[]): Promise<string>
}

const MAX_STDOUT = 16_000_000
const MAX_STDERR = 1_000_000

/** A runner whose commands get `defaults` (the environment, a timeout) unless told otherwise. */
export function runner(defaults: {env: NodeJS.ProcessEnv; timeoutMs: number}): Runner {
  const exec = (argv: string[], options: ExecOptions = {}): Promise<Exec> =>
    new Promise((resolve, reject) => {
      const start = performance.now()
      const [command, ...rest] = argv
      if (!command) throw new Error('exec: empty argv')
      const child = spawn(command, rest, {
        cwd: options.cwd ?? REPO,
        env: options.env ?? defaults.env,
        stdio: ['ignore', options.inherit ? 'inherit' : 'pipe', options.inherit ? 'inherit' : 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        if (stdout.length < MAX_STDOUT) stdout += d
      })
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < MAX_STDERR) stderr += d
      })
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? defaults.timeoutMs)
      child.on('error', (error: Error) => {
        clearTimeout(timer)
        reject(error)
      })
      child.on('close', (code: null | number, signal: NodeJS.Signals | null) => {
        clearTimeout(timer)
        const ms = performance.now() - start
        resolve({code: code ?? 128, ms, seconds: ms / 1000, signal: signal ?? undefined, stderr, stdout})
      })
    })

  const mustExec = async (argv: string[], options: ExecOptions = {}): Promise<string> => {
    const r = await exec(argv, options)
    if (r.code !== 0) {
      throw new Error(`${argv.join(' ')} failed (exit ${r.code}): ${firstLine(r.stderr) || firstLine(r.stdout)}`)
    }

    return r.stdout
  }

  const quiet = async (argv: string[]): Promise<string> => {
    const r = await exec(argv).catch(() => null)
    return r?.code === 0 ? firstLine(r.stdout) || firstLine(r.stderr) : ''
  }

  let timeFiles = 0
  const measured = async (argv: string[], options: ExecOptions & {wire?: string} = {}): Promise<Measured> => {
    const timeFile = path.join(os.tmpdir(), `transship-bench-${process.pid}-${++timeFiles}.time`)
    const before = await interfaceCounters(options.wire)
    const result = await exec([TIME, '-f', '%M', '-o', timeFile, ...argv], options)
    const after = await interfaceCounters(options.wire)
    // on a failure time writes "Command exited with non-zero status N" first: the figure is the last line
    const text = await readFile(timeFile, 'utf8').catch(() => '')
    await rm(timeFile, {force: true})
    const rss = Number.parseInt(lastLine(text), 10)
    return {
      exec: result,
      peakRssKb: Number.isNaN(rss) ? undefined : rss,
      wireRx: before && after ? after[1] - before[1] : undefined,
      wireTx: before && after ? after[0] - before[0] : undefined,
    }
  }

  return {exec, measured, mustExec, quiet}
}

/** [tx, rx] bytes of a network interface, or undefined without one */
export async function interfaceCounters(ifname: string | undefined): Promise<[number, number] | undefined> {
  if (!ifname) return
  const read = async (what: string) =>
    Number((await readFile(`/sys/class/net/${ifname}/statistics/${what}`, 'utf8')).trim())
  return [await read('tx_bytes'), await read('rx_bytes')]
}

/** a word for bash, single-quoted */
export const sh = (s: string) => `'${s.replaceAll("'", String.raw`'\''`)}'`

export const firstLine = (s: string) =>
  s
    .split('\n')
    .map((l) => l.trim())
    .find(Boolean) ?? ''

export const lastLine = (s: string) => s.trim().split('\n').at(-1)?.trim() ?? ''

/** What the runs are measured on, for the report's header. */
export async function machine(run: Runner, tools: Record<string, string[]> = {}): Promise<Record<string, string>> {
  const info: Record<string, string> = {
    commit: await run.quiet(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD']),
    cpus: String(os.cpus().length),
    dirty: (await run.exec(['git', '-C', REPO, 'status', '--porcelain']).catch(() => null))?.stdout.trim()
      ? 'yes'
      : 'no',
    kernel: os.release(),
    node: process.version,
  }
  for (const [name, argv] of Object.entries(tools)) info[name] = await run.quiet(argv)
  return info
}

/** `abc1234`, or `abc1234 (+ uncommitted changes)` */
export const commitOf = (info: Record<string, string>) =>
  `${info.commit}${info.dirty === 'yes' ? ' (+ uncommitted changes)' : ''}`

/** Writes a results file (after every pair or scenario: an interrupted run keeps what it measured). */
export async function saveResults(file: string, results: object): Promise<void> {
  await mkdir(path.dirname(file), {recursive: true})
  await writeFile(file, JSON.stringify(results, null, 2) + '\n')
}

// ---------------------------------------------------------------------------------------------
// pairs and statistics
// ---------------------------------------------------------------------------------------------

/** One run of a pipeline in one pair. */
export interface PairedRun {
  error?: string
  ok: boolean
  pair: number
  seconds: number
}

/** The order of the pipelines in pair `pair`: as given, reversed every other pair, so that drift cancels out. */
export function alternating<T>(pair: number, items: readonly T[]): readonly T[] {
  return pair % 2 === 1 ? items : [...items].reverse()
}

export function median(xs: readonly (number | undefined)[]): number | undefined {
  const s = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length === 0 ? undefined : s.length % 2 ? s[mid] : (s[mid - 1]! + s[mid]!) / 2
}

/** The median over the pairs where both ran (and succeeded) of fn(run, the baseline's run of that pair). */
export function pairedMedian<R extends PairedRun>(
  runs: readonly R[],
  baseline: readonly R[],
  fn: (run: R, base: R) => number | undefined,
): number | undefined {
  return median(
    runs
      .filter((r) => r.ok)
      .flatMap((r) => {
        const base = baseline.find((b) => b.ok && b.pair === r.pair)
        return base ? [fn(r, base)] : []
      }),
  )
}

// ---------------------------------------------------------------------------------------------
// table cells
// ---------------------------------------------------------------------------------------------

/** `1.23` plus a unit, or — */
export const f2 = (n: number | undefined, unit = '') => (n === undefined ? '—' : `${n.toFixed(2)}${unit}`)

/** `12.3 MB` (decimal), or `missing` */
export function fmtBytes(n: number | undefined, missing = 'n/a'): string {
  return n === undefined ? missing : `${(n / MB).toFixed(1)} MB`
}

/** peak RSS, in MiB as the targets are */
export const fmtRss = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`

/** `n=3` or `n=2, 1 failed: why` */
export function countCell(runs: readonly PairedRun[]): string {
  const failed = runs.filter((r) => !r.ok)
  return `n=${runs.length - failed.length}${failed.length > 0 ? `, ${failed.length} failed: ${failed[0]?.error}` : ''}`
}

/** a markdown table row, its cells' pipes escaped */
export const tableRow = (cells: string[]) => `| ${cells.map((c) => c.replaceAll('|', String.raw`\|`)).join(' | ')} |`

/** `1.02x — met` */
export const verdict = (value: string, met: boolean) => `${value} — ${met ? 'met' : 'NOT met'}`
