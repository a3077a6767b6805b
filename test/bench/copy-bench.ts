// The image-copy benchmark: transship measured side by side with the shell pipelines it has to beat
// (see BENCHMARKS.md), alternating, on the test bed's real engines, over loopback SSH and over a
// 100 Mbit/s link to a network namespace.
//
//   node --import tsx test/bench/copy-bench.ts [--scenarios a,b,c,d,e] [--pairs 3] [--build] [--keep]
//
// Needs root and the test bed (test/bed/up.sh). Builds the workload (test/bench/workload.sh) and
// brings the link up (test/bench/link.sh up) first; both are idempotent. Prints one markdown table
// per scenario and writes the raw results to test/bench/results/latest.json. Never fails on timing:
// the exit status is non-zero only when the harness itself cannot run.
import {existsSync} from 'node:fs'
import {chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import type {EngineName} from '../bed/types.js'

import {
  alternating,
  benchEnv,
  commitOf,
  COMMON_OPTIONS,
  DOCKER,
  firstLine,
  fmtBytes,
  HERE,
  loadTestbed,
  machine as machineInfo,
  median,
  pairedMedian,
  parsePairs,
  REPO,
  runner,
  saveResults,
  sh,
  tableRow,
  verdict,
} from './lib.js'

const LINK_IF = 'tsb-host' // host side of the veth pair made by link.sh
const LINK_ADDR = '10.77.0.2'
const RUN_TIMEOUT_MS = 600_000

// ---------------------------------------------------------------------------------------------
// command line
// ---------------------------------------------------------------------------------------------

const {values: args} = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    build: {default: false, type: 'boolean'},
    'no-setup': {default: false, type: 'boolean'},
    scenarios: {default: 'a,b,c,d,e', type: 'string'},
  },
})

const USAGE = `usage: node --import tsx test/bench/copy-bench.ts [options]

  --scenarios a,b,c,d,e  which scenarios to run (default: all)
                           a  loopback, cold, bench/app:1
                           b  100 Mbit/s link, warm (bench/base:1 at the destination), bench/app:1
                           c  100 Mbit/s link, cold, bench/app:1
                           d  one image to 2 destinations (remote over the link + containerd engine), cold
                           e  everyday deploy: link, destination has bench/app:1, copy bench/app:2
  --pairs N              runs of every pipeline per scenario, alternating (default 3)
  --cli PATH             the transship entry point, run with node (default bin/run.js)
  --build                run \`npm run build\` first (a failed build marks transship not available)
  --keep                 leave the bench images on the destinations, and the link up, afterwards
  --no-setup             skip workload.sh and link.sh up (they are idempotent, and fast when done)`

const PAIRS = parsePairs(args.pairs)
const SCENARIO_IDS = args.scenarios
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
for (const id of SCENARIO_IDS) {
  if (!['a', 'b', 'c', 'd', 'e'].includes(id)) throw new Error(`--scenarios: unknown scenario "${id}"`)
}

// ---------------------------------------------------------------------------------------------
// the bed, the destinations, the workload
// ---------------------------------------------------------------------------------------------

const bed = await loadTestbed()
/** the environment of every command: no user docker config, Debian's docker CLI first on PATH */
const baseEnv = () => benchEnv(bed)
const bench = runner({env: baseEnv(), timeoutMs: RUN_TIMEOUT_MS})
const {exec, measured, mustExec} = bench
const BENCH_DIR = path.join(bed.stateDir, 'bench')
const BASE_TAR = path.join(BENCH_DIR, 'base-1.tar')
const APP1_TAR = path.join(BENCH_DIR, 'app-1.tar')
const SOURCE = bed.engines.classic.host

interface Destination {
  /** what the tables call it */
  name: string
  engine: EngineName
  /** the --to of transship */
  url: string
  /** how a shell pipeline reaches it: an ssh command line (ending with the host), or the local socket */
  ssh?: {host: string; knownHosts: string; port: number}
  /** the host-side interface whose counters are the bytes on the wire */
  wire?: string
}

const LOOPBACK: Destination = {
  name: 'remote (loopback ssh)',
  engine: 'remote',
  url: `ssh://root@${bed.ssh.host}:${bed.ssh.port}${bed.engines.remote.socket}`,
  ssh: {host: bed.ssh.host, knownHosts: bed.ssh.knownHosts, port: bed.ssh.port},
}
const LINK: Destination = {
  name: 'remote (100 Mbit/s link)',
  engine: 'remote',
  url: `ssh://root@${LINK_ADDR}${bed.engines.remote.socket}`,
  ssh: {host: LINK_ADDR, knownHosts: path.join(BENCH_DIR, 'known_hosts'), port: 22},
  wire: LINK_IF,
}
const CONTAINERD_LOCAL: Destination = {
  name: 'containerd engine (local socket)',
  engine: 'containerd',
  url: bed.engines.containerd.host,
}

