// The volume benchmark: `transship volume copy` measured side by side with the shell pipelines it has to
// beat (BENCHMARKS.md: no slower than tar | zstd | ssh, loopback and 100 Mbit/s; a re-sync after 1 % of
// the files changed within 2x of rsync), alternating, on the test bed's classic engine (source) and remote
// engine (destination, reached over SSH on loopback or over the 100 Mbit/s link of link.sh).
//
//   node --import tsx test/bench/volume-bench.ts [--scenarios loopback,link,resync] [--pairs 3] [--keep]
//
// Needs root and the test bed (test/bed/up.sh), a built CLI (npm run build), zstd and rsync (installed with
// apt-get when missing). Builds the workload volume on the classic engine once (idempotent: a spec file in
// the volume says what it holds) and brings the link up (link.sh up) when a link scenario runs. Prints one
// markdown table per scenario and writes the raw results to test/bench/results/volume-latest.json. Never
// fails on timing: the exit status is non-zero only when the harness itself cannot run.
import {existsSync} from 'node:fs'
import {chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import type {EngineName} from '../bed/types.js'

import {
  alternating,
  benchEnv,
  commitOf,
  COMMON_OPTIONS,
  countCell,
  DOCKER,
  f2,
  firstLine,
  fmtBytes,
  fmtRss,
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
const RUN_TIMEOUT_MS = 900_000
const DST_PREFIX = 'bench-vol-dst-'
const SYNC_VOLUME = 'bench-vol-sync'
const ALL_SCENARIOS = ['loopback', 'link', 'resync', 'resync-link'] as const
type ScenarioId = (typeof ALL_SCENARIOS)[number]

// ---------------------------------------------------------------------------------------------
// command line
// ---------------------------------------------------------------------------------------------

const {values: args} = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    'link-workload': {default: 'full', type: 'string'},
    scenarios: {default: 'loopback,link,resync', type: 'string'},
  },
})

const USAGE = `usage: node --import tsx test/bench/volume-bench.ts [options]

  --scenarios LIST       which scenarios to run (default: loopback,link,resync)
                           loopback     full copy to the remote engine over the bed's sshd (127.0.0.1:2222)
                           link         full copy over the 100 Mbit/s link (10.77.0.2)
                           resync       --mode sync vs rsync after 1 % of the files changed, over loopback
                           resync-link  the same over the link
  --pairs N              runs of every pipeline per scenario, alternating (default 3)
  --link-workload W      full (~1 GB, the default) or small (~300 MB) for the link scenarios
  --cli PATH             the transship entry point, run with node (default bin/run.js)
  --keep                 leave the sync volume (${SYNC_VOLUME}) and the link up afterwards
                         (the workload volumes always stay: they are built once)`

const PAIRS = parsePairs(args.pairs)
const SCENARIO_IDS = args.scenarios
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean) as ScenarioId[]
for (const id of SCENARIO_IDS) {
  if (!ALL_SCENARIOS.includes(id)) throw new Error(`--scenarios: unknown scenario "${id}"`)
}

if (!['full', 'small'].includes(args['link-workload'])) throw new Error('--link-workload: full or small')

// ---------------------------------------------------------------------------------------------
// the bed, the destinations
// ---------------------------------------------------------------------------------------------

const bed = await loadTestbed()
/** the environment of every command: no user docker config, Debian's docker CLI first on PATH */
const baseEnv = () => benchEnv(bed)
const bench = runner({env: baseEnv(), timeoutMs: RUN_TIMEOUT_MS})
const {exec, mustExec} = bench
const bash = (script: string, options: Parameters<typeof exec>[1] = {}) =>
  mustExec(['bash', '-euo', 'pipefail', '-c', script], options)
const BENCH_DIR = path.join(bed.stateDir, 'bench')

function dk(engine: EngineName, ...rest: string[]): string[] {
  return [DOCKER, '-H', bed.engines[engine].host, ...rest]
}

interface Destination {
  name: string
  /** the --to of transship */
  url: string
  host: string
  port: number
  knownHosts: string
  /** the host-side interface whose counters are the bytes on the wire */
  wire?: string
}

const LOOPBACK: Destination = {
  host: bed.ssh.host,
  knownHosts: bed.ssh.knownHosts,
  name: `remote engine over the bed's sshd (${bed.ssh.host}:${bed.ssh.port})`,
  port: bed.ssh.port,
  url: `ssh://root@${bed.ssh.host}:${bed.ssh.port}${bed.engines.remote.socket}`,
}
const LINK: Destination = {
  host: LINK_ADDR,
  knownHosts: path.join(BENCH_DIR, 'known_hosts'),
  name: `remote engine over the 100 Mbit/s link (${LINK_ADDR})`,
  port: 22,
  url: `ssh://root@${LINK_ADDR}${bed.engines.remote.socket}`,
  wire: LINK_IF,
}

