// The volume benchmark: `transship volume copy` measured side by side with the shell pipelines it has to
// beat (BENCHMARKS.md): a full copy no slower than tar | zstd | ssh (loopback and 100 Mbit/s, proof included);
// a re-sync with nothing changed, after 1 % of the files changed and after 10 MiB appended to one 200 MiB
// file within 2x of rsync, sending at most 1.5x rsync's bytes; a live move of a volume with a writer
// (--quiesce stop --presync) whose downtime is at most 2x the 1 % re-sync time, against stop, full copy,
// start. Alternating, on the test bed's classic engine (source) and remote engine (destination, reached over
// SSH on loopback or over the 100 Mbit/s link of link.sh).
//
//   node --import tsx test/bench/volume-bench.ts [--scenarios loopback,link,resync,...] [--pairs 3] [--keep]
//
// Needs root and the test bed (test/bed/up.sh), a built CLI (npm run build), zstd and rsync (installed with
// apt-get when missing). Builds the workload volume on the classic engine once (idempotent: a spec file in
// the volume says what it holds) and brings the link up (link.sh up) when a link scenario runs. Prints one
// markdown table per scenario and writes the raw results to test/bench/results/volume-latest.json. Never
// fails on timing, nor on a transship run that fails (its table cell says why): the exit status is non-zero
// only when the harness itself cannot run.
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
  MB,
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
/** the live scenario's writer: a container on the classic engine with SYNC_VOLUME mounted */
const WRITER = 'bench-vol-writer'
/** MiB appended to large/random.bin in the append scenarios */
const APPEND_MIB = 10
/** every scenario, in the order they run (the live one compares itself with resync's results) */
const ALL_SCENARIOS = [
  'loopback',
  'link',
  'resync',
  'resync-unchanged',
  'resync-append',
  'resync-link',
  'resync-unchanged-link',
  'resync-append-link',
  'live',
] as const
type ScenarioId = (typeof ALL_SCENARIOS)[number]
const DEFAULT_SCENARIOS = 'loopback,link,resync,resync-unchanged,resync-append,live'

// ---------------------------------------------------------------------------------------------
// command line
// ---------------------------------------------------------------------------------------------

const {values: args} = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    'link-workload': {default: 'full', type: 'string'},
    scenarios: {default: DEFAULT_SCENARIOS, type: 'string'},
    'ts-args': {default: '', type: 'string'},
  },
})

const USAGE = `usage: node --import tsx test/bench/volume-bench.ts [options]

  --scenarios LIST       which scenarios to run, in this order whatever the order given
                         (default: ${DEFAULT_SCENARIOS})
                           loopback               full copy to the remote engine over the bed's sshd (127.0.0.1:2222)
                           link                   full copy over the 100 Mbit/s link (10.77.0.2)
                           resync                 --mode sync vs rsync after 1 % of the files changed, over loopback
                           resync-unchanged       the same with nothing changed
                           resync-append          the same after ${APPEND_MIB} MiB appended to large/random.bin (200 MiB)
                           resync-link, resync-unchanged-link, resync-append-link
                                                  the three re-syncs over the link (not run by default)
                           live                   a volume with a running writer: --quiesce stop --presync vs
                                                  docker stop, tar|zstd|ssh, docker start; over loopback
  --pairs N              runs of every pipeline per scenario, alternating (default 3)
  --link-workload W      full (~1 GB, the default) or small (~300 MB) for the link scenarios
  --cli PATH             the transship entry point, run with node (default bin/run.js)
  --ts-args=ARGS         more arguments for every transship run (split on spaces), e.g. --ts-args="--to-access root"
  --keep                 leave the sync volume (${SYNC_VOLUME}) and the link up afterwards
                         (the workload volumes always stay: they are built once)`

const PAIRS = parsePairs(args.pairs)
const chosen = args.scenarios
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
for (const id of chosen) {
  if (!(ALL_SCENARIOS as readonly string[]).includes(id)) throw new Error(`--scenarios: unknown scenario "${id}"`)
}

const SCENARIO_IDS = ALL_SCENARIOS.filter((id) => chosen.includes(id))
const TS_ARGS = args['ts-args'].split(' ').filter(Boolean)

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

/**
 * The ssh command line (as a shell string, without the host) the shell pipelines use; it logs to LOG, where
 * it says on exit what it sent (`Transferred: sent N, received M bytes`).
 */
function sshArgs(dest: Destination, log: string): string {
  return [
    'ssh -F none',
    `-i ${sh(path.join(HOME_DIR, '.ssh/id_ed25519'))} -o IdentitiesOnly=yes -o BatchMode=yes`,
    `-o UserKnownHostsFile=${sh(path.join(HOME_DIR, '.ssh/known_hosts'))} -o GlobalKnownHostsFile=/dev/null`,
    `-o StrictHostKeyChecking=yes -o LogLevel=VERBOSE -E ${sh(log)} -p ${dest.port}`,
  ].join(' ')
}

let sshLogs = 0
const sshLog = () => path.join(TMP_DIR, `ssh-${++sshLogs}.log`)