let HOME_DIR = ''
let TMP_DIR = ''

/** a HOME for transship and the pipelines' ssh: the bed's key, known_hosts of both sshds */
async function makeHome(): Promise<void> {
  TMP_DIR = await mkdtemp(path.join(os.tmpdir(), 'transship-bench-'))
  HOME_DIR = path.join(TMP_DIR, 'home')
  const dotSsh = path.join(HOME_DIR, '.ssh')
  await mkdir(dotSsh, {mode: 0o700, recursive: true})
  await copyFile(bed.ssh.identityFile, path.join(dotSsh, 'id_ed25519'))
  await chmod(path.join(dotSsh, 'id_ed25519'), 0o600)
  await copyFile(`${bed.ssh.identityFile}.pub`, path.join(dotSsh, 'id_ed25519.pub'))
  const knownHosts = [await readFile(bed.ssh.knownHosts, 'utf8'), await readFile(LINK.ssh!.knownHosts, 'utf8')]
  await writeFile(path.join(dotSsh, 'known_hosts'), knownHosts.map((s) => s.trimEnd() + '\n').join(''))
}

/** ssh argv (as a shell string) to a destination, logging its byte counts to LOG */
function sshCommand(dest: Destination, log: string, remoteCommand: string): string {
  const s = dest.ssh!
  return [
    'ssh -F none',
    `-i ${sh(path.join(HOME_DIR, '.ssh/id_ed25519'))} -o IdentitiesOnly=yes -o BatchMode=yes`,
    `-o UserKnownHostsFile=${sh(path.join(HOME_DIR, '.ssh/known_hosts'))} -o GlobalKnownHostsFile=/dev/null`,
    '-o StrictHostKeyChecking=yes -o LogLevel=VERBOSE',
    `-E ${sh(log)} -p ${s.port} root@${s.host}`,
    sh(remoteCommand),
  ].join(' ')
}

/** the docker CLI on the far side of an ssh session, talking to the destination's engine */
function remoteDocker(dest: Destination): string {
  return `DOCKER_HOST=${bed.engines[dest.engine].host} ${DOCKER}`
}

function dk(engine: EngineName, ...rest: string[]): string[] {
  return [DOCKER, '-H', bed.engines[engine].host, ...rest]
}

async function imageId(engine: EngineName, ref: string): Promise<string | undefined> {
  const r = await exec(dk(engine, 'image', 'inspect', '--format', '{{.Id}}', ref))
  return r.code === 0 ? r.stdout.trim() : undefined
}

/**
 * The identity of an image as the classic store names it: the digest of its config. The containerd store
 * names an image by its manifest (or index) instead: read the config digest from the manifest.
 */
async function configDigest(engine: EngineName, ref: string): Promise<string | undefined> {
  const id = await imageId(engine, ref)
  if (!id || bed.engines[engine].imageStore !== 'containerd') return id
  const ctr = path.join(bed.stateDir, 'debs/trixie/x/usr/bin/ctr')
  const content = async (digest: string) =>
    JSON.parse(
      await mustExec([ctr, '-a', bed.engines[engine].containerdSocket, '-n', 'moby', 'content', 'get', digest]),
    ) as {config?: {digest: string}; manifests?: {digest: string; platform?: {architecture?: string; os?: string}}[]}
  let doc = await content(id)
  if (doc.manifests) {
    const m = doc.manifests.find((x) => x.platform?.os === 'linux' && x.platform.architecture === 'amd64')
    if (!m) return
    doc = await content(m.digest)
  }

  return doc.config?.digest
}

async function benchRefs(engine: EngineName): Promise<string[]> {
  const out = await mustExec(
    dk(engine, 'image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', '--filter', 'reference=bench/*'),
  )
  return out.split('\n').filter((l) => l && !l.endsWith(':<none>'))
}

type DestState = 'app1' | 'cold' | 'warm'

/** puts a destination engine in a known state: no bench image, or bench/base:1, or bench/app:1 */
async function resetEngine(engine: EngineName, state: DestState): Promise<void> {
  const refs = await benchRefs(engine)
  if (refs.length > 0) await mustExec(dk(engine, 'rmi', ...refs))
  // every bench image carries this label (workload.sh): prunes what a partial load may have left, and
  // nothing of anyone else's
  await mustExec(dk(engine, 'image', 'prune', '-f', '--filter', 'label=transship.bench=1'))
  if (state === 'warm') await mustExec(dk(engine, 'load', '-q', '-i', BASE_TAR))
  if (state === 'app1') await mustExec(dk(engine, 'load', '-q', '-i', APP1_TAR))
  const left = await benchRefs(engine)
  const want = {app1: ['bench/app:1'], cold: [], warm: ['bench/base:1']}[state]
  if (left.sort().join(',') !== want.join(',')) {
    throw new Error(`resetting the ${engine} engine to ${state} left ${left.join(', ') || 'nothing'}`)
  }
}