let TMP_DIR = ''
let HOME_DIR = ''

/** a HOME for transship and the pipelines' ssh: the bed's key, known_hosts of both sshds */
async function makeHome(withLink: boolean): Promise<void> {
  TMP_DIR = await mkdtemp(path.join(os.tmpdir(), 'transship-volume-bench-'))
  HOME_DIR = path.join(TMP_DIR, 'home')
  const dotSsh = path.join(HOME_DIR, '.ssh')
  await mkdir(dotSsh, {mode: 0o700, recursive: true})
  await copyFile(bed.ssh.identityFile, path.join(dotSsh, 'id_ed25519'))
  await chmod(path.join(dotSsh, 'id_ed25519'), 0o600)
  await copyFile(`${bed.ssh.identityFile}.pub`, path.join(dotSsh, 'id_ed25519.pub'))
  const files = [bed.ssh.knownHosts, ...(withLink ? [LINK.knownHosts] : [])]
  const knownHosts = await Promise.all(files.map((f) => readFile(f, 'utf8')))
  await writeFile(path.join(dotSsh, 'known_hosts'), knownHosts.map((s) => s.trimEnd() + '\n').join(''))
}

/** the ssh command line (as a shell string, without the host) the shell pipelines use */
function sshArgs(dest: Destination): string {
  return [
    'ssh -F none',
    `-i ${sh(path.join(HOME_DIR, '.ssh/id_ed25519'))} -o IdentitiesOnly=yes -o BatchMode=yes`,
    `-o UserKnownHostsFile=${sh(path.join(HOME_DIR, '.ssh/known_hosts'))} -o GlobalKnownHostsFile=/dev/null`,
    `-o StrictHostKeyChecking=yes -p ${dest.port}`,
  ].join(' ')
}

async function mountpoint(engine: EngineName, name: string): Promise<string> {
  return (await mustExec(dk(engine, 'volume', 'inspect', '--format', '{{.Mountpoint}}', name))).trim()
}

async function removeVolume(engine: EngineName, name: string): Promise<void> {
  const r = await exec(dk(engine, 'volume', 'rm', '-f', name))
  if (r.code !== 0) console.error(`docker volume rm ${name} (${engine}): ${firstLine(r.stderr)}`)
}

// ---------------------------------------------------------------------------------------------
// the workload
// ---------------------------------------------------------------------------------------------

interface WorkloadSpec {
  /** small files of 1–16 KB (copied from /usr/lib and /usr/share, topped up with generated ones) */
  small: number
  /** MiB of random bytes, of a generated text log, of concatenated shared libraries */
  randomMiB: number
  textMiB: number
  libMiB: number
  /** a sparse file of this many MiB, 1 MiB of random written every 200 MiB */
  sparseMiB: number
  /** files with a user.* xattr */
  xattrs: number
  version: 1
}

const WORKLOADS: Record<'full' | 'small', {spec: WorkloadSpec; volume: string}> = {
  full: {
    spec: {libMiB: 200, randomMiB: 200, small: 20_000, sparseMiB: 1024, textMiB: 200, version: 1, xattrs: 20},
    volume: 'bench-vol-src',
  },
  small: {
    spec: {libMiB: 50, randomMiB: 100, small: 5000, sparseMiB: 512, textMiB: 100, version: 1, xattrs: 20},
    volume: 'bench-vol-src-small',
  },
}
const SPEC_FILE = '.bench-workload.json'