/** what ssh says it sent and received (its -E log, removed) */
async function sshTransferred(log: string): Promise<undefined | {received: number; sent: number}> {
  const text = await readFile(log, 'utf8').catch(() => '')
  await rm(log, {force: true})
  const m = /Transferred: sent (\d+), received (\d+) bytes/.exec(text)
  return m ? {received: Number(m[2]), sent: Number(m[1])} : undefined
}

/** rsync --stats: its own "Total bytes sent / received" */
function rsyncStats(stdout: string): undefined | {received: number; sent: number} {
  const figure = (what: string) => {
    const m = new RegExp(`^Total bytes ${what}: ([\\d,.]+)`, 'm').exec(stdout)
    return m ? Number(m[1]!.replaceAll(/[,.]/g, '')) : undefined
  }

  const [sent, received] = [figure('sent'), figure('received')]
  return sent === undefined || received === undefined ? undefined : {received, sent}
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
  /** the live scenario: what the writer's files at the destination say (see checkLive) */
  writer?: string
}

/** a listing of MP, one line per entry, keyed by path; the top-level directories SKIP left out */
async function listing(mp: string, skip: readonly string[]): Promise<Map<string, {line: string; ns: string}>> {
  const prune = skip.map((d) => `-path ${sh(`./${d}`)} -prune -o `).join('')
  const out = await bash(
    `cd ${sh(mp)} && find . -mindepth 1 ${prune}! -name .transship-incomplete ! -name ${SPEC_FILE} -printf '%P\\0%y %s %m %U:%G %l\\0%T@\\0'`,
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

async function check(srcMp: string, dstMp: string, skip: readonly string[] = []): Promise<Check> {
  const [src, dst] = await Promise.all([listing(srcMp, skip), listing(dstMp, skip)])
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

/** what transship's --json says (the fields the benchmark reads) */
interface Reported {
  /** bytes that crossed between the hosts, as sent on the wire */
  bytes?: number
  files?: number
  seconds?: number
  /** stop → start of the containers --quiesce stop stopped */
  downtimeSeconds?: number
  /** how the data was sent: tar, rsync or files */
  method?: string
  verified?: boolean
}

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
  /** bytes sent to the destination: transship's `bytes`, rsync's own figure, else what ssh says it sent */
  bytesSent?: number
  /** what rsync or ssh says it received */
  bytesReceived?: number
  /** the live scenario: transship's downtimeSeconds; the whole stop, copy, start of the baseline */
  downtime?: number
  reported?: Reported
  check?: Check
}

/** runs argv under /usr/bin/time -f %M, with the link's counters read around it; its stdout too */
async function measured(
  pair: number,
  argv: string[],
  dest: Destination,
  env: NodeJS.ProcessEnv,
): Promise<{run: Run; stderr: string; stdout: string}> {
  const {exec: r, peakRssKb, wireRx, wireTx} = await bench.measured(argv, {env, wire: dest.wire})
  const run: Run = {ok: r.code === 0, pair, peakRssKb, seconds: r.seconds, wireRx, wireTx}
  if (!run.ok) {
    const why = r.stderr.replace(/^Command (exited with non-zero status|terminated by signal).*$/m, '')
    run.error = `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${firstLine(why) || firstLine(r.stdout)}`.slice(
      0,
      300,
    )
  }

  return {run, stderr: r.stderr, stdout: r.stdout}
}

/** the first line of the message of a `--json` error document, if TEXT is one */
function jsonErrorMessage(text: string): string | undefined {
  try {
    const document = JSON.parse(text) as {error?: {code?: string; message?: string}; message?: string}
    const message = document.error?.message ?? document.message
    if (!message) return undefined
    return `${document.error?.code ? `${document.error.code}: ` : ''}${firstLine(message)}`
  } catch {
    return undefined
  }
}

/** `transship volume copy VOLUME --from local --to DEST --as AS --mode MODE [EXTRA] --json` */
async function transship(
  pair: number,
  volume: string,
  dest: Destination,
  as: string,
  mode: string,
  extra: string[] = [],
): Promise<Run> {
  const argv = [process.execPath, path.resolve(REPO, args.cli), 'volume', 'copy', volume, '--from', 'local']
  argv.push('--to', dest.url, '--as', as, '--mode', mode, ...extra, ...TS_ARGS, '--json')
  const env = {...baseEnv(), DOCKER_HOST: bed.engines.classic.host, HOME: HOME_DIR}
  const {run, stderr, stdout} = await measured(pair, argv, dest, env)
  if (!run.ok) {
    // with --json, the error is a JSON document (on stdout or stderr): its message says why
    const message = jsonErrorMessage(stdout) ?? jsonErrorMessage(stderr.replace(/^Command exited with.*$/m, ''))
    if (message) run.error = `${run.error?.replace(/:.*$/s, '')}: ${message}`.slice(0, 300)
    return run
  }

  try {
    run.reported = JSON.parse(stdout) as Reported
  } catch {
    run.ok = false
    run.error = `--json output is not JSON: ${firstLine(stdout).slice(0, 120)}`
    return run
  }

  run.bytesSent = run.reported.bytes
  run.downtime = run.reported.downtimeSeconds
  return run
}

/**
 * Runs a bash script whose ssh logs to SSHLOG; its bytes: rsync's own figures (--stats) when it printed them,
 * else what ssh says it sent.
 */
async function shell(pair: number, script: string, dest: Destination, log: string): Promise<Run> {
  const {run, stdout} = await measured(pair, ['bash', '-o', 'pipefail', '-c', script], dest, {
    ...baseEnv(),
    HOME: HOME_DIR,
  })
  const transferred = rsyncStats(stdout) ?? (await sshTransferred(log))
  await rm(log, {force: true})
  run.bytesSent = transferred?.sent
  run.bytesReceived = transferred?.received
  return run
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
  kind: 'copy' | 'live' | 'resync'
  title: string
  dest: Destination
  workload: Workload
  pipelines: Pipeline[]
  notes: string[]
  /** before every run: puts the destination in place; resolves to its name and mount point */
  before(pair: number, id: string): Promise<{name: string; mp: string}>
  /** after every run (a successful one: once its destination equals the source): the scenario's own checks (sets run.error) */
  after?(run: Run, startedAt: number): Promise<void>
  /** after the last run */
  finish?(): Promise<void>
  /** the volume the destination must equal afterwards */
  sourceMp: string
  /** top-level directories the equality check leaves out (the live writer's, checked by `after`) */
  skip?: string[]
  /** the bytes target (transship's bytes / the baseline's), when the scenario has one */
  bytesLimit?: number
}

let dstCounter = 0
const dstName = () => `${DST_PREFIX}${process.pid}-${++dstCounter}`
/** the destination of the current run (set by the scenario's before) */
let current: {mp: string; name: string} = {mp: '', name: ''}

const shortUrl = (dest: Destination) => dest.url.replace(/\/run\/.*$/, '/…')

/** tar | zstd | ssh 'zstd -d | tar' of the volume at SRC into the current destination */
function tarPipeline(src: string, dest: Destination, log: string): string {
  const remote = `zstd -q -d | tar -C ${sh(current.mp)} -xf -`
  return `tar -C ${sh(src)} -cf - . | zstd -q -T0 -3 | ${sshArgs(dest, log)} root@${dest.host} ${sh(remote)}`
}

const TAR_KEEPS =
  'plain `tar -c` (GNU format): no xattrs/ACLs, holes written out, mtimes to the second; verifies nothing; the destination volume is made beforehand, untimed'

/** a fresh destination volume on the remote engine, for the shell pipelines (transship makes its own) */
async function freshDestination(pipeline: string): Promise<{name: string; mp: string}> {
  const name = dstName()
  if (pipeline === 'transship') return {mp: '', name}
  await mustExec(dk('remote', 'volume', 'create', name))
  return {mp: await mountpoint('remote', name), name}
}

/** full copy: transship creates the destination itself; the baseline gets an empty one made for it */
function copyScenario(id: 'link' | 'loopback', dest: Destination, workload: Workload): Scenario {
  const baseline: Pipeline = {
    id: 'tar-zstd-ssh',
    keeps: TAR_KEEPS,
    kind: 'baseline',
    label: "tar -cf - . | zstd -T0 -3 | ssh 'zstd -d | tar -xf -'",
    run(pair) {
      const log = sshLog()
      return shell(pair, tarPipeline(workload.mountpoint, dest, log), dest, log)
    },
  }
  const ts: Pipeline = {
    id: 'transship',
    keeps:
      'xattrs, ACLs, holes, numeric owners, ns mtimes; creates the destination volume, then proves it equal to the source (timed)',
    kind: 'transship',
    label: `transship volume copy --to ${shortUrl(dest)}`,
    run: (pair) => transship(pair, workload.name, dest, current.name, 'create'),
  }
  return {
    before: (_pair, pipeline) => freshDestination(pipeline),
    dest,
    id,
    kind: 'copy',
    notes: [
      `workload: ${describe(workload)}`,
      'bytes sent: what ssh says it sent (`Transferred: sent N`, its packets, encrypted), transship’s `bytes`',
      ...(dest.wire
        ? [
            'wire: bytes this host sent / received on the link’s interface (TCP/IP included), transship’s proof included',
          ]
        : []),
    ],
    pipelines: [baseline, ts],
    sourceMp: workload.mountpoint,
    title: `${id}: full copy of ${workload.name} to a fresh volume on the ${dest.name}`,
    workload,
  }
}

/** the sync volume: a copy of a workload, so that the changes never touch the workload itself */
const sync: {from: string; mp: string} = {from: '', mp: ''}

/** makes SYNC_VOLUME a copy of WORKLOAD, unless this invocation already did (its changes accumulate) */
async function ensureSyncVolume(workload: Workload): Promise<string> {
  if (sync.from === workload.name) return sync.mp
  await removeWriter()
  await removeVolume('classic', SYNC_VOLUME)
  await mustExec(dk('classic', 'volume', 'create', SYNC_VOLUME))
  sync.mp = await mountpoint('classic', SYNC_VOLUME)
  console.log(`  making ${SYNC_VOLUME} a copy of ${workload.name} (untimed)`)
  await bash(`cp -a ${sh(workload.mountpoint + '/.')} ${sh(sync.mp + '/')}`, {timeoutMs: 1_800_000})
  sync.from = workload.name
  return sync.mp
}

type Change = 'append' | 'files' | 'none'

/**
 * Changes the sync volume at MP: `files` rewrites 1 % of the small files (new random content, same size)
 * and appends 1 MiB to the text log; `append` appends APPEND_MIB MiB of random bytes to large/random.bin;
 * `none` nothing. Resolves to the number of files changed.
 */
async function mutate(mp: string, change: Change, pair: number, pipelineIndex: number): Promise<number> {
  if (change === 'none') return 0
  if (change === 'append') {
    await bash(`head -c ${APPEND_MIB}M /dev/urandom >>${sh(path.join(mp, 'large/random.bin'))}`)
    return 1
  }

  const out = await bash(`
cd ${sh(mp)}
n=0
while IFS= read -r -d '' f; do
  size=$(stat -c %s "$f"); head -c "$size" /dev/urandom >"$f"; n=$((n + 1))
done < <(find small -type f -print0 | sort -z | sed -z -n '${((pair * 7 + pipelineIndex * 3) % 100) + 1}~100p')
head -c 1M /dev/urandom >>large/text.log
echo "$n"`)
  return Number(out.trim()) + 1
}

const RESYNC_WHAT: Record<Change, string> = {
  append: `after ${APPEND_MIB} MiB appended to one file`,
  files: 'after 1 % of the files changed',
  none: 'with nothing changed',
}

/** re-sync: a destination equal to the sync volume (copied locally, untimed), then the source changes */
function resyncScenario(id: ScenarioId, dest: Destination, workload: Workload, change: Change): Scenario {
  const rsync: Pipeline = {
    id: 'rsync',
    keeps: 'rsync -aHAXS: xattrs, ACLs, holes, hardlinks, ns mtimes; compares size and mtime only, verifies nothing',
    kind: 'baseline',
    label: 'rsync -aHAXS --numeric-ids --delete --stats -e ssh',
    run(pair) {
      const log = sshLog()
      const target = `root@${dest.host}:${current.mp}/`
      return shell(
        pair,
        `rsync -aHAXS --numeric-ids --delete --stats -e ${sh(sshArgs(dest, log))} ${sh(sync.mp + '/')} ${sh(target)}`,
        dest,
        log,
      )
    },
  }
  const ts: Pipeline = {
    id: 'transship',
    keeps: 'sends what differs, then proves the destination equal to the source (timed)',
    kind: 'transship',
    label: `transship volume copy --mode sync --to ${shortUrl(dest)}`,
    run: (pair) => transship(pair, SYNC_VOLUME, dest, current.name, 'sync'),
  }
  const {randomMiB} = workload.spec
  const changeNote: Record<Change, string> = {
    append: `then ${APPEND_MIB} MiB of random bytes appended to large/random.bin (cut back to its ${randomMiB} MiB, untimed, before the copy)`,
    files: 'then 1 % of the small files rewritten (same size, new random bytes) and 1 MiB appended to large/text.log',
    none: 'nothing changed',
  }
  const changed: number[] = []
  const scenario: Scenario = {
    async before(pair, pipeline) {
      scenario.sourceMp = await ensureSyncVolume(workload)
      // the append scenario's file is the same size before every run
      if (change === 'append') await bash(`truncate -s ${randomMiB}M ${sh(path.join(sync.mp, 'large/random.bin'))}`)
      const name = dstName()
      await mustExec(dk('remote', 'volume', 'create', name))
      const mp = await mountpoint('remote', name)
      await bash(`cp -a ${sh(sync.mp + '/.')} ${sh(mp + '/')}`, {timeoutMs: 1_800_000})
      changed.push(await mutate(sync.mp, change, pair, pipeline === 'rsync' ? 0 : 1))
      // what was just written sits in the page cache on both sides for both pipelines alike
      return {mp, name}
    },
    bytesLimit: change === 'none' ? undefined : 1.5,
    dest,
    id,
    kind: 'resync',
    notes: [
      `workload: ${describe(workload)}; the source is ${SYNC_VOLUME}, a copy of it made once per invocation (the changes of every re-sync scenario accumulate in it)`,
      `before every run (untimed): a destination volume made equal to the source with \`cp -a\`, ${changeNote[change]}`,
      'bytes sent: rsync’s own `Total bytes sent` (--stats), transship’s `bytes`',
      ...(dest.wire ? ['wire: bytes this host sent / received on the link’s interface'] : []),
    ],
    pipelines: [rsync, ts],
    sourceMp: '',
    title: `${id}: re-sync of ${SYNC_VOLUME} ${RESYNC_WHAT[change]}, to the ${dest.name}`,
    workload,
  }
  return scenario
}

/**
 * The writer of the live scenario (busybox sh as PID 1): every 100 ms it appends its counter to
 * live/append.log, rewrites live/state (a rename) and one of five small files; it logs `start` when it
 * starts and `stop` when it is told to stop (SIGTERM, handled once its sleep ends), so a destination copied
 * while it is stopped holds the source's log up to that `stop`.
 */
const WRITER_SCRIPT = [
  'mkdir -p /data/live && cd /data/live',
  'n=$(cat state 2>/dev/null || echo 0)',
  'echo start >>append.log',
  'trap "echo stop >>append.log; exit 0" TERM',
  'while :; do',
  '  n=$((n + 1)); echo $n >>append.log',
  '  echo $n >state.tmp && mv state.tmp state',
  '  head -c $((1024 + n % 7 * 512)) /dev/urandom >f$((n % 5))',
  '  sleep 0.1',
  'done',
].join('\n')

/** `docker stop|start WRITER` as a shell string, for the baseline */
const writerCommand = (verb: 'start' | 'stop') =>
  `${DOCKER} -H ${sh(bed.engines.classic.host)} ${verb} ${WRITER} >/dev/null`

async function removeWriter(): Promise<void> {
  await exec(dk('classic', 'rm', '-f', WRITER))
}

/** the writer, started when it is not running */
async function ensureWriter(): Promise<void> {
  const state = await exec(dk('classic', 'inspect', '--format', '{{.State.Running}}', WRITER))
  if (state.code === 0 && state.stdout.trim() === 'true') return
  if (state.code === 0) {
    await mustExec(dk('classic', 'start', WRITER))
  } else {
    const run = ['run', '-d', '--name', WRITER, '--network', 'none', '-v', `${SYNC_VOLUME}:/data`]
    await mustExec(dk('classic', ...run, bed.images.busybox, 'sh', '-c', WRITER_SCRIPT))
  }

  // it has written something before the run starts
  await new Promise((resolve) => {
    setTimeout(resolve, 500)
  })
}

/** after a live run: whether the writer runs, and whether it was started during the run (so it was stopped) */
async function writerState(startedAt: number): Promise<{restarted: boolean; running: boolean}> {
  const inspect = await exec(dk('classic', 'inspect', '--format', '{{.State.Running}} {{.State.StartedAt}}', WRITER))
  const [running, startedText = ''] = inspect.stdout.trim().split(' ')
  // StartedAt has nanoseconds: milliseconds are enough
  const started = Date.parse(startedText.replace(/(\.\d{3})\d*/, '$1'))
  return {restarted: started >= startedAt, running: running === 'true'}
}

/**
 * After a live run: the destination holds the state of the writer's stop: its append.log is the source's up to
 * the source's last `stop`, its state file the last counter before it.
 */
async function checkLive(dstMp: string): Promise<string | undefined> {
  const [src, dst, state] = await Promise.all([
    readFile(path.join(sync.mp, 'live/append.log'), 'utf8'),
    readFile(path.join(dstMp, 'live/append.log'), 'utf8').catch(() => ''),
    readFile(path.join(dstMp, 'live/state'), 'utf8').catch(() => ''),
  ])
  const cut = src.lastIndexOf('\nstop\n')
  if (cut === -1) return 'the source’s live/append.log has no `stop`'
  if (dst !== src.slice(0, cut + '\nstop\n'.length)) {
    const lines = dst.trimEnd().split('\n')
    return `the destination’s live/append.log is not the source’s up to its last stop (${lines.length} lines, ending ${lines.at(-1)})`
  }

  const last = dst.trimEnd().split('\n').at(-2)
  if (state.trim() !== last) return `live/state is ${state.trim() || 'missing'}, the log’s last counter ${last}`
  return undefined
}

/** a live move: a writer runs on the volume; stopped, copied, started by either pipeline */
function liveScenario(dest: Destination, workload: Workload): Scenario {
  const stopCopyStart: Pipeline = {
    id: 'stop-copy-start',
    keeps: `${TAR_KEEPS}; its downtime is its whole run`,
    kind: 'baseline',
    label: "docker stop W && tar -cf - . | zstd -T0 -3 | ssh 'zstd -d | tar -xf -' && docker start W",
    async run(pair) {
      const log = sshLog()
      const script = `${writerCommand('stop')} && ${tarPipeline(sync.mp, dest, log)} && ${writerCommand('start')}`
      const run = await shell(pair, script, dest, log)
      run.downtime = run.ok ? run.seconds : undefined
      return run
    },
  }
  const ts: Pipeline = {
    id: 'transship',
    keeps:
      'copies while the writer runs, stops it, sends the final delta, proves the destination, starts it; downtime: its `downtimeSeconds`',
    kind: 'transship',
    label: `transship volume copy --quiesce stop --presync --to ${shortUrl(dest)}`,
    run: (pair) => transship(pair, SYNC_VOLUME, dest, current.name, 'create', ['--quiesce', 'stop', '--presync']),
  }
  const scenario: Scenario = {
    async after(run, startedAt) {
      const writer = await writerState(startedAt)
      if (!run.ok) {
        // a failed run must start what it stopped all the same
        if (!writer.running) run.error += '; and the writer was left stopped'
        return
      }

      let problem: string | undefined
      if (!writer.running) problem = 'the writer is not running after the run'
      else if (writer.restarted) problem = await checkLive(current.mp)
      else problem = 'the writer was not restarted during the run (never stopped?)'
      if (run.check) run.check.writer = problem ?? 'consistent'
      if (problem) {
        run.ok = false
        run.error = `WRONG RESULT: ${problem}`
      }
    },
    async before(_pair, pipeline) {
      scenario.sourceMp = await ensureSyncVolume(workload)
      await ensureWriter()
      return freshDestination(pipeline)
    },
    dest,
    finish: removeWriter,
    id: 'live',
    kind: 'live',
    notes: [
      `workload: ${describe(workload)}; the source is ${SYNC_VOLUME} (see the re-sync scenarios) with a writer container on the classic engine (${bed.images.busybox}, --network none, the volume at /data): every 100 ms it appends its counter to live/append.log, rewrites live/state and one of five small files, and logs \`stop\` when it stops`,
      'checked after every run: the writer runs again and was started during the run; the destination equals the source but for live/, and its live/append.log is the source’s up to the last `stop`, its live/state that log’s last counter (the copy holds the state of the stop)',
      'bytes sent: what ssh says it sent, transship’s `bytes` (the pre-sync included)',
    ],
    pipelines: [stopCopyStart, ts],
    skip: ['live'],
    sourceMp: '',
    title: `live: move of ${SYNC_VOLUME} with a running writer to a fresh volume on the ${dest.name}`,
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
  medianBytesSent: Record<string, number | undefined>
  medianDowntime: Record<string, number | undefined>
  /** median over pairs of transship seconds / baseline seconds */
  ratio?: number
  /** median over pairs of transship bytes sent / baseline bytes sent */
  bytesRatio?: number
  /** the live scenario: median over pairs of transship downtime / baseline downtime */
  downtimeRatio?: number
  maxRssKb?: number
}

function summarize(scenario: Scenario, raw: Map<string, Run[]>): Summary {
  const ok = (id: string) => (raw.get(id) ?? []).filter((r) => r.ok)
  const base = scenario.pipelines.find((p) => p.kind === 'baseline')!.id
  const rss = ok('transship').flatMap((r) => (r.peakRssKb ? [r.peakRssKb] : []))
  const medians = (pick: (r: Run) => number | undefined) =>
    Object.fromEntries(scenario.pipelines.map((p) => [p.id, median(ok(p.id).map((r) => pick(r)))]))
  const paired = (pick: (r: Run) => number | undefined) =>
    pairedMedian(raw.get('transship') ?? [], raw.get(base) ?? [], (t, b) => {
      const [x, y] = [pick(t), pick(b)]
      return x === undefined || !y ? undefined : x / y
    })
  return {
    bytesRatio: paired((r) => r.bytesSent),
    downtimeRatio: scenario.kind === 'live' ? paired((r) => r.downtime) : undefined,
    maxRssKb: rss.length > 0 ? Math.max(...rss) : undefined,
    medianBytesSent: medians((r) => r.bytesSent),
    medianDowntime: medians((r) => r.downtime),
    medianSeconds: medians((r) => r.seconds),
    ratio: paired((r) => r.seconds),
  }
}

/** bytes sent: kB below 1 MB (a re-sync of nothing sends little) */
const fmtSent = (n: number | undefined, missing: string) =>
  n !== undefined && n < MB ? `${(n / 1000).toFixed(1)} kB` : fmtBytes(n, missing)

/** the destination check of a pipeline's last successful run, for its table cell */
function checkCell(scenario: Scenario, ok: Run[]): string {
  const last = ok.at(-1)?.check
  if (!last) return '—'
  return [
    last.differing === 0 ? 'equal' : `${last.differing} differ`,
    ...(last.writer ? [`writer: ${last.writer}`] : []),
    `${fmtBytes(last.diskBytes)} on disk`,
    `xattrs ${last.xattrs}/${scenario.workload.spec.xattrs}`,
    ...(last.subsecondLost > 0 ? [`${last.subsecondLost} sub-second mtimes lost`] : []),
  ].join(', ')
}

/** the cells every table has: the pipeline (with transship's method), the failure if every run failed, ... */
function commonCells(scenario: Scenario, p: Pipeline, runs: Run[], s: Summary) {
  const ok = runs.filter((r) => r.ok)
  const methods = [...new Set(ok.flatMap((r) => (r.reported?.method ? [r.reported.method] : [])))]
  const rss = Math.max(0, ...ok.map((r) => r.peakRssKb ?? 0))
  return {
    base: p.kind === 'baseline',
    bytes: fmtSent(s.medianBytesSent[p.id], ok.length > 0 ? 'not reported' : '—'),
    check: checkCell(scenario, ok),
    failed: ok.length === 0 ? `failed: ${runs.find((r) => !r.ok)?.error ?? 'no run'}` : undefined,
    label: [
      p.label,
      ...(p.kind === 'transship' ? TS_ARGS : []),
      ...(methods.length > 0 ? [`(method: ${methods.join(', ')})`] : []),
    ].join(' '),
    ok,
    rss: rss ? `${fmtRss(rss)}${p.kind === 'baseline' ? '*' : ''}` : '—',
  }
}

/** one table row: a pipeline's medians, its last destination check, its peak RSS */
function row(scenario: Scenario, p: Pipeline, runs: Run[], s: Summary): string {
  const c = commonCells(scenario, p, runs, s)
  if (scenario.kind === 'live') {
    const downtime = s.medianDowntime[p.id]
    return tableRow([
      c.label,
      c.failed ?? `${f2(downtime)}${downtime === undefined ? ' (not reported)' : ''} (${countCell(runs)})`,
      c.base ? '1 (baseline)' : f2(s.downtimeRatio, 'x'),
      c.failed ? '—' : f2(s.medianSeconds[p.id]),
      c.bytes,
      c.check,
      c.rss,
      p.keeps,
    ])
  }

  const wire = scenario.dest.wire
    ? [`${fmtBytes(median(c.ok.map((r) => r.wireTx)))} / ${fmtBytes(median(c.ok.map((r) => r.wireRx)))}`]
    : []
  return tableRow([
    c.label,
    c.failed ?? `${f2(s.medianSeconds[p.id])} (${countCell(runs)})`,
    c.base ? '1 (baseline)' : f2(s.ratio, 'x'),
    c.bytes,
    c.base ? '1 (baseline)' : f2(s.bytesRatio, 'x'),
    ...wire,
    c.check,
    c.rss,
    p.keeps,
  ])
}

/** what the other scenarios of this invocation measured, for the targets that compare with them */
interface Context {
  /** transship's median full copy, by destination (loopback or link) */
  fullCopy: Partial<Record<'link' | 'loopback', number>>
  /** the 1 % re-sync over loopback: median seconds of rsync and of transship */
  resync?: {rsync?: number; transship?: number}
}

/** `1.23x — met`, or n/a */
const ratioVerdict = (ratio: number | undefined, limit: number) =>
  ratio === undefined ? 'n/a' : verdict(f2(ratio, 'x'), ratio <= limit)

function resyncTargets(scenario: Scenario, s: Summary, context: Context): string[] {
  const bytes =
    scenario.bytesLimit === undefined
      ? `- bytes sent, transship / rsync: ${s.bytesRatio === undefined ? 'n/a' : f2(s.bytesRatio, 'x')} (no target with nothing changed)`
      : `- target: bytes sent at most ${scenario.bytesLimit}x rsync's: ${ratioVerdict(s.bytesRatio, scenario.bytesLimit)}`
  const lines = [`- target: transship within 2x of rsync (ratio ≤ 2): ${ratioVerdict(s.ratio, 2)}`, bytes]
  if (scenario.id === 'resync' || scenario.id === 'resync-link') {
    const t = s.medianSeconds.transship
    const fullCopy = context.fullCopy[scenario.dest.wire ? 'link' : 'loopback']
    const value =
      t === undefined || fullCopy === undefined
        ? 'n/a (that scenario did not run)'
        : verdict(`${t.toFixed(2)} s / ${fullCopy.toFixed(2)} s = ${f2(t / fullCopy, 'x')}`, t / fullCopy <= 0.25)
    lines.push(
      `- target: re-sync far less than a full copy (≤ 0.25x of transship's full copy in this run's ${scenario.dest.wire ? 'link' : 'loopback'} scenario): ${value}`,
    )
  }

  return lines
}

function liveTargets(s: Summary, context: Context): string[] {
  const downtime = s.medianDowntime.transship
  const reference = context.resync?.rsync
  let value: string
  if (downtime === undefined) value = 'n/a (no transship run reported a downtime)'
  else if (reference === undefined) value = 'n/a (the resync scenario did not run in this invocation)'
  else {
    value = verdict(
      `${downtime.toFixed(2)} s / ${reference.toFixed(2)} s = ${f2(downtime / reference, 'x')}`,
      downtime / reference <= 2,
    )
  }

  const lines = [`- target: transship's downtime at most 2x the 1 % re-sync time (rsync's, this invocation): ${value}`]
  const own = context.resync?.transship
  if (downtime !== undefined && own !== undefined) {
    lines.push(`- transship's downtime / its own 1 % re-sync time: ${f2(downtime / own, 'x')}`)
  }

  return lines
}

function targets(scenario: Scenario, s: Summary, context: Context): string[] {
  const lines =
    scenario.kind === 'copy'
      ? [
          `- target: transship no slower than the tar/zstd/ssh pipeline, proof included (ratio ≤ 1): ${ratioVerdict(s.ratio, 1)}`,
        ]
      : scenario.kind === 'resync'
        ? resyncTargets(scenario, s, context)
        : liveTargets(s, context)
  const rss = s.maxRssKb
  lines.push(
    `- target: transship peak RSS under 200 MiB: ${rss === undefined ? 'n/a' : verdict(fmtRss(rss), rss < 200 * 1024)}`,
  )
  return lines
}

function table(scenario: Scenario, raw: Map<string, Run[]>, s: Summary, context: Context): string {
  const wire = Boolean(scenario.dest.wire)
  const header =
    scenario.kind === 'live'
      ? [
          '| pipeline | median downtime s | transship / baseline | median total s | bytes sent | destination check | peak RSS | keeps / checks |',
          '|---|---|---|---|---|---|---|---|',
        ]
      : [
          `| pipeline | median wall s | transship / baseline | bytes sent | bytes / baseline | ${wire ? 'wire tx / rx | ' : ''}destination check | peak RSS | keeps / checks |`,
          `|---|---|---|---|---|${wire ? '---|' : ''}---|---|---|`,
        ]
  return [
    `### ${scenario.title}`,
    '',
    ...header,
    ...scenario.pipelines.map((p) => row(scenario, p, raw.get(p.id) ?? [], s)),
    '',
    ...targets(scenario, s, context),
    ...scenario.notes.map((n) => `- ${n}`),
    '- ratios: medians over pairs of (transship / baseline of the same pair); destination check (last run): type, size, mode, owner, mtime to the second and link target of every entry vs the source, its disk usage, the user xattrs found; peak RSS* of a shell pipeline: its largest local process',
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

/** the destination of a successful run must equal the source, and pass the scenario's own checks */
async function checkRun(scenario: Scenario, run: Run, startedAt: number): Promise<void> {
  if (!run.ok) {
    await scenario.after?.(run, startedAt)
    return
  }

  current.mp ||= await mountpoint('remote', current.name)
  run.check = await check(scenario.sourceMp, current.mp, scenario.skip)
  if (run.check.differing > 0) {
    run.ok = false
    run.error = `WRONG RESULT: ${run.check.differing} entries differ (${run.check.examples.join('; ')})`
    return
  }

  await scenario.after?.(run, startedAt)
}

async function runScenario(scenario: Scenario): Promise<Map<string, Run[]>> {
  console.log(`running ${scenario.title}`)
  const raw = new Map<string, Run[]>(scenario.pipelines.map((p) => [p.id, []]))
  try {
    for (let pair = 1; pair <= PAIRS; pair++) {
      for (const p of alternating(pair, scenario.pipelines)) {
        current = await scenario.before(pair, p.id)
        const startedAt = Date.now()
        const run = await p.run(pair)
        try {
          await checkRun(scenario, run, startedAt)
        } finally {
          await removeVolume('remote', current.name)
        }

        raw.get(p.id)!.push(run)
        const bytes = [
          run.downtime === undefined ? '' : `downtime ${run.downtime.toFixed(2)} s`,
          run.bytesSent === undefined ? '' : `sent ${fmtSent(run.bytesSent, '')}`,
          run.reported?.method === undefined ? '' : `method ${run.reported.method}`,
          run.wireTx === undefined ? '' : `wire tx ${fmtBytes(run.wireTx)} rx ${fmtBytes(run.wireRx)}`,
          run.peakRssKb === undefined ? '' : `rss ${fmtRss(run.peakRssKb)}`,
          run.check ? `dst ${fmtBytes(run.check.diskBytes)} on disk, xattrs ${run.check.xattrs}` : '',
        ].filter(Boolean)
        console.log(
          `  [${scenario.id} ${pair}/${PAIRS}] ${p.id.padEnd(15)} ${run.ok ? `${run.seconds.toFixed(2)} s  ${bytes.join(', ')}` : `FAILED ${run.error}`}`,
        )
      }
    }
  } finally {
    await scenario.finish?.()
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
    live: () => liveScenario(LOOPBACK, full),
    loopback: () => copyScenario('loopback', LOOPBACK, full),
    resync: () => resyncScenario('resync', LOOPBACK, full, 'files'),
    'resync-append': () => resyncScenario('resync-append', LOOPBACK, full, 'append'),
    'resync-append-link': () => resyncScenario('resync-append-link', LINK, linkWorkload, 'append'),
    'resync-link': () => resyncScenario('resync-link', LINK, linkWorkload, 'files'),
    'resync-unchanged': () => resyncScenario('resync-unchanged', LOOPBACK, full, 'none'),
    'resync-unchanged-link': () => resyncScenario('resync-unchanged-link', LINK, linkWorkload, 'none'),
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
  const context: Context = {fullCopy: {}}
  const tables: string[] = []
  try {
    for (const scenario of scenarios) {
      const scenarioStart = performance.now()
      const raw = await runScenario(scenario)
      const summary = summarize(scenario, raw)
      if (scenario.id === 'loopback' || scenario.id === 'link') {
        context.fullCopy[scenario.id] = summary.medianSeconds.transship
      }

      if (scenario.id === 'resync') {
        context.resync = {rsync: summary.medianSeconds.rsync, transship: summary.medianSeconds.transship}
      }

      const text = table(scenario, raw, summary, context)
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
        tsArgs: TS_ARGS,
      })
    }
  } finally {
    await removeWriter()
    const left = await exec(dk('remote', 'volume', 'ls', '-q', '--filter', `name=${DST_PREFIX}${process.pid}-`))
    for (const name of left.stdout.split('\n').filter(Boolean)) await removeVolume('remote', name)
    if (!args.keep) {
      if (sync.from) await removeVolume('classic', SYNC_VOLUME)
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