// ---------------------------------------------------------------------------------------------
// measuring one run
// ---------------------------------------------------------------------------------------------

interface TransshipHost {
  bytesOnWire?: number
  durationMs?: number
  fallback?: string
  host?: string
  layersSent?: number
  layersSkipped?: number
}

interface Run {
  pair: number
  ok: boolean
  /** why the run failed, or why its result is wrong */
  error?: string
  exitCode?: number
  seconds: number
  /** bytes leaving / entering this host on the link's interface (link scenarios) */
  wireTx?: number
  wireRx?: number
  /** bytes ssh says it sent (shell pipelines) */
  sshSent?: number
  /** bytes transship says it put on the wire (its --json), summed over its ssh:// destinations */
  reportedBytes?: number
  /** the same for destinations on this machine (a local socket: no wire) */
  reportedLocalBytes?: number
  /** kB; transship: its process; a shell pipeline: its largest local process */
  peakRssKb?: number
  hosts?: TransshipHost[]
  verified?: boolean
}

async function sshSent(logs: string[]): Promise<number | undefined> {
  let total: number | undefined
  for (const log of logs) {
    const text = await readFile(log, 'utf8').catch(() => '')
    const m = /Transferred: sent (\d+), received (\d+) bytes/.exec(text)
    if (m) total = (total ?? 0) + Number(m[1])
    await rm(log, {force: true})
  }

  return total
}

/** runs a bash pipeline; LOGS are the -E files of its ssh commands */
async function runShell(pair: number, script: string, dests: Destination[], logs: string[]): Promise<Run> {
  const wire = dests.find((d) => d.wire)?.wire
  const m = await measured(['bash', '-o', 'pipefail', '-c', script], {env: {...baseEnv(), HOME: HOME_DIR}, wire})
  const run: Run = {
    exitCode: m.exec.code,
    ok: m.exec.code === 0,
    pair,
    peakRssKb: m.peakRssKb,
    seconds: m.exec.ms / 1000,
    sshSent: await sshSent(logs),
    wireRx: m.wireRx,
    wireTx: m.wireTx,
  }
  if (!run.ok) run.error = `exit ${m.exec.code}: ${firstLine(m.exec.stderr)}`
  return run
}

let transshipBuildError: string | undefined

async function runTransship(pair: number, ref: string, dests: Destination[]): Promise<Run> {
  if (transshipBuildError) return {error: transshipBuildError, ok: false, pair, seconds: Number.NaN}
  const argv = [process.execPath, path.resolve(REPO, args.cli), 'image', 'copy', ref]
  for (const d of dests) argv.push('--to', d.url)
  argv.push('--json')
  const env = {...baseEnv(), DOCKER_HOST: SOURCE, HOME: HOME_DIR}
  const wire = dests.find((d) => d.wire)?.wire
  const m = await measured(argv, {env, wire})
  const run: Run = {
    exitCode: m.exec.code,
    ok: m.exec.code === 0,
    pair,
    peakRssKb: m.peakRssKb,
    seconds: m.exec.ms / 1000,
    wireRx: m.wireRx,
    wireTx: m.wireTx,
  }
  if (!run.ok) {
    run.error = `exit ${m.exec.code}${m.exec.signal ? ` (${m.exec.signal})` : ''}: ${firstLine(m.exec.stderr) || firstLine(m.exec.stdout)}`
    return run
  }

  try {
    const out = JSON.parse(m.exec.stdout) as {hosts?: TransshipHost[]}
    run.hosts = out.hosts
    const sum = (hosts: TransshipHost[]) => {
      const bytes = hosts.map((h) => h.bytesOnWire).filter((b): b is number => typeof b === 'number')
      return bytes.length > 0 ? bytes.reduce((a, b) => a + b, 0) : undefined
    }

    const isSsh = (h: TransshipHost) => h.host?.startsWith('ssh://') ?? false
    run.reportedBytes = sum((out.hosts ?? []).filter((h) => isSsh(h)))
    run.reportedLocalBytes = sum((out.hosts ?? []).filter((h) => !isSsh(h)))
  } catch {
    run.hosts = undefined
    run.error = `--json output is not JSON: ${firstLine(m.exec.stdout).slice(0, 120)}`
  }

  return run
}