/** fills MP with the workload of SPEC (from scratch) */
function workloadScript(mp: string, spec: WorkloadSpec): string {
  const half = Math.floor(spec.small / 2)
  return `
cd ${sh(mp)}
find . -mindepth 1 -delete
mkdir -p small large
pick() { find "$1" -xdev -type f -size +1023c -size -16385c -print0 2>/dev/null | sort -z | head -z -n "$2"; }
{ pick /usr/lib ${half}; pick /usr/share ${spec.small - half}; } | tar --null -T - -cf - 2>/dev/null | tar -C small -xf - || true
have=$(find small -type f | wc -l)
mkdir -p small/generated
for ((i = have; i < ${spec.small}; i++)); do
  size=$((1024 + (i * 7919) % 15360))
  if ((i % 2)); then head -c "$size" /dev/urandom >small/generated/g$i.bin
  else head -c "$size" < <(base64 -w 76 /dev/urandom) >small/generated/g$i.txt; fi
done
ln -s ../large/text.log small/link-to-log
n=0
while IFS= read -r -d '' f && ((n < ${spec.xattrs})); do setfattr -n user.bench -v "v$n" "$f"; n=$((n + 1)); done \\
  < <(find small -type f -print0 | sort -z)
head -c ${spec.randomMiB}M /dev/urandom >large/random.bin
awk -v target=${spec.textMiB * 1024 * 1024} 'BEGIN {
  srand(7); split("GET POST PUT DELETE", m, " "); split("200 200 200 201 204 301 404 500", s, " ")
  while (bytes < target) {
    line = sprintf("2024-05-%02d %02d:%02d:%02d.%03d app[%d]: %s /api/v1/items/%d status=%s bytes=%d ms=%.1f user=u%04d",
      1 + int(rand() * 28), int(rand() * 24), int(rand() * 60), int(rand() * 60), int(rand() * 1000), 1000 + int(rand() * 50),
      m[1 + int(rand() * 4)], int(rand() * 100000), s[1 + int(rand() * 8)], int(rand() * 65536), rand() * 900, int(rand() * 5000))
    print line; bytes += length(line) + 1
  }
}' | head -c ${spec.textMiB}M >large/text.log || (($? == 141)) # awk writes past the end: SIGPIPE
find /usr/lib -xdev -type f -name '*.so*' -size +100k -print0 2>/dev/null | sort -z >"$TMPDIR/libs"
[[ -s $TMPDIR/libs ]] || { echo 'no shared libraries under /usr/lib' >&2; exit 1; }
while :; do xargs -0 cat <"$TMPDIR/libs" || break; done 2>/dev/null | head -c ${spec.libMiB}M >large/libs.bin || true
truncate -s ${spec.sparseMiB}M large/sparse.img
for ((off = 0; off < ${spec.sparseMiB}; off += 200)); do
  dd if=/dev/urandom of=large/sparse.img bs=1M count=1 seek=$off conv=notrunc status=none
done
`
}

interface Workload {
  apparentBytes: number
  diskBytes: number
  entries: number
  mountpoint: string
  name: string
  spec: WorkloadSpec
}

/** the workload volume on the classic engine, built when missing or of another spec */
async function ensureWorkload(which: 'full' | 'small'): Promise<Workload> {
  const {spec, volume} = WORKLOADS[which]
  await mustExec(dk('classic', 'volume', 'create', volume))
  const mp = await mountpoint('classic', volume)
  const want = JSON.stringify(spec)
  const have = await readFile(path.join(mp, SPEC_FILE), 'utf8').catch(() => '')
  if (have.trim() !== want) {
    console.log(`building the workload volume ${volume} (${want}) …`)
    const started = performance.now()
    await bash(workloadScript(mp, spec), {env: {...baseEnv(), TMPDIR: TMP_DIR}, timeoutMs: 1_800_000})
    await writeFile(path.join(mp, SPEC_FILE), want + '\n')
    console.log(`  built in ${((performance.now() - started) / 1000).toFixed(0)} s`)
  }

  const [apparent, disk, entries] = (
    await bash(`du -sb ${sh(mp)} | cut -f1; du -sB1 ${sh(mp)} | cut -f1; find ${sh(mp)} -mindepth 1 | wc -l`)
  )
    .trim()
    .split('\n')
    .map(Number)
  return {apparentBytes: apparent!, diskBytes: disk!, entries: entries!, mountpoint: mp, name: volume, spec}
}

// ---------------------------------------------------------------------------------------------
// checking a destination
// ---------------------------------------------------------------------------------------------

interface Check {
  /** entries of the source missing or different at the destination (type, size, mode, owner, mtime to the second, link target) */
  differing: number
  /** of which the first few */
  examples: string[]
  /** regular files whose mtime matches to the second but not to the nanosecond */
  subsecondLost: number
  diskBytes: number
  xattrs: number
}

