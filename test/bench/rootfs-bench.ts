// The rootfs benchmark: `transship rootfs build --debootstrap` measured side by side with debootstrap alone
// and with the classic recipe (debootstrap, then `tar | docker import`), alternating, on the test bed's
// classic engine. The target (BENCHMARKS.md): debootstrap's own time plus at most 15 %.
//
//   node --import tsx test/bench/rootfs-bench.ts [--pairs 3] [--keep] [--cli bin/run.js]
//
// Needs root, the test bed (test/bed/up.sh), a built CLI (npm run build) and the Debian mirror: nothing is
// cached, every run downloads from deb.debian.org, as transship does. Prints a markdown table and writes the
// raw results to test/bench/results/rootfs-latest.json. Never fails on timing: the exit status is non-zero
// only when the harness itself cannot run.
import {spawn} from 'node:child_process'
import {mkdir, mkdtemp, readFile, realpath, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

import type {Testbed} from '../bed/types.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const REPO = path.resolve(HERE, '../..')
const DOCKER = '/usr/bin/docker'
const TIME = '/usr/bin/time'
const SUITE = 'bookworm'
const MIRROR = 'http://deb.debian.org/debian'
const TARGET = 1.15

const {values: args} = parseArgs({
  options: {
    cli: {default: 'bin/run.js', type: 'string'},
    help: {default: false, short: 'h', type: 'boolean'},
    keep: {default: false, type: 'boolean'},
    pairs: {default: '3', type: 'string'},
  },
})
const USAGE = `usage: node --import tsx test/bench/rootfs-bench.ts [options]

  --pairs N     runs of each of the three, alternating (default 3; ~70 s of downloads and bootstraps each)
  --cli PATH    the transship entry point, run with node (default bin/run.js)
  --keep        leave the images (bench/rootfs-import:N, the last bench/rootfs:N) in the classic engine`
const PAIRS = Number.parseInt(args.pairs, 10)
if (!Number.isInteger(PAIRS) || PAIRS < 1) throw new Error(`--pairs ${args.pairs}: not a positive integer`)

type Exec = {code: number; seconds: number; stderr: string; stdout: string}

/** runs argv under /usr/bin/time -f %M (peak RSS of the largest process of its tree), measuring its wall time */
function exec(argv: string[], timeFile?: string): Promise<Exec> {
  const full = timeFile ? [TIME, '-f', '%M', '-o', timeFile, ...argv] : argv
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn(full[0]!, full.slice(1), {cwd: REPO, env: ENV, stdio: ['ignore', 'pipe', 'pipe']})
    const out: {stderr: string[]; stdout: string[]} = {stderr: [], stdout: []}
    child.stdout.setEncoding('utf8').on('data', (d: string) => out.stdout.push(d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => out.stderr.push(d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 900_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      const [stdout, stderr] = [out.stdout.join(''), out.stderr.join('').slice(-20_000)]
      resolve({code: code ?? 128, seconds: (performance.now() - start) / 1000, stderr, stdout})
    })
  })
}

const lastLine = (s: string) => s.trim().split('\n').at(-1)?.trim() ?? ''
const sh = (s: string) => `'${s.replaceAll("'", String.raw`'\''`)}'`

