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
import {mkdtemp, readFile, realpath, rm} from 'node:fs/promises'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {
  alternating,
  benchEnv,
  commitOf,
  COMMON_OPTIONS,
  countCell,
  DOCKER,
  f2,
  fmtRss,
  HERE,
  lastLine,
  loadTestbed,
  machine as machineInfo,
  median,
  pairedMedian,
  parsePairs,
  runner,
  saveResults,
  sh,
  tableRow,
  verdict,
} from './lib.js'

const SUITE = 'bookworm'
const MIRROR = 'http://deb.debian.org/debian'
const TARGET = 1.15

const {values: args} = parseArgs({
  options: {
    ...COMMON_OPTIONS,
  },
})
const USAGE = `usage: node --import tsx test/bench/rootfs-bench.ts [options]

  --pairs N     runs of each of the three, alternating (default 3; ~70 s of downloads and bootstraps each)
  --cli PATH    the transship entry point, run with node (default bin/run.js)
  --keep        leave the images (bench/rootfs-import:N, the last bench/rootfs:N) in the classic engine`
const PAIRS = parsePairs(args.pairs)

const bed = await loadTestbed()
const run = runner({env: benchEnv(bed, {DOCKER_HOST: bed.engines.classic.host}), timeoutMs: 900_000})
const {exec, measured, quiet} = run

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

async function timed(pair: number, argv: string[]): Promise<[Run, {stdout: string}]> {
  const {exec: r, peakRssKb} = await measured(argv)
  const run: Run = {ok: r.code === 0, pair, peakRssKb, seconds: r.seconds}
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

const IDS: Id[] = ['debootstrap', 'import', 'transship']

function summarize(raw: Record<Id, Run[]>) {
  const ok = (id: Id) => raw[id].filter((r) => r.ok)
  const t = ok('transship')
  /** median over the pairs where both ran of fn(transship run, baseline run) */
  const paired = (base: Id, fn: (t: Run, b: Run) => number) => pairedMedian(t, raw[base], fn)
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
    const n = countCell(raw[id])
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
    const rss = s.peakRssKb[id] ? `${fmtRss(s.peakRssKb[id])}${id === 'transship' ? '' : '*'}` : '—'
    lines.push(tableRow([label, `${f2(s.medians[id])}${extra} (${n})`, ratio, rss]))
  }

  const met = s.ratioA === undefined ? 'n/a' : verdict(f2(s.ratioA, 'x'), s.ratioA <= TARGET)
  lines.push(
    '',
    `- target: transship ≤ debootstrap's own time + 15 % (ratio to A ≤ ${TARGET}): ${met}`,
    `- overhead over A: ${f2(s.overheadA, ' s')}; transship wall − its own bootstrapSeconds: ${f2(s.ownOverhead, ' s')} (${f2(s.ownRatio, 'x')}, free of mirror noise)`,
    '- ratios and overhead: median over pairs of the per-pair values; peak RSS* of a baseline: its largest process',
  )
  for (const r of Object.values(raw).flat()) if (r.warning) lines.push(`- warning (pair ${r.pair}): ${r.warning}`)
  return lines.join('\n')
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
  const machine: Record<string, string> = {
    ...(await machineInfo(run)),
    debootstrap: (await quiet(['dpkg-query', '-W', 'debootstrap'])).split('\t')[1] ?? '',
    engine: `${bed.engines.classic.version} (${bed.engines.classic.host})`,
  }
  console.log(`\n## transship rootfs build benchmark, ${started.toISOString()}\n`)
  console.log(
    `commit ${commitOf(machine)}, ${machine.cpus} CPUs, kernel ${machine.kernel}, node ${machine.node}, debootstrap ${machine.debootstrap}, engine ${machine.engine}, ${PAIRS} pair(s), ${SUITE} minbase from ${MIRROR}\n`,
  )
  const raw: Record<Id, Run[]> = {debootstrap: [], import: [], transship: []}
  const resultsFile = path.join(HERE, 'results', 'rootfs-latest.json')
  const save = (extra: object) => saveResults(resultsFile, {machine, pairs: PAIRS, raw, startedAt: started, ...extra})
  try {
    await rmi('bench/rootfs', 'bench/rootfs-import')
    for (let pair = 1; pair <= PAIRS; pair++) {
      for (const id of alternating(pair, IDS)) {
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