/** the destination must hold REF with the source's image (same config digest) */
async function verify(run: Run, ref: string, dests: Destination[]): Promise<void> {
  if (!run.ok) return
  const want = await configDigest('classic', ref)
  for (const d of dests) {
    let have: string | undefined
    try {
      have = await configDigest(d.engine, ref)
    } catch {
      have = undefined
    }

    if (have !== want) {
      run.ok = false
      run.verified = false
      run.error = `WRONG RESULT: ${d.name} has ${ref} as ${have ?? 'nothing'}, the source has ${want}`
      return
    }
  }

  run.verified = true
}

// ---------------------------------------------------------------------------------------------
// scenarios
// ---------------------------------------------------------------------------------------------

interface Pipeline {
  id: string
  label: string
  kind: 'baseline' | 'transship'
  /** what the destinations are reset to before each run */
  reset: {dests: Destination[]; state: DestState}
  /** the destinations verified after each run */
  verifyDests: Destination[]
  run(pair: number): Promise<Run>
}

interface Target {
  description: string
  /** returns [measured value as text, met?] or undefined when not measurable */
  check(results: Map<string, PipelineResult>): [string, boolean] | undefined
}

interface Scenario {
  baseline: string
  id: string
  image: string
  notes: string[]
  pipelines: Pipeline[]
  targets: Target[]
  title: string
}

interface PipelineResult {
  id: string
  kind: Pipeline['kind']
  label: string
  medianSeconds?: number
  /** median over pairs of baseline seconds / this pipeline's seconds */
  speedup?: number
  runs: Run[]
}

let logCounter = 0
function sshLog(): string {
  logCounter += 1
  return path.join(TMP_DIR, `ssh-${logCounter}.log`)
}

/** `docker save | COMPRESS | ssh DEST 'DECOMPRESS | docker load'` */
function compressedPipeline(
  ref: string,
  dest: Destination,
  state: DestState,
  {compress, decompress, id, label}: {compress: string; decompress: string; id: string; label: string},
): Pipeline {
  return {
    id,
    kind: 'baseline',
    label,
    reset: {dests: [dest], state},
    async run(pair) {
      const log = sshLog()
      const script = `${DOCKER} -H ${SOURCE} save ${ref} | ${compress} | ${sshCommand(dest, log, `${decompress} | ${remoteDocker(dest)} load -q`)} >/dev/null`
      return runShell(pair, script, [dest], [log])
    },
    verifyDests: [dest],
  }
}

function zstdPipeline(ref: string, dest: Destination, state: DestState): Pipeline {
  return compressedPipeline(ref, dest, state, {
    compress: 'zstd -q -1 -T0 -c',
    decompress: 'zstd -q -d -c',
    id: 'zstd',
    label: "docker save | zstd -1 -T0 | ssh 'zstd -d | docker load'",
  })
}

function transshipPipeline(ref: string, dests: Destination[], state: DestState, id = 'transship'): Pipeline {
  const to = dests.map((d) => `--to ${d.url.startsWith('ssh://') ? d.url.replace(/\/run\/.*$/, '/…') : d.url}`)
  return {
    id,
    kind: 'transship',
    label: `transship image copy ${to.join(' ')}`,
    reset: {dests, state},
    run: (pair) => runTransship(pair, ref, dests),
    verifyDests: dests,
  }
}

function speedupTarget(description: string, id: string, baseline: string, minimum: number): Target {
  return {
    check(results) {
      const r = results.get(id)
      if (!r?.speedup || !results.get(baseline)?.medianSeconds) return
      return [`${r.speedup.toFixed(2)}x`, r.speedup >= minimum]
    },
    description,
  }
}

function memoryTarget(): Target {
  return {
    check(results) {
      const rss = [...results.values()]
        .filter((r) => r.kind === 'transship')
        .flatMap((r) => r.runs.filter((run) => run.ok && run.peakRssKb).map((run) => run.peakRssKb!))
      if (rss.length === 0) return
      const max = Math.max(...rss) * 1024
      return [`${fmtBytes(max)} max`, max < 200 * 1024 * 1024]
    },
    description: 'transship peak RSS under 200 MB',
  }
}

interface Sizes {
  app1Archive: number
  app1Zstd1: number
  missingOverBase: {layers: number; raw: number; zstd1: number}
}

let sizes: Sizes | undefined