const bed = JSON.parse(
  await readFile(path.join(REPO, 'test/.state/testbed.json'), 'utf8').catch(() => {
    throw new Error('test/.state/testbed.json is missing: bring the test bed up first (npm run testbed:up)')
  }),
) as Testbed
const ENV: NodeJS.ProcessEnv = {
  ...process.env,
  DOCKER_CONFIG: path.join(bed.stateDir, 'docker-config'),
  DOCKER_HOST: bed.engines.classic.host,
  PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}`,
}
for (const name of ['DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) delete ENV[name]

const unescape = (p: string) =>
  p.replaceAll(/\\(\d{3})/g, (_, o: string) => String.fromCodePoint(Number.parseInt(o, 8)))
/** mount points at or under DIR, deepest first (/proc/self/mountinfo: field 5, octal escapes) */
async function mountsUnder(dir: string): Promise<string[]> {
  const lines = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')
  const points = lines.map((l) => unescape(l.split(' ')[4] ?? ''))
  return points.filter((p) => p === dir || p.startsWith(dir + '/')).sort((a, b) => b.length - a.length)
}

/** removes DIR, never while something is mounted under it: umounts what debootstrap left, or gives up */
async function removeTree(dir: string): Promise<string | undefined> {
  for (const m of await mountsUnder(dir)) await exec(['umount', m])
  const left = await mountsUnder(dir)
  if (left.length > 0) return `left ${dir} in place: still mounted under it: ${left.join(', ')}`
  await rm(dir, {force: true, recursive: true})
}

/** removes the images of these repositories (the bench's own names) from the classic engine */
async function rmi(...repos: string[]): Promise<void> {
  const filters = repos.flatMap((r) => ['--filter', `reference=${r}`])
  const ls = await exec([DOCKER, 'image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', ...filters])
  const refs = ls.stdout.split('\n').filter((l) => l && !l.endsWith(':<none>'))
  if (refs.length === 0) return
  const r = await exec([DOCKER, 'rmi', ...refs])
  if (r.code !== 0) console.error(`docker rmi ${refs.join(' ')}: ${lastLine(r.stderr)}`)
}

type Id = 'debootstrap' | 'import' | 'transship'
interface Run {
  pair: number
  ok: boolean
  error?: string
  seconds: number
  peakRssKb?: number
  /** baseline B: the `tar | docker import` part alone */
  importSeconds?: number
  /** transship's --json */
  bootstrapSeconds?: number
  packSeconds?: number
  warning?: string
}

let WORK = ''

async function timed(pair: number, argv: string[]): Promise<[Run, Exec]> {
  const timeFile = path.join(WORK, 'time.txt')
  await rm(timeFile, {force: true})
  const r = await exec(argv, timeFile)
  const rss = Number.parseInt(await readFile(timeFile, 'utf8').catch(() => ''), 10)
  const run: Run = {ok: r.code === 0, pair, peakRssKb: Number.isNaN(rss) ? undefined : rss, seconds: r.seconds}
  if (!run.ok) run.error = `exit ${r.code}: ${lastLine(r.stderr) || lastLine(r.stdout)}`
  return [run, r]
}

async function runOne(id: Id, pair: number): Promise<Run> {
  if (id === 'transship') {
    await rmi('bench/rootfs') // a cold engine: the layer is the same bit for bit from pair to pair
    const ref = `bench/rootfs:${pair}`
    const argv = ['node', args.cli, 'rootfs', 'build', '--debootstrap', SUITE, '--variant', 'minbase', '--tag', ref]
    const [run, r] = await timed(pair, [...argv, '--json'])
    if (!run.ok) return run
    try {
      const [result] = JSON.parse(r.stdout) as {bootstrapSeconds?: number; packSeconds: number}[]
      Object.assign(run, {bootstrapSeconds: result?.bootstrapSeconds, packSeconds: result?.packSeconds})
    } catch {
      return {...run, error: `--json: not an array of results: ${r.stdout.slice(0, 100)}`, ok: false}
    }

    const inspect = await exec([DOCKER, 'image', 'inspect', ref])
    return inspect.code === 0 ? run : {...run, error: `${ref} is not in the engine`, ok: false}
  }

  const dir = path.join(WORK, `rootfs-${id}-${pair}`)
  const [run] = await timed(pair, ['debootstrap', '--variant=minbase', SUITE, dir, MIRROR])
  if (run.ok && id === 'import') {
    const script = `tar -C ${sh(dir)} -c . | ${DOCKER} import - bench/rootfs-import:${pair}`
    const [imp] = await timed(pair, ['bash', '-o', 'pipefail', '-c', script])
    Object.assign(run, {error: imp.error, importSeconds: imp.seconds, ok: imp.ok, seconds: run.seconds + imp.seconds})
    run.peakRssKb = Math.max(run.peakRssKb ?? 0, imp.peakRssKb ?? 0) || undefined
  }

  run.warning = await removeTree(dir)
  return run
}

function median(xs: (number | undefined)[]): number | undefined {
  const s = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length === 0 ? undefined : s.length % 2 ? s[mid] : (s[mid - 1]! + s[mid]!) / 2
}

const f2 = (n: number | undefined, unit = '') => (n === undefined ? '—' : `${n.toFixed(2)}${unit}`)
const IDS: Id[] = ['debootstrap', 'import', 'transship']

function summarize(raw: Record<Id, Run[]>) {
  const ok = (id: Id) => raw[id].filter((r) => r.ok)
  const t = ok('transship')
  /** median over the pairs where both ran of fn(transship run, baseline run) */
  const paired = (base: Id, fn: (t: Run, b: Run) => number) =>
    median(t.flatMap((x) => ok(base).flatMap((b) => (b.pair === x.pair ? [fn(x, b)] : []))))
  return {
    medians: Object.fromEntries(IDS.map((id) => [id, median(ok(id).map((r) => r.seconds))])),
    importSeconds: median(ok('import').map((r) => r.importSeconds)),
    bootstrapSeconds: median(t.map((r) => r.bootstrapSeconds)),
    packSeconds: median(t.map((r) => r.packSeconds)),
    ownOverhead: median(t.map((r) => (r.bootstrapSeconds ? r.seconds - r.bootstrapSeconds : undefined))),
    ownRatio: median(t.map((r) => (r.bootstrapSeconds ? r.seconds / r.bootstrapSeconds : undefined))),
    ratioA: paired('debootstrap', (x, b) => x.seconds / b.seconds),
    ratioB: paired('import', (x, b) => x.seconds / b.seconds),
    overheadA: paired('debootstrap', (x, b) => x.seconds - b.seconds),
    peakRssKb: Object.fromEntries(IDS.map((id) => [id, Math.max(0, ...ok(id).map((r) => r.peakRssKb ?? 0))])),
  }
}

function table(raw: Record<Id, Run[]>, s: ReturnType<typeof summarize>): string {
  const lines = ['| run | median wall s | transship / this | peak RSS |', '|---|---|---|---|']
  for (const id of IDS) {
    const failed = raw[id].filter((r) => !r.ok)
    const n = `n=${raw[id].length - failed.length}${failed.length > 0 ? `, ${failed.length} failed: ${failed[0]?.error}` : ''}`
    const row: Record<Id, [string, string, string]> = {
      debootstrap: [`A: debootstrap --variant=minbase ${SUITE}`, '', f2(s.ratioA, 'x')],
      import: ['B: debootstrap + tar | docker import', ` (import alone ${f2(s.importSeconds)})`, f2(s.ratioB, 'x')],
      transship: [
        'transship rootfs build',
        ` (bootstrap ${f2(s.bootstrapSeconds)}, pack + load ${f2(s.packSeconds)})`,
        '—',
      ],
    }
    const [label, extra, ratio] = row[id]
    const rss = s.peakRssKb[id] ? `${(s.peakRssKb[id] / 1024).toFixed(0)} MiB${id === 'transship' ? '' : '*'}` : '—'
    const time = `${f2(s.medians[id])}${extra} (${n})`.replaceAll('|', String.raw`\|`)
    lines.push(`| ${label.replaceAll('|', String.raw`\|`)} | ${time} | ${ratio} | ${rss} |`)
  }

  const met = s.ratioA === undefined ? 'n/a' : `${f2(s.ratioA, 'x')} — ${s.ratioA <= TARGET ? 'met' : 'NOT met'}`
  lines.push(
    '',
    `- target: transship ≤ debootstrap's own time + 15 % (ratio to A ≤ ${TARGET}): ${met}`,
    `- overhead over A: ${f2(s.overheadA, ' s')}; transship wall − its own bootstrapSeconds: ${f2(s.ownOverhead, ' s')} (${f2(s.ownRatio, 'x')}, free of mirror noise)`,
    '- ratios and overhead: median over pairs of the per-pair values; peak RSS* of a baseline: its largest process',
  )
  for (const r of Object.values(raw).flat()) if (r.warning) lines.push(`- warning (pair ${r.pair}): ${r.warning}`)
  return lines.join('\n')
}

