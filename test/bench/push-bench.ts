// The registry push benchmark: `transship image push` (through the engine, and daemonless from a
// docker-archive) measured side by side with `docker push` and `skopeo copy docker-archive:`, alternating, to
// the test bed's plain Distribution registry (http://localhost:5000), plus the re-push of an unchanged image.
// The targets (BENCHMARKS.md): a push no slower than skopeo copy; a re-push of an unchanged image under 1 s.
//
//   node --import tsx test/bench/push-bench.ts [--pairs 3] [--keep] [--cli bin/run.js]
//
// Needs root, the test bed (test/bed/up.sh), a built CLI (npm run build) and skopeo. Builds the workload
// (test/bench/workload.sh) when bench/app:1 is missing. Every run pushes to a repository of its own (nothing
// present, nothing to mount from: transship gets a fresh XDG_CACHE_HOME, the engine's and skopeo's records of
// what they pushed where are cleared), except the re-pushes, which push to the repository of an earlier run again. Nothing is
// deleted from the registry. Prints a markdown table and writes the raw results to
// test/bench/results/push-latest.json. Never fails on timing: the exit status is non-zero only when the
// harness itself cannot run.
import {mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
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
  fmtBytes,
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
  tableRow,
  verdict,
} from './lib.js'

const SKOPEO = 'skopeo'
const IMAGE = 'bench/app:1'
const ARCHIVE_DIR = '/var/tmp/bench-push'
const ARCHIVE = path.join(ARCHIVE_DIR, 'app.tar')
const REPUSH_TARGET_S = 1

const {values: args} = parseArgs({
  options: {
    ...COMMON_OPTIONS,
  },
})
const USAGE = `usage: node --import tsx test/bench/push-bench.ts [options]

  --pairs N     runs of every scenario, alternating (default 3; about a minute each)
  --cli PATH    the transship entry point, run with node (default bin/run.js)
  --keep        leave the engine's localhost:5000/bench-push/* tags and ${ARCHIVE} in place`
const PAIRS = parsePairs(args.pairs)

const bed = await loadTestbed()
const REGISTRY = bed.registries.plain.host
const ENGINE = bed.engines.classic
const ENV = benchEnv(bed, {DOCKER_HOST: ENGINE.host})
const run = runner({env: ENV, timeoutMs: 900_000})
const {exec, measured, mustExec, quiet} = run

// ---------------------------------------------------------------------------------------------
// the engine's record of pushed layers
// ---------------------------------------------------------------------------------------------

// The engine remembers, per layer, which repositories of which registry it pushed it to
// (image/<driver>/distribution/v2metadata-by-diffid), and mounts from one of them when it pushes the layer to
// another repository. Both engine pushes (docker push, transship through the engine) would then mount what
// the other uploaded a moment before: the bench clears those records of bench/app:1's layers before a first
// push, keeps what each first push left, and puts it back before the re-push of the same repository (as a
// user re-pushing would have it). Only files of bench/app:1's layers are touched; the engine reads them from
// disk on every push.
const METADATA_DIR = path.join(ENGINE.dataRoot, 'image', ENGINE.storageDriver, 'distribution', 'v2metadata-by-diffid')
let LAYERS: string[] = []

async function pushRecords(): Promise<Map<string, string>> {
  const records = new Map<string, string>()
  for (const layer of LAYERS) {
    const text = await readFile(path.join(METADATA_DIR, layer.replace(':', '/')), 'utf8').catch(() => null)
    if (text !== null) records.set(layer, text)
  }

  return records
}

async function setPushRecords(records: Map<string, string>): Promise<void> {
  for (const layer of LAYERS) {
    const file = path.join(METADATA_DIR, layer.replace(':', '/'))
    const text = records.get(layer)
    await (text === undefined ? rm(file, {force: true}) : writeFile(file, text))
  }
}

// skopeo (containers/image) keeps the same knowledge, for root in this file, and mounts from a repository it
// recorded: it is removed before each of its first pushes, and put back as it was at the end.
const SKOPEO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb'

// ---------------------------------------------------------------------------------------------
// runs
// ---------------------------------------------------------------------------------------------