/** what has to cross the link at least: zstd -1 of the whole image and of the layers missing over base */
async function measureSizes(): Promise<Sizes> {
  const manifest = JSON.parse(await mustExec(['tar', '-xOf', APP1_TAR, 'manifest.json'])) as {Layers: string[]}[]
  const baseLayers = Number(
    (await mustExec(dk('classic', 'image', 'inspect', '--format', '{{len .RootFS.Layers}}', 'bench/base:1'))).trim(),
  )
  const missing = manifest[0]?.Layers.slice(baseLayers) ?? []
  const zstdSize = async (script: string) =>
    Number((await mustExec(['bash', '-o', 'pipefail', '-c', `${script} | zstd -q -1 -T0 -c | wc -c`])).trim())
  let raw = 0
  for (const layer of missing) {
    raw += Number((await mustExec(['bash', '-o', 'pipefail', '-c', `tar -xOf ${APP1_TAR} ${layer} | wc -c`])).trim())
  }

  return {
    app1Archive: (await stat(APP1_TAR)).size,
    app1Zstd1: await zstdSize(`cat ${APP1_TAR}`),
    missingOverBase: {
      layers: missing.length,
      raw,
      zstd1: await zstdSize(`tar -xOf ${APP1_TAR} ${missing.join(' ')}`),
    },
  }
}

const APP1 = 'bench/app:1'
const APP2 = 'bench/app:2'

/** (a) loopback, cold */
function scenarioA(): Scenario {
  const loadAlone: Pipeline = {
    id: 'load',
    kind: 'baseline',
    label: 'docker load -i app-1.tar alone (local, no ssh)',
    reset: {dests: [LOOPBACK], state: 'cold'},
    run: (pair) => runShell(pair, `${DOCKER} -H ${bed.engines.remote.host} load -q -i ${APP1_TAR} >/dev/null`, [], []),
    verifyDests: [LOOPBACK],
  }
  const bzip2 = compressedPipeline(APP1, LOOPBACK, 'cold', {
    compress: 'bzip2 -c',
    decompress: 'bunzip2 -c',
    id: 'bzip2',
    label: "docker save | bzip2 | ssh 'bunzip2 | docker load'",
  })
  return {
    baseline: 'bzip2',
    id: 'a',
    image: APP1,
    notes: [
      'bytes: what ssh reports it sent (`Transferred: sent N`), or what transship reports; no wire counter on loopback',
    ],
    pipelines: [bzip2, zstdPipeline(APP1, LOOPBACK, 'cold'), loadAlone, transshipPipeline(APP1, [LOOPBACK], 'cold')],
    targets: [
      speedupTarget('transship at least 7x faster than the bzip2 pipeline', 'transship', 'bzip2', 7),
      {
        check(results) {
          const t = results.get('transship')?.medianSeconds
          const l = results.get('load')?.medianSeconds
          if (!t || !l) return
          return [`${(t / l).toFixed(2)}x docker load's time`, t / l <= 1.3]
        },
        description: 'transship within 1.3x of `docker load` alone',
      },
      memoryTarget(),
    ],
    title: '(a) loopback, cold: bench/app:1 to the remote engine over the bed’s sshd (127.0.0.1:2222)',
  }
}

/** (b) link, warm */
function scenarioB(): Scenario {
  return {
    baseline: 'zstd',
    id: 'b',
    image: APP1,
    notes: [
      'destination has bench/base:1 (loaded from base-1.tar before every run)',
      'bytes: the link interface’s tx counter (this host → destination; includes TCP/IP headers), then what ssh / transship report',
    ],
    pipelines: [zstdPipeline(APP1, LINK, 'warm'), transshipPipeline(APP1, [LINK], 'warm')],
    targets: [
      speedupTarget('transship at least 2x faster than the zstd pipeline', 'transship', 'zstd', 2),
      {
        check(results) {
          const runs = results.get('transship')?.runs.filter((r) => r.ok && r.wireTx) ?? []
          if (runs.length === 0 || !sizes) return
          const tx = median(runs.map((r) => r.wireTx))!
          const ratio = tx / sizes.missingOverBase.zstd1
          return [`${fmtBytes(tx)} = ${ratio.toFixed(2)}x of ${fmtBytes(sizes.missingOverBase.zstd1)}`, ratio <= 1.1]
        },
        description: 'bytes on the wire within 1.1x of the zstd -1 compressed missing layers',
      },
      memoryTarget(),
    ],
    title: '(b) 100 Mbit/s link, warm: bench/app:1 to the remote engine via 10.77.0.2',
  }
}

/** (c) link, cold */
function scenarioC(): Scenario {
  return {
    baseline: 'zstd',
    id: 'c',
    image: APP1,
    notes: ['bytes: the link interface’s tx counter, then what ssh / transship report'],
    pipelines: [zstdPipeline(APP1, LINK, 'cold'), transshipPipeline(APP1, [LINK], 'cold')],
    targets: [
      speedupTarget('transship at least 1.1x faster than the zstd pipeline', 'transship', 'zstd', 1.1),
      memoryTarget(),
    ],
    title: '(c) 100 Mbit/s link, cold: bench/app:1 to the remote engine via 10.77.0.2',
  }
}