async function quiet(argv: string[]): Promise<string> {
  return (await exec(argv).catch(() => null))?.stdout.trim() ?? ''
}

function runLine(run: Run): string {
  if (!run.ok) return `FAILED ${run.error}`
  const {bootstrapSeconds: b, importSeconds: i, packSeconds: p, peakRssKb: rss, seconds, warning: w} = run
  const extra = [
    i === undefined ? '' : `, import ${f2(i)} s`,
    p === undefined ? '' : `, bootstrap ${f2(b)} s, pack ${f2(p)} s`,
  ]
  return `${f2(seconds)} s, rss ${rss ?? '?'} kB${extra.join('')}${w ? ` — ${w}` : ''}`
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (debootstrap)')
  const started = new Date()
  WORK = await realpath(await mkdtemp('/var/tmp/transship-rootfs-bench-'))
  const machine = {
    commit: await quiet(['git', '-C', REPO, 'describe', '--always', '--dirty']),
    cpus: os.cpus().length,
    debootstrap: (await quiet(['dpkg-query', '-W', 'debootstrap'])).split('\t')[1],
    engine: `${bed.engines.classic.version} (${bed.engines.classic.host})`,
    kernel: os.release(),
    node: process.version,
  }
  console.log(`\n## transship rootfs build benchmark, ${started.toISOString()}\n`)
  console.log(
    `commit ${machine.commit}, ${machine.cpus} CPUs, kernel ${machine.kernel}, node ${machine.node}, debootstrap ${machine.debootstrap}, engine ${machine.engine}, ${PAIRS} pair(s), ${SUITE} minbase from ${MIRROR}\n`,
  )
  const raw: Record<Id, Run[]> = {debootstrap: [], import: [], transship: []}
  const resultsFile = path.join(HERE, 'results', 'rootfs-latest.json')
  const save = (extra: object) =>
    writeFile(resultsFile, JSON.stringify({machine, pairs: PAIRS, raw, startedAt: started, ...extra}, null, 2) + '\n')
  await mkdir(path.dirname(resultsFile), {recursive: true})
  try {
    await rmi('bench/rootfs', 'bench/rootfs-import')
    for (let pair = 1; pair <= PAIRS; pair++) {
      for (const id of pair % 2 === 1 ? IDS : [...IDS].reverse()) {
        const run = await runOne(id, pair)
        raw[id].push(run)
        console.log(`  [${pair}/${PAIRS}] ${id.padEnd(12)} ${runLine(run)}`)
      }

      await save({}) // after every pair: an interrupted run keeps what it measured
    }

    const summary = summarize(raw)
    console.log(`\n${table(raw, summary)}\n`)
    await save({finishedAt: new Date(), summary})
  } finally {
    if (!args.keep) await rmi('bench/rootfs', 'bench/rootfs-import')
    const warning = await removeTree(WORK)
    if (warning) console.error(warning)
  }

  console.log(`raw results: ${path.relative(process.cwd(), resultsFile)}`)
}

if (args.help) console.log(USAGE)
else await main()