type Id = 'docker' | 'docker-repush' | 'skopeo' | 'ts-archive' | 'ts-archive-repush' | 'ts-engine' | 'ts-engine-repush'

interface Run {
  pair: number
  ok: boolean
  error?: string
  seconds: number
  /** kB, /usr/bin/time -f %M (docker push: the CLI's, not the engine's) */
  peakRssKb?: number
  repository: string
  /** the size of the layers and config the registry's manifest lists (what a first push had to send) */
  manifestBytes?: number
  /** transship's --json: blobs */
  blobs?: {bytes: number; mounted: number; skipped: number; uploaded: number}
  /** docker push: how many layers it found already there / mounted */
  layersExisting?: number
  layersMounted?: number
}

interface Scenario {
  id: Id
  label: string
  kind: 'baseline' | 'transship'
  /** a re-push of this first push's repository */
  repushOf?: Id
}

const SCENARIOS: Scenario[] = [
  {id: 'docker', kind: 'baseline', label: 'docker push (engine)'},
  {id: 'ts-engine', kind: 'transship', label: 'transship image push (through the engine)'},
  {id: 'skopeo', kind: 'baseline', label: 'skopeo copy docker-archive: docker://'},
  {id: 'ts-archive', kind: 'transship', label: 'transship image push docker-archive: (daemonless)'},
  {id: 'docker-repush', kind: 'baseline', label: 're-push: docker push', repushOf: 'docker'},
  {id: 'ts-engine-repush', kind: 'transship', label: 're-push: transship through the engine', repushOf: 'ts-engine'},
  {id: 'ts-archive-repush', kind: 'transship', label: 're-push: transship daemonless', repushOf: 'ts-archive'},
]
const FIRST = SCENARIOS.filter((s) => !s.repushOf)
const REPUSH = SCENARIOS.filter((s) => s.repushOf)

let WORK = ''
/** a tag of this invocation, in every repository name: the registry is never cleaned, names must be new */
const STAMP = Date.now().toString(36)
/** per pair, per first push: its repository, its transship cache, the engine's push records after it */
const state = new Map<string, {cache?: string; records?: Map<string, string>; repository: string}>()

async function manifestOf(repository: string): Promise<{bytes: number; config: string}> {
  const raw = await mustExec([SKOPEO, 'inspect', '--raw', '--tls-verify=false', `docker://${REGISTRY}/${repository}:1`])
  const m = JSON.parse(raw) as {config: {digest: string; size: number}; layers: {size: number}[]}
  return {bytes: m.config.size + m.layers.reduce((a, l) => a + l.size, 0), config: m.config.digest}
}

/** the command line of a push, and its environment */
async function command(
  first: Id,
  s: {cache?: string; repository: string},
  target: string,
): Promise<{argv: string[]; env: NodeJS.ProcessEnv}> {
  if (first === 'docker') return {argv: [DOCKER, 'push', target], env: ENV}
  if (first === 'skopeo') {
    const argv = [
      SKOPEO,
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `docker-archive:${ARCHIVE}`,
      `docker://${target}`,
    ]
    return {argv, env: ENV}
  }

  // a fresh cache per first push (no mount from another repository); a re-push keeps its first push's
  s.cache ??= await mkdtemp(path.join(WORK, 'xdg-cache-'))
  const source = first === 'ts-engine' ? IMAGE : `docker-archive:${ARCHIVE}`
  return {
    argv: ['node', args.cli, 'image', 'push', source, '--to', REGISTRY, '--as', `${s.repository}:1`, '--json'],
    env: {...ENV, XDG_CACHE_HOME: s.cache},
  }
}

/** what a push says about itself: docker push, its progress lines; transship, its --json. Returns an error */
function readOutput(first: Id, kind: Scenario['kind'], stdout: string, run: Run): string | undefined {
  if (first === 'docker') {
    run.layersExisting = (stdout.match(/Layer already exists/g) ?? []).length
    run.layersMounted = (stdout.match(/Mounted from/g) ?? []).length
  }

  if (kind !== 'transship') return
  try {
    const [result] = JSON.parse(stdout) as {blobs?: Run['blobs']}[]
    run.blobs = result?.blobs
  } catch {
    return `--json: not an array of results: ${stdout.slice(0, 100)}`
  }
}