/** (d) one image to several hosts (two: the bed has two engines besides the source) */
function scenarioD(): Scenario {
  const dests = [LINK, CONTAINERD_LOCAL]
  const fanOut: Pipeline = {
    id: 'fanout',
    kind: 'baseline',
    label: "docker save | tee >(docker load) | zstd -1 -T0 | ssh 'zstd -d | docker load' (read once)",
    reset: {dests, state: 'cold'},
    async run(pair) {
      const log = sshLog()
      const fifo = path.join(TMP_DIR, 'fanout.fifo')
      const script = [
        `rm -f ${fifo}; mkfifo ${fifo}`,
        `${DOCKER} -H ${CONTAINERD_LOCAL.url} load -q <${fifo} >/dev/null & local_load=$!`,
        `${DOCKER} -H ${SOURCE} save ${APP1} | tee ${fifo} | zstd -q -1 -T0 -c | ${sshCommand(LINK, log, `zstd -q -d -c | ${remoteDocker(LINK)} load -q`)} >/dev/null`,
        'rc=$?; wait $local_load; rc2=$?',
        `rm -f ${fifo}; exit $((rc ? rc : rc2))`,
      ].join('\n')
      return runShell(pair, script, dests, [log])
    },
    verifyDests: dests,
  }
  return {
    baseline: 'fanout',
    id: 'd',
    image: APP1,
    notes: [
      'only two destinations: the bed has two engines besides the source (remote, reached here over the link, and the containerd-store engine, through its local socket)',
      'both destinations cold; "slowest single copy" = the larger of the two single-destination transship medians (the zstd pipeline to the link alone is scenario (c))',
      'bytes: the link interface’s tx counter (the containerd destination is local: nothing on a wire)',
    ],
    pipelines: [
      fanOut,
      transshipPipeline(APP1, dests, 'cold'),
      transshipPipeline(APP1, [LINK], 'cold', 'transship-link'),
      transshipPipeline(APP1, [CONTAINERD_LOCAL], 'cold', 'transship-containerd'),
    ],
    targets: [
      {
        check(results) {
          const multi = results.get('transship')?.medianSeconds
          const singles = ['transship-link', 'transship-containerd'].map((id) => results.get(id)?.medianSeconds)
          if (!multi || singles.some((s) => !s)) return
          const slowest = Math.max(...(singles as number[]))
          return [`${(multi / slowest).toFixed(2)}x of ${slowest.toFixed(1)} s`, multi / slowest <= 1.3]
        },
        description: 'transship to both within 1.3x of its slowest single copy',
      },
      memoryTarget(),
    ],
    title: '(d) one image to 2 destinations, cold: remote via 10.77.0.2 + the containerd engine',
  }
}

/** (e) the everyday deploy */
function scenarioE(): Scenario {
  return {
    baseline: 'zstd',
    id: 'e',
    image: APP2,
    notes: ['destination has bench/app:1 (loaded from app-1.tar before every run); bench/app:2 adds one 5 MB layer'],
    pipelines: [zstdPipeline(APP2, LINK, 'app1'), transshipPipeline(APP2, [LINK], 'app1')],
    targets: [
      speedupTarget('transship at least 10x faster than the zstd pipeline', 'transship', 'zstd', 10),
      memoryTarget(),
    ],
    title: '(e) everyday deploy over the 100 Mbit/s link: bench/app:2 to a destination that has bench/app:1',
  }
}

function scenarios(): Scenario[] {
  return [scenarioA(), scenarioB(), scenarioC(), scenarioD(), scenarioE()].filter((s) => SCENARIO_IDS.includes(s.id))
}

// ---------------------------------------------------------------------------------------------
// statistics and output
// ---------------------------------------------------------------------------------------------

function summarize(scenario: Scenario, raw: Map<string, Run[]>): Map<string, PipelineResult> {
  const out = new Map<string, PipelineResult>()
  const base = raw.get(scenario.baseline) ?? []
  for (const p of scenario.pipelines) {
    const runs = raw.get(p.id) ?? []
    const ok = runs.filter((r) => r.ok)
    const result: PipelineResult = {id: p.id, kind: p.kind, label: p.label, runs}
    if (ok.length > 0) result.medianSeconds = median(ok.map((r) => r.seconds))
    // per-pair ratios: each baseline run is compared with the run of the same pair (alternated, so drift
    // of the machine cancels out), then the median of those
    const speedup = pairedMedian(runs, base, (r, b) => b.seconds / r.seconds)
    if (speedup !== undefined) result.speedup = speedup
    out.set(p.id, result)
  }

  return out
}