/** a listing of MP, one line per entry, keyed by path */
async function listing(mp: string): Promise<Map<string, {line: string; ns: string}>> {
  const out = await bash(
    `cd ${sh(mp)} && find . -mindepth 1 ! -name .transship-incomplete ! -name ${SPEC_FILE} -printf '%P\\0%y %s %m %U:%G %l\\0%T@\\0'`,
  )
  const parts = out.split('\0')
  const map = new Map<string, {line: string; ns: string}>()
  for (let i = 0; i + 2 < parts.length; i += 3) {
    const [p, line, t] = [parts[i]!, parts[i + 1]!, parts[i + 2]!]
    const dir = line.startsWith('d ')
    // directory sizes depend on the filesystem's history; their mtimes on the order things were written
    map.set(p, {line: dir ? line.replace(/^d \d+ /, 'd ') : `${line} ${t.split('.')[0]}`, ns: dir ? '' : t})
  }

  return map
}

async function check(srcMp: string, dstMp: string): Promise<Check> {
  const [src, dst] = await Promise.all([listing(srcMp), listing(dstMp)])
  let differing = 0
  let subsecondLost = 0
  const examples: string[] = []
  for (const [p, s] of src) {
    const d = dst.get(p)
    if (d?.line !== s.line) {
      differing += 1
      if (examples.length < 3) examples.push(`${p}: ${s.line} → ${d?.line ?? 'missing'}`)
    } else if (s.line.startsWith('f ') && d.ns !== s.ns) {
      subsecondLost += 1
    }
  }

  for (const p of dst.keys()) {
    if (!src.has(p)) {
      differing += 1
      if (examples.length < 3) examples.push(`${p}: only at the destination`)
    }
  }

  const extra = await bash(
    `du -sB1 ${sh(dstMp)} | cut -f1; getfattr -R -d -m '^user\\.' ${sh(dstMp)} 2>/dev/null | grep -c '^user\\.' || true`,
  )
  const [disk, xattrs] = extra.trim().split('\n').map(Number)
  return {differing, diskBytes: disk!, examples, subsecondLost, xattrs: xattrs ?? 0}
}

// ---------------------------------------------------------------------------------------------
// measuring one run
// ---------------------------------------------------------------------------------------------

interface Run {
  pair: number
  ok: boolean
  error?: string
  seconds: number
  /** kB; transship: its largest process (itself); a shell pipeline: its largest local process */
  peakRssKb?: number
  /** bytes leaving / entering this host on the link's interface (link scenarios) */
  wireTx?: number
  wireRx?: number
  /** transship's --json */
  reported?: {bytes?: number; files?: number; seconds?: number; verified?: boolean}
  check?: Check
}

/** runs argv under /usr/bin/time -f %M, with the link's counters read around it */
async function measured(pair: number, argv: string[], dest: Destination, env: NodeJS.ProcessEnv): Promise<Run> {
  const {exec: r, peakRssKb, wireRx, wireTx} = await bench.measured(argv, {env, wire: dest.wire})
  const run: Run = {ok: r.code === 0, pair, peakRssKb, seconds: r.seconds, wireRx, wireTx}
  if (!run.ok) {
    const why = r.stderr.replace(/^Command (exited with non-zero status|terminated by signal).*$/m, '')
    run.error = `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${firstLine(why) || firstLine(r.stdout)}`.slice(
      0,
      300,
    )
  }

  if (argv.includes('--json') && r.code === 0) {
    try {
      run.reported = JSON.parse(r.stdout) as Run['reported']
    } catch {
      run.ok = false
      run.error = `--json output is not JSON: ${firstLine(r.stdout).slice(0, 120)}`
    }
  }

  return run
}

function transship(pair: number, volume: string, dest: Destination, as: string, mode: string): Promise<Run> {
  const argv = [process.execPath, path.resolve(REPO, args.cli), 'volume', 'copy', volume, '--from', 'local']
  argv.push('--to', dest.url, '--as', as, '--mode', mode, '--json')
  return measured(pair, argv, dest, {...baseEnv(), DOCKER_HOST: bed.engines.classic.host, HOME: HOME_DIR})
}

function shell(pair: number, script: string, dest: Destination): Promise<Run> {
  return measured(pair, ['bash', '-o', 'pipefail', '-c', script], dest, {...baseEnv(), HOME: HOME_DIR})
}

// ---------------------------------------------------------------------------------------------
// scenarios
// ---------------------------------------------------------------------------------------------

interface Pipeline {
  id: string
  kind: 'baseline' | 'transship'
  label: string
  /** what it keeps and checks, for the table */
  keeps: string
  run(pair: number): Promise<Run>
}

interface Scenario {
  id: ScenarioId
  title: string
  dest: Destination
  workload: Workload
  pipelines: Pipeline[]
  notes: string[]
  /** before every run: puts the destination in place; resolves to its name and mount point */
  before(pair: number, id: string): Promise<{name: string; mp: string}>
  /** the volume the destination must equal afterwards */
  sourceMp: string
}