async function runOne(scenario: Scenario, pair: number, imageId: string): Promise<Run> {
  const first = scenario.repushOf ?? scenario.id
  const key = `${pair}/${first}`
  if (!scenario.repushOf) state.set(key, {repository: `bench-push/${first}-${STAMP}-${pair}`})
  const s = state.get(key)!
  const run: Run = {ok: false, pair, repository: s.repository, seconds: Number.NaN}
  const target = `${REGISTRY}/${s.repository}:1`
  if (first === 'docker' || first === 'ts-engine') await setPushRecords(s.records ?? new Map())
  if (first === 'docker' && !scenario.repushOf) await mustExec([DOCKER, 'tag', IMAGE, target])
  if (first === 'skopeo') await rm(SKOPEO_CACHE, {force: true})
  const {argv, env} = await command(first, s, target)
  const {exec: r, peakRssKb} = await measured(argv, {env})
  if (first === 'docker' || first === 'ts-engine') s.records ??= await pushRecords()
  run.seconds = r.seconds
  if (peakRssKb !== undefined) run.peakRssKb = peakRssKb
  if (r.code !== 0) {
    run.error = `exit ${r.code}: ${lastLine(r.stderr) || lastLine(r.stdout)}`
    return run
  }

  run.error = readOutput(first, scenario.kind, r.stdout, run)
  if (run.error) return run
  // the check: the registry holds the image under the tag, its config the engine's image
  try {
    const m = await manifestOf(s.repository)
    run.manifestBytes = m.bytes
    if (m.config !== imageId) {
      run.error = `WRONG RESULT: ${target} has config ${m.config}, ${IMAGE} is ${imageId}`
      return run
    }
  } catch (error) {
    run.error = `WRONG RESULT: ${(error as Error).message}`
    return run
  }

  run.ok = true
  return run
}

// ---------------------------------------------------------------------------------------------
// statistics and output
// ---------------------------------------------------------------------------------------------

const mb = (n: number | undefined) => fmtBytes(n, '—')

function summarize(raw: Record<Id, Run[]>) {
  const ok = (id: Id) => raw[id].filter((r) => r.ok)
  /** median over the pairs where both ran of this run's seconds / the base's */
  const ratio = (id: Id, base: Id) => pairedMedian(raw[id], raw[base], (x, b) => x.seconds / b.seconds)
  const ids = SCENARIOS.map((s) => s.id)
  return {
    manifestBytes: Object.fromEntries(ids.map((id) => [id, median(ok(id).map((r) => r.manifestBytes))])),
    medians: Object.fromEntries(ids.map((id) => [id, median(ok(id).map((r) => r.seconds))])),
    peakRssKb: Object.fromEntries(ids.map((id) => [id, Math.max(0, ...ok(id).map((r) => r.peakRssKb ?? 0))])),
    uploadedBytes: Object.fromEntries(ids.map((id) => [id, median(ok(id).map((r) => r.blobs?.bytes))])),
    vsDocker: Object.fromEntries(ids.map((id) => [id, ratio(id, id.endsWith('-repush') ? 'docker-repush' : 'docker')])),
    vsSkopeo: Object.fromEntries(ids.map((id) => [id, ratio(id, 'skopeo')])),
  }
}

function bytesCell(id: Id, raw: Record<Id, Run[]>, s: ReturnType<typeof summarize>): string {
  const ok = raw[id].filter((r) => r.ok)
  if (ok.length === 0) return '—'
  if (id.startsWith('ts-')) {
    const uploaded = median(ok.map((r) => r.blobs?.uploaded))
    const mounted = median(ok.map((r) => r.blobs?.mounted))
    const skipped = median(ok.map((r) => r.blobs?.skipped))
    if (uploaded === undefined) {
      // through the engine: its --json has no blob counts
      return id === 'ts-engine' ? `${mb(s.manifestBytes[id])} in the manifest` : '— (layers already there)'
    }

    return `${mb(s.uploadedBytes[id])} (${uploaded} uploaded, ${skipped} present, ${mounted} mounted)`
  }

  if (id === 'docker-repush') {
    return `${median(ok.map((r) => r.layersExisting))} layers already exist, ${median(ok.map((r) => r.layersMounted))} mounted`
  }

  return `${mb(s.manifestBytes[id])} in the manifest${id === 'docker' ? ` (${median(ok.map((r) => r.layersMounted))} mounted)` : ''}`
}