function bytesCell(r: PipelineResult, linkScenario: boolean): string {
  const ok = r.runs.filter((x) => x.ok)
  if (ok.length === 0) return '—'
  const parts: string[] = []
  const tx = ok.map((x) => x.wireTx).filter((x): x is number => x !== undefined)
  if (tx.length > 0) parts.push(`${fmtBytes(median(tx))} wire`)
  const ssh = ok.map((x) => x.sshSent).filter((x): x is number => x !== undefined)
  if (ssh.length > 0) parts.push(`${fmtBytes(median(ssh))} ssh`)
  const reported = ok.map((x) => x.reportedBytes).filter((x): x is number => x !== undefined)
  if (reported.length > 0) parts.push(`${fmtBytes(median(reported))} reported`)
  const local = ok.map((x) => x.reportedLocalBytes).filter((x): x is number => x !== undefined)
  if (local.length > 0) parts.push(`(${fmtBytes(median(local))} reported to the local socket)`)
  if (parts.length === 0) return r.kind === 'transship' && !linkScenario ? 'n/a' : '— (local)'
  return parts.join(' · ')
}

function table(scenario: Scenario, results: Map<string, PipelineResult>): string {
  const baseLabel = results.get(scenario.baseline)?.label.split(' (')[0] ?? scenario.baseline
  const lines = [
    `### ${scenario.title}`,
    '',
    `| pipeline | median s | ratio vs baseline (${scenario.baseline}: speedup) | bytes on wire | peak RSS |`,
    '|---|---|---|---|---|',
  ]
  const linkScenario = scenario.pipelines.some((p) => p.reset.dests.some((d) => d.wire))
  for (const r of results.values()) {
    const failed = r.runs.filter((x) => !x.ok)
    let time: string
    let ratio: string
    if (r.medianSeconds === undefined) {
      const error = failed[0]?.error ?? 'no run'
      time = r.kind === 'transship' && !error.startsWith('WRONG') ? `transship: not available (${error})` : error
      ratio = '—'
    } else {
      time = `${r.medianSeconds.toFixed(2)} (n=${r.runs.length - failed.length}${failed.length > 0 ? `, ${failed.length} failed: ${failed[0]?.error}` : ''})`
      ratio = r.id === scenario.baseline ? '1.00x (baseline)' : r.speedup ? `${r.speedup.toFixed(2)}x` : '—'
    }

    const rss = r.runs.filter((x) => x.ok && x.peakRssKb).map((x) => x.peakRssKb! * 1024)
    const rssCell = rss.length > 0 ? `${fmtBytes(Math.max(...rss))}${r.kind === 'baseline' ? '*' : ''}` : '—'
    const fallbacks = [
      ...new Set(
        r.runs.flatMap((x) => (x.hosts ?? []).filter((h) => h.fallback).map((h) => `${h.host}: ${h.fallback}`)),
      ),
    ]
    const label = fallbacks.length > 0 ? `${r.label} (fallback: ${fallbacks.join('; ')})` : r.label
    lines.push(tableRow([label, time, ratio, bytesCell(r, linkScenario), rssCell]))
  }

  lines.push('')
  for (const t of scenario.targets) {
    const c = t.check(results)
    lines.push(`- target: ${t.description}: ${c ? verdict(c[0], c[1]) : 'n/a'}`)
  }

  for (const n of scenario.notes) lines.push(`- ${n}`)
  lines.push(
    `- ratio = median over pairs of (${baseLabel} time / this time); peak RSS* of a shell pipeline = its largest local process`,
  )
  return lines.join('\n')
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

async function machine(): Promise<Record<string, string>> {
  return {
    ...(await machineInfo(bench, {ssh: ['ssh', '-V'], zstd: ['zstd', '-V']})),
    source: `${bed.engines.classic.version} (${bed.engines.classic.imageStore})`,
  }
}

async function setup(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (netns, the bed’s engines)')
  if (!args['no-setup']) {
    for (const argv of [['workload.sh'], ['link.sh', 'up']]) {
      const r = await exec(['bash', path.join(HERE, argv[0]!), ...argv.slice(1)], {inherit: true, timeoutMs: 1_200_000})
      if (r.code !== 0) throw new Error(`test/bench/${argv.join(' ')} failed (exit ${r.code})`)
    }
  }

  for (const f of [BASE_TAR, APP1_TAR, LINK.ssh!.knownHosts]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run test/bench/workload.sh and test/bench/link.sh up`)
  }

  if (args.build) {
    const r = await exec(['npm', 'run', 'build', '--silent'], {timeoutMs: 600_000})
    if (r.code !== 0) {
      transshipBuildError = `build failed, exit ${r.code}: ${firstLine(r.stdout) || firstLine(r.stderr)}`
    }
  }

  await makeHome()
}

function shortHost(host: string | undefined): string {
  if (!host) return '?'
  return host.startsWith('ssh://') ? host.slice('ssh://'.length).replace(/\/.*$/, '') : host.replace(/^unix:\/\//, '')
}

function runLine(scenario: Scenario, pair: number, p: Pipeline, run: Run): string {
  const bytes = [
    run.wireTx === undefined ? '' : `wire ${fmtBytes(run.wireTx)}`,
    run.sshSent === undefined ? '' : `ssh ${fmtBytes(run.sshSent)}`,
    run.reportedBytes === undefined ? '' : `reported ${fmtBytes(run.reportedBytes)}`,
    run.reportedLocalBytes === undefined ? '' : `local socket ${fmtBytes(run.reportedLocalBytes)}`,
    ...(run.hosts ?? []).map(
      (h) =>
        `${shortHost(h.host)}: ${h.layersSent ?? '?'} layers sent/${h.layersSkipped ?? '?'} skipped${h.fallback ? ` (fallback: ${h.fallback})` : ''}`,
    ),
    run.peakRssKb === undefined ? '' : `rss ${fmtBytes(run.peakRssKb * 1024)}`,
  ].filter(Boolean)
  const what = run.ok ? `${run.seconds.toFixed(2)} s  ${bytes.join(', ')}` : `FAILED ${run.error}`
  return `  [${scenario.id} ${pair}/${PAIRS}] ${p.id.padEnd(20)} ${what}`
}

/** every pipeline of the scenario PAIRS times, the order alternating from pair to pair */
async function runScenario(scenario: Scenario, touched: Set<EngineName>): Promise<Map<string, PipelineResult>> {
  console.log(`running ${scenario.title}`)
  const raw = new Map<string, Run[]>(scenario.pipelines.map((p) => [p.id, []]))
  for (let pair = 1; pair <= PAIRS; pair++) {
    for (const p of alternating(pair, scenario.pipelines)) {
      for (const d of p.reset.dests) {
        touched.add(d.engine)
        await resetEngine(d.engine, p.reset.state)
      }

      const result = await p.run(pair)
      await verify(result, scenario.image, p.verifyDests)
      raw.get(p.id)!.push(result)
      console.log(runLine(scenario, pair, p, result))
    }
  }

  return summarize(scenario, raw)
}

async function main(): Promise<void> {
  const started = new Date()
  await setup()
  const info = await machine()
  sizes = await measureSizes()
  console.log(`\n## transship image copy benchmark, ${started.toISOString()}\n`)
  console.log(
    `commit ${commitOf(info)}, ${info.cpus} CPUs, kernel ${info.kernel}, node ${info.node}, source engine ${info.source}, ${PAIRS} pair(s)`,
  )
  console.log(
    `bench/app:1: docker-archive ${fmtBytes(sizes.app1Archive)}, zstd -1 ${fmtBytes(sizes.app1Zstd1)}; the ${sizes.missingOverBase.layers} layers missing over bench/base:1: ${fmtBytes(sizes.missingOverBase.raw)}, zstd -1 ${fmtBytes(sizes.missingOverBase.zstd1)}\n`,
  )

  const scenarioReports: Record<string, unknown> = {}
  const report = {machine: info, pairs: PAIRS, scenarios: scenarioReports, sizes, startedAt: started.toISOString()}
  const resultsDir = path.join(HERE, 'results')
  const resultsFile = path.join(resultsDir, 'latest.json')
  await mkdir(resultsDir, {recursive: true})

  const touched = new Set<EngineName>()
  try {
    for (const scenario of scenarios()) {
      const scenarioStart = performance.now()
      const results = await runScenario(scenario, touched)
      console.log(`\n${table(scenario, results)}\n`)
      scenarioReports[scenario.id] = {
        baseline: scenario.baseline,
        image: scenario.image,
        pipelines: Object.fromEntries(results),
        targets: scenario.targets.map((t) => {
          const c = t.check(results)
          return {description: t.description, met: c?.[1], value: c?.[0]}
        }),
        title: scenario.title,
        wallSeconds: Math.round((performance.now() - scenarioStart) / 1000),
      }
      // written after every scenario: an interrupted run keeps what it measured
      await saveResults(resultsFile, {...report, finishedAt: new Date().toISOString()})
    }
  } finally {
    if (!args.keep) {
      for (const engine of touched) {
        try {
          await resetEngine(engine, 'cold')
        } catch (error) {
          console.error(`cleaning the bench images off the ${engine} engine failed: ${(error as Error).message}`)
        }
      }
    }

    await rm(TMP_DIR, {force: true, recursive: true})
    // the namespace is the bench's own: tear it down unless told to keep things (or it was not ours to set up)
    if (!args.keep && !args['no-setup']) await exec(['bash', path.join(HERE, 'link.sh'), 'down'], {inherit: true})
  }

  console.log(`raw results: ${path.relative(process.cwd(), resultsFile)}`)
}

if (args.help) {
  console.log(USAGE)
} else {
  await main()
}