let dstCounter = 0
const dstName = () => `${DST_PREFIX}${process.pid}-${++dstCounter}`
/** the destination of the current run (set by the scenario's before) */
let current: {mp: string; name: string} = {mp: '', name: ''}

/** full copy: transship creates the destination itself; the baseline gets an empty one made for it */
function copyScenario(id: 'link' | 'loopback', dest: Destination, workload: Workload): Scenario {
  const baseline: Pipeline = {
    id: 'tar-zstd-ssh',
    keeps:
      'plain `tar -c` (GNU format): no xattrs/ACLs, holes written out, mtimes to the second; verifies nothing; the destination volume is made beforehand, untimed',
    kind: 'baseline',
    label: "tar -cf - . | zstd -T0 -3 | ssh 'zstd -d | tar -xf -'",
    run(pair) {
      const remote = `zstd -q -d | tar -C ${sh(current.mp)} -xf -`
      return shell(
        pair,
        `tar -C ${sh(workload.mountpoint)} -cf - . | zstd -q -T0 -3 | ${sshArgs(dest)} root@${dest.host} ${sh(remote)}`,
        dest,
      )
    },
  }
  const ts: Pipeline = {
    id: 'transship',
    keeps:
      'xattrs, ACLs, holes, numeric owners, ns mtimes; creates the destination volume, then reads it back and compares (timed)',
    kind: 'transship',
    label: `transship volume copy --to ${dest.url.replace(/\/run\/.*$/, '/…')}`,
    run: (pair) => transship(pair, workload.name, dest, current.name, 'create'),
  }
  return {
    async before(_pair, pipeline) {
      const name = dstName()
      if (pipeline === 'transship') return {mp: '', name}
      await mustExec(dk('remote', 'volume', 'create', name))
      return {mp: await mountpoint('remote', name), name}
    },
    dest,
    id,
    notes: [
      `workload: ${describe(workload)}`,
      ...(dest.wire
        ? [
            'wire: bytes this host sent / received on the link’s interface (TCP/IP included); transship receives the destination’s tar stream back (zstd) to verify it',
          ]
        : []),
    ],
    pipelines: [baseline, ts],
    sourceMp: workload.mountpoint,
    title: `${id}: full copy of ${workload.name} to a fresh volume on the ${dest.name}`,
    workload,
  }
}

/** rewrites 1 % of the small files (new random content, same size) and appends 1 MiB to the text log */
async function mutate(mp: string, pair: number, pipelineIndex: number): Promise<number> {
  const out = await bash(`
cd ${sh(mp)}
n=0
while IFS= read -r -d '' f; do
  size=$(stat -c %s "$f"); head -c "$size" /dev/urandom >"$f"; n=$((n + 1))
done < <(find small -type f -print0 | sort -z | sed -z -n '${((pair * 7 + pipelineIndex * 3) % 100) + 1}~100p')
head -c 1M /dev/urandom >>large/text.log
echo "$n"`)
  return Number(out.trim())
}