function table(raw: Record<Id, Run[]>, s: ReturnType<typeof summarize>): string {
  const lines = [
    '| scenario | median wall s | this / docker push | this / skopeo copy | bytes uploaded | peak RSS |',
    '|---|---|---|---|---|---|',
  ]
  for (const sc of SCENARIOS) {
    const time = `${f2(s.medians[sc.id])} (${countCell(raw[sc.id])})`
    const vsDocker = sc.id === 'docker' || sc.id === 'docker-repush' ? '1.00 (baseline)' : f2(s.vsDocker[sc.id], 'x')
    const vsSkopeo = sc.id === 'skopeo' ? '1.00 (baseline)' : sc.repushOf ? '—' : f2(s.vsSkopeo[sc.id], 'x')
    const kb = s.peakRssKb[sc.id]
    const rss = kb ? `${fmtRss(kb)}${sc.kind === 'transship' ? '' : '*'}` : '—'
    lines.push(tableRow([sc.label, time, vsDocker, vsSkopeo, bytesCell(sc.id, raw, s), rss]))
  }

  const ratio = s.vsSkopeo['ts-archive']
  lines.push(
    '',
    `- target: push no slower than skopeo copy (daemonless transship / skopeo ≤ 1): ${ratio === undefined ? 'n/a' : verdict(f2(ratio, 'x'), ratio <= 1)}`,
  )
  for (const id of ['ts-engine-repush', 'ts-archive-repush'] as const) {
    const t = s.medians[id]
    lines.push(
      `- target: re-push of an unchanged image under ${REPUSH_TARGET_S} s (${id}): ${t === undefined ? 'n/a' : verdict(f2(t, ' s'), t < REPUSH_TARGET_S)}`,
    )
  }

  lines.push(
    '- bytes: skopeo compresses the layers (gzip) by default, and so does the engine (docker push, transship through the engine): their bytes are the sizes in the manifest the registry holds (`skopeo inspect --raw`: layers + config). transship daemonless sends the archive’s blobs as they are (a docker-archive: uncompressed layers), its bytes are `blobs.bytes` of its --json',
    '- ratios: median over pairs of the per-pair ratio (re-pushes: to the docker push re-push); peak RSS: /usr/bin/time -f %M; * docker push: the CLI only (the engine does the work), skopeo: its process',
    '- every first push goes to a new repository (nothing present, nothing mounted: transship with a fresh XDG_CACHE_HOME, the engine’s and skopeo’s push records cleared); re-pushes go to the repository of the same pair’s first push, with its cache / records',
  )
  return lines.join('\n')
}

function runLine(run: Run): string {
  if (!run.ok) return `FAILED ${run.error}`
  const b = run.blobs
  const extra = [
    b ? `blobs ${b.uploaded} uploaded (${mb(b.bytes)}), ${b.skipped} present, ${b.mounted} mounted` : '',
    run.manifestBytes === undefined ? '' : `manifest ${mb(run.manifestBytes)}`,
    run.layersExisting === undefined ? '' : `${run.layersExisting} existing, ${run.layersMounted} mounted`,
    run.peakRssKb === undefined ? '' : `rss ${fmtRss(run.peakRssKb)}`,
  ].filter(Boolean)
  return `${f2(run.seconds)} s  ${extra.join(', ')}  → ${run.repository}`
}

/** the engine's tags this bench made (docker push's, and the ones transship makes for its engine push) */
async function rmiTags(): Promise<void> {
  const ls = await exec([DOCKER, 'image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'])
  const refs = ls.stdout.split('\n').filter((l) => l.startsWith(`${REGISTRY}/bench-push/`))
  if (refs.length === 0) return
  const r = await exec([DOCKER, 'rmi', ...refs])
  if (r.code !== 0) console.error(`docker rmi ${refs.join(' ')}: ${lastLine(r.stderr)}`)
}