/** re-sync: a destination equal to the sync volume (copied locally, untimed), then 1 % of the files change */
function resyncScenario(id: 'resync' | 'resync-link', dest: Destination, workload: Workload): Scenario {
  const syncMp = {value: ''}
  const rsync: Pipeline = {
    id: 'rsync',
    keeps: 'rsync -aHAXS: xattrs, ACLs, holes, hardlinks, ns mtimes; compares size and mtime only',
    kind: 'baseline',
    label: 'rsync -aHAXS --numeric-ids --delete -e ssh',
    run: (pair) =>
      shell(
        pair,
        `rsync -aHAXS --numeric-ids --delete -e ${sh(sshArgs(dest))} ${sh(syncMp.value + '/')} ${sh(`root@${dest.host}:${current.mp}/`)}`,
        dest,
      ),
  }
  const ts: Pipeline = {
    id: 'transship',
    keeps: 'reads both volumes whole (manifests), sends what differs, then reads the destination back and compares',
    kind: 'transship',
    label: `transship volume copy --mode sync --to ${dest.url.replace(/\/run\/.*$/, '/…')}`,
    run: (pair) => transship(pair, SYNC_VOLUME, dest, current.name, 'sync'),
  }
  const changed: number[] = []
  const scenario: Scenario = {
    async before(pair, pipeline) {
      if (!syncMp.value) {
        // a copy of the workload, so the changes never touch it
        await removeVolume('classic', SYNC_VOLUME)
        await mustExec(dk('classic', 'volume', 'create', SYNC_VOLUME))
        syncMp.value = await mountpoint('classic', SYNC_VOLUME)
        await bash(`cp -a ${sh(workload.mountpoint + '/.')} ${sh(syncMp.value + '/')}`, {timeoutMs: 1_800_000})
        scenario.sourceMp = syncMp.value
      }

      const name = dstName()
      await mustExec(dk('remote', 'volume', 'create', name))
      const mp = await mountpoint('remote', name)
      await bash(`cp -a ${sh(syncMp.value + '/.')} ${sh(mp + '/')}`, {timeoutMs: 1_800_000})
      changed.push(await mutate(syncMp.value, pair, pipeline === 'rsync' ? 0 : 1))
      // what was just written sits in the page cache on both sides for both pipelines alike
      return {mp, name}
    },
    dest,
    id,
    notes: [
      `workload: ${describe(workload)}; the source is ${SYNC_VOLUME}, a copy of it (the changes accumulate from run to run)`,
      'before every run (untimed): a destination volume made equal to the source with `cp -a`, then the source changed: 1 % of the small files rewritten (same size, new random bytes), 1 MiB appended to large/text.log',
      ...(dest.wire ? ['wire: bytes this host sent / received on the link’s interface'] : []),
    ],
    pipelines: [rsync, ts],
    sourceMp: '',
    title: `${id}: re-sync of ${SYNC_VOLUME} after 1 % of the files changed, to the ${dest.name}`,
    workload,
  }
  return scenario
}

function describe(w: Workload): string {
  const s = w.spec
  return `${w.name}: ${w.entries} entries, ${fmtBytes(w.apparentBytes)} apparent / ${fmtBytes(w.diskBytes)} on disk (${s.small} files of 1–16 KB, ${s.randomMiB} MiB random, ${s.textMiB} MiB text log, ${s.libMiB} MiB shared libraries, a ${s.sparseMiB} MiB sparse file, ${s.xattrs} user xattrs)`
}

// ---------------------------------------------------------------------------------------------
// statistics and output
// ---------------------------------------------------------------------------------------------

interface Summary {
  medianSeconds: Record<string, number | undefined>
  /** median over pairs of transship seconds / baseline seconds */
  ratio?: number
  maxRssKb?: number
}

function summarize(scenario: Scenario, raw: Map<string, Run[]>): Summary {
  const ok = (id: string) => (raw.get(id) ?? []).filter((r) => r.ok)
  const base = scenario.pipelines.find((p) => p.kind === 'baseline')!.id
  const rss = ok('transship').flatMap((r) => (r.peakRssKb ? [r.peakRssKb] : []))
  return {
    maxRssKb: rss.length > 0 ? Math.max(...rss) : undefined,
    medianSeconds: Object.fromEntries(scenario.pipelines.map((p) => [p.id, median(ok(p.id).map((r) => r.seconds))])),
    ratio: pairedMedian(raw.get('transship') ?? [], raw.get(base) ?? [], (t, b) => t.seconds / b.seconds),
  }
}

/** one table row: a pipeline's medians, its last destination check, its peak RSS */
function row(scenario: Scenario, p: Pipeline, runs: Run[], s: Summary): string {
  const ok = runs.filter((r) => r.ok)
  const time =
    ok.length > 0
      ? `${f2(s.medianSeconds[p.id])} (${countCell(runs)})`
      : `failed: ${runs.find((r) => !r.ok)?.error ?? 'no run'}`
  const ratio = p.kind === 'baseline' ? '1 (baseline)' : f2(s.ratio, 'x')
  const last = ok.at(-1)?.check
  const checkCell = last
    ? [
        last.differing === 0 ? 'equal' : `${last.differing} differ`,
        `${fmtBytes(last.diskBytes)} on disk`,
        `xattrs ${last.xattrs}/${scenario.workload.spec.xattrs}`,
        ...(last.subsecondLost > 0 ? [`${last.subsecondLost} sub-second mtimes lost`] : []),
      ].join(', ')
    : '—'
  const rss = Math.max(0, ...ok.map((r) => r.peakRssKb ?? 0))
  const rssCell = rss ? `${fmtRss(rss)}${p.kind === 'baseline' ? '*' : ''}` : '—'
  const wireCell = scenario.dest.wire
    ? [`${fmtBytes(median(ok.map((r) => r.wireTx)))} / ${fmtBytes(median(ok.map((r) => r.wireRx)))}`]
    : []
  return tableRow([p.label, time, ratio, ...wireCell, checkCell, rssCell, p.keeps])
}

function targets(scenario: Scenario, s: Summary, fullCopy?: number): string[] {
  const resync = scenario.id.startsWith('resync')
  const limit = resync ? 2 : 1
  const what = resync ? 'within 2x of rsync' : 'no slower than the tar/zstd/ssh pipeline'
  const lines = [
    `- target: transship ${what} (ratio ≤ ${limit}): ${s.ratio === undefined ? 'n/a' : verdict(f2(s.ratio, 'x'), s.ratio <= limit)}`,
  ]
  const t = s.medianSeconds.transship
  if (resync) {
    const value =
      t === undefined || fullCopy === undefined
        ? 'n/a (that scenario did not run)'
        : verdict(`${t.toFixed(2)} s / ${fullCopy.toFixed(2)} s = ${f2(t / fullCopy, 'x')}`, t / fullCopy <= 0.25)
    lines.push(
      `- target: re-sync far less than a full copy (≤ 0.25x of transship's full copy in this run's ${scenario.dest.wire ? 'link' : 'loopback'} scenario): ${value}`,
    )
  }

  const rss = s.maxRssKb
  lines.push(
    `- target: transship peak RSS under 200 MiB: ${rss === undefined ? 'n/a' : verdict(fmtRss(rss), rss < 200 * 1024)}`,
  )
  return lines
}