async function setup(): Promise<string> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (the bed’s engine and its data root)')
  let id = await quiet([DOCKER, 'image', 'inspect', '--format', '{{.Id}}', IMAGE])
  if (!id) {
    const r = await exec(['bash', path.join(HERE, 'workload.sh')])
    if (r.code !== 0) throw new Error(`test/bench/workload.sh failed (exit ${r.code}): ${lastLine(r.stderr)}`)
    id = await quiet([DOCKER, 'image', 'inspect', '--format', '{{.Id}}', IMAGE])
    if (!id) throw new Error(`${IMAGE} is still missing after workload.sh`)
  }

  LAYERS = JSON.parse(
    await mustExec([DOCKER, 'image', 'inspect', '--format', '{{json .RootFS.Layers}}', IMAGE]),
  ) as string[]
  WORK = await mkdtemp(path.join(os.tmpdir(), 'transship-push-bench-'))
  await mkdir(ARCHIVE_DIR, {recursive: true})
  await rm(ARCHIVE, {force: true})
  // untimed, once: the archive both daemonless pushes read
  await mustExec(['node', args.cli, 'image', 'save', IMAGE, '-o', ARCHIVE])
  return id
}

async function main(): Promise<void> {
  const started = new Date()
  const imageId = await setup()
  const machine: Record<string, string> = {
    ...(await machineInfo(run, {
      docker: [DOCKER, 'version', '--format', '{{.Client.Version}}'],
      skopeo: [SKOPEO, '--version'],
    })),
    archiveBytes: String((await stat(ARCHIVE)).size),
    engine: `${ENGINE.version} (${ENGINE.host})`,
    registry: bed.registries.plain.url,
  }
  console.log(`\n## transship registry push benchmark, ${started.toISOString()}\n`)
  console.log(
    `commit ${commitOf(machine)}, ${machine.cpus} CPUs, kernel ${machine.kernel}, node ${machine.node}, engine ${machine.engine}, docker CLI ${machine.docker}, ${machine.skopeo}, registry ${machine.registry}, ${PAIRS} pair(s); ${IMAGE} ${imageId.slice(0, 19)}, docker-archive ${mb(Number(machine.archiveBytes))}; repositories bench-push/<scenario>-${STAMP}-<pair>\n`,
  )
  const raw = Object.fromEntries(SCENARIOS.map((s) => [s.id, [] as Run[]])) as Record<Id, Run[]>
  const resultsFile = path.join(HERE, 'results', 'push-latest.json')
  const save = (extra: object) =>
    saveResults(resultsFile, {machine, pairs: PAIRS, raw, stamp: STAMP, startedAt: started, ...extra})
  const recordsBefore = await pushRecords()
  const skopeoCacheBefore = await readFile(SKOPEO_CACHE).catch(() => null)
  try {
    for (let pair = 1; pair <= PAIRS; pair++) {
      for (const group of [FIRST, REPUSH]) {
        for (const sc of alternating(pair, group)) {
          const run = await runOne(sc, pair, imageId)
          raw[sc.id].push(run)
          console.log(`  [${pair}/${PAIRS}] ${sc.id.padEnd(18)} ${runLine(run)}`)
        }
      }

      await save({}) // after every pair: an interrupted run keeps what it measured
    }

    const summary = summarize(raw)
    console.log(`\n${table(raw, summary)}\n`)
    await save({finishedAt: new Date(), summary})
  } finally {
    await setPushRecords(recordsBefore)
    await (skopeoCacheBefore
      ? writeFile(SKOPEO_CACHE, skopeoCacheBefore, {mode: 0o600})
      : rm(SKOPEO_CACHE, {force: true}))
    if (!args.keep) {
      await rmiTags()
      await rm(ARCHIVE, {force: true})
    }

    await rm(WORK, {force: true, recursive: true})
  }

  console.log(`raw results: ${path.relative(process.cwd(), resultsFile)}`)
}

if (args.help) console.log(USAGE)
else await main()