function table(scenario: Scenario, raw: Map<string, Run[]>, s: Summary, fullCopy?: number): string {
  const wire = Boolean(scenario.dest.wire)
  return [
    `### ${scenario.title}`,
    '',
    `| pipeline | median wall s | transship / baseline | ${wire ? 'wire tx / rx | ' : ''}destination check | peak RSS | keeps / checks |`,
    `|---|---|---|${wire ? '---|' : ''}---|---|---|`,
    ...scenario.pipelines.map((p) => row(scenario, p, raw.get(p.id) ?? [], s)),
    '',
    ...targets(scenario, s, fullCopy),
    ...scenario.notes.map((n) => `- ${n}`),
    '- ratio: median over pairs of (transship time / baseline time of the same pair); destination check (last run): type, size, mode, owner, mtime to the second and link target of every entry vs the source, its disk usage, the user xattrs found; peak RSS* of a shell pipeline: its largest local process',
  ].join('\n')
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

async function machine(): Promise<Record<string, string>> {
  return machineInfo(bench, {
    rsync: ['rsync', '--version'],
    ssh: ['ssh', '-V'],
    tar: ['tar', '--version'],
    zstd: ['zstd', '-V'],
  })
}

let linkOurs = false

async function setup(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (netns, the volumes’ mount points)')
  if (!existsSync(path.resolve(REPO, args.cli))) throw new Error(`${args.cli} is missing: npm run build`)
  for (const tool of ['zstd', 'getfattr', 'setfattr']) {
    if ((await exec(['bash', '-c', `command -v ${tool}`])).code !== 0) throw new Error(`${tool} is missing`)
  }

  if ((await exec(['bash', '-c', 'command -v rsync'])).code !== 0) {
    console.log('rsync is missing: apt-get install -y rsync')
    const r = await exec(['apt-get', 'install', '-y', '-q', 'rsync'], {timeoutMs: 600_000})
    if (r.code !== 0) throw new Error(`apt-get install rsync failed: ${firstLine(r.stderr)}`)
  }

  const withLink = SCENARIO_IDS.some((id) => id.includes('link'))
  if (withLink) {
    linkOurs = (await exec(['ip', 'netns', 'list'])).stdout.split('\n').every((l) => !l.startsWith('tsbench'))
    const r = await exec(['bash', path.join(HERE, 'link.sh'), 'up'], {inherit: true, timeoutMs: 120_000})
    if (r.code !== 0) throw new Error(`test/bench/link.sh up failed (exit ${r.code})`)
  }

  await makeHome(withLink)
}

/** the destination of a successful run must equal the source */
async function checkRun(run: Run, sourceMp: string): Promise<void> {
  if (!run.ok) return
  current.mp ||= await mountpoint('remote', current.name)
  run.check = await check(sourceMp, current.mp)
  if (run.check.differing > 0) {
    run.ok = false
    run.error = `WRONG RESULT: ${run.check.differing} entries differ (${run.check.examples.join('; ')})`
  }
}

async function runScenario(scenario: Scenario): Promise<Map<string, Run[]>> {
  console.log(`running ${scenario.title}`)
  const raw = new Map<string, Run[]>(scenario.pipelines.map((p) => [p.id, []]))
  for (let pair = 1; pair <= PAIRS; pair++) {
    for (const p of alternating(pair, scenario.pipelines)) {
      current = await scenario.before(pair, p.id)
      const run = await p.run(pair)
      try {
        await checkRun(run, scenario.sourceMp)
      } finally {
        await removeVolume('remote', current.name)
      }

      raw.get(p.id)!.push(run)
      const bytes = [
        run.wireTx === undefined ? '' : `wire tx ${fmtBytes(run.wireTx)} rx ${fmtBytes(run.wireRx)}`,
        run.reported?.bytes === undefined ? '' : `tar stream ${fmtBytes(run.reported.bytes)}`,
        run.peakRssKb === undefined ? '' : `rss ${fmtRss(run.peakRssKb)}`,
        run.check ? `dst ${fmtBytes(run.check.diskBytes)} on disk, xattrs ${run.check.xattrs}` : '',
      ].filter(Boolean)
      console.log(
        `  [${scenario.id} ${pair}/${PAIRS}] ${p.id.padEnd(14)} ${run.ok ? `${run.seconds.toFixed(2)} s  ${bytes.join(', ')}` : `FAILED ${run.error}`}`,
      )
    }
  }

  return raw
}

async function main(): Promise<void> {
  const started = new Date()
  await setup()
  const info = await machine()
  const full = await ensureWorkload('full')
  const linkWorkload = args['link-workload'] === 'small' ? await ensureWorkload('small') : full
  const make: Record<ScenarioId, () => Scenario> = {
    link: () => copyScenario('link', LINK, linkWorkload),
    loopback: () => copyScenario('loopback', LOOPBACK, full),
    resync: () => resyncScenario('resync', LOOPBACK, full),
    'resync-link': () => resyncScenario('resync-link', LINK, linkWorkload),
  }
  const scenarios = SCENARIO_IDS.map((id) => make[id]())

  console.log(`\n## transship volume copy benchmark, ${started.toISOString()}\n`)
  console.log(
    `commit ${commitOf(info)}, ${info.cpus} CPUs, kernel ${info.kernel}, node ${info.node}, ${info.tar}, ${info.zstd}, ${info.rsync}, ${PAIRS} pair(s)\n`,
  )
  const resultsDir = path.join(HERE, 'results')
  const resultsFile = path.join(resultsDir, 'volume-latest.json')
  await mkdir(resultsDir, {recursive: true})
  const reports: Record<string, unknown> = {}
  const fullCopy: Partial<Record<'link' | 'loopback', number>> = {}
  const tables: string[] = []
  try {
    for (const scenario of scenarios) {
      const scenarioStart = performance.now()
      const raw = await runScenario(scenario)
      const summary = summarize(scenario, raw)
      if (scenario.id === 'loopback' || scenario.id === 'link') fullCopy[scenario.id] = summary.medianSeconds.transship
      const text = table(scenario, raw, summary, fullCopy[scenario.dest.wire ? 'link' : 'loopback'])
      tables.push(text)
      console.log(`\n${text}\n`)
      reports[scenario.id] = {
        raw: Object.fromEntries(raw),
        summary,
        title: scenario.title,
        wallSeconds: Math.round((performance.now() - scenarioStart) / 1000),
        workload: scenario.workload,
      }
      // written after every scenario: an interrupted run keeps what it measured
      await saveResults(resultsFile, {
        finishedAt: new Date().toISOString(),
        machine: info,
        pairs: PAIRS,
        scenarios: reports,
        startedAt: started,
      })
    }
  } finally {
    const left = await exec(dk('remote', 'volume', 'ls', '-q', '--filter', `name=${DST_PREFIX}${process.pid}-`))
    for (const name of left.stdout.split('\n').filter(Boolean)) await removeVolume('remote', name)
    if (!args.keep) {
      if (SCENARIO_IDS.some((id) => id.startsWith('resync'))) await removeVolume('classic', SYNC_VOLUME)
      if (linkOurs) await exec(['bash', path.join(HERE, 'link.sh'), 'down'], {inherit: true})
    }

    await rm(TMP_DIR, {force: true, recursive: true})
  }

  if (tables.length > 1) console.log(`\n${tables.join('\n\n')}\n`)
  console.log(`raw results: ${path.relative(process.cwd(), resultsFile)}`)
}

if (args.help) {
  console.log(USAGE)
} else {
  await main()
}
