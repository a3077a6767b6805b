/**
 * A volume from one host to another. Each host's data is reached as its access says (root, sudo -n, or a helper
 * container on its engine: access/volume-end.ts); the data moves as one tar stream relayed unopened (a full
 * copy), or as only what differs (a sync: the hosts' rsync when both have it, else the changed files); the proof
 * compares listings and hashes made on each host (volume-proof.ts), so the data crosses once. The destination is
 * created like the source (driver, options, labels); until the proof passes it holds a `.transship-incomplete`
 * marker, so a cut copy never looks finished, and the next run finishes it by sending only what is missing.
 *
 * With `quiesce: stop` the containers that use the volume are stopped for the copy and started again however it
 * ends; with `presync` too, the data is first copied while they run, and they are stopped only for the final
 * delta and its proof: the report gives that window (`downtimeSeconds`).
 */
import type {Host, HostAccess, Hosts, Logger} from '@transship/kit'

import {sameEngine, shellQuote, UsageError} from '@transship/kit'

import type {VolumeManifest} from './manifest/types.js'

import {accessOn, openVolumeEnd, type VolumeEnd} from './access/volume-end.js'
import {emptyVolume, finishDestination, inspectAndMark, markIncomplete} from './destination.js'
import {listVolume} from './manifest/host-listing.js'
import {containerName, describeUsers, finishInterrupted, isActive, withStopped} from './quiesce.js'
import {checkVolumeName} from './volume-name.js'
import {type HashSet, listingEnd, proveEqual, readSide} from './volume-proof.js'
import {
  createVolumeLike,
  inspectVolume,
  requireVolume,
  type VolumeInfo,
  type VolumeUser,
  volumeUsers,
} from './volume-store.js'
import {
  METHOD_WORDS,
  sendAll,
  sendByRsync,
  sendDelta,
  type Sent,
  syncDelta,
  syncMethod,
  tarEndOf,
  type TransferContext,
  type TransferMethod,
} from './volume-transfer.js'

export {INCOMPLETE_MARKER} from './destination.js'

export type CopyMode = 'create' | 'replace' | 'sync'

export interface VolumeCopyRequest {
  /** how each host's data is reached (default: the host's `access`, else auto) */
  access?: {from?: HostAccess; to?: HostAccess}
  /** the destination volume's name (default: the same) */
  as?: string
  /** a sync compares contents (hashes on both hosts), not only size and mtime */
  checksum?: boolean
  from: string
  /** seconds containers get to stop (quiesce: stop) */
  grace?: number
  /** the helper image for engine access (default: the host's `helperImage`, else DEFAULT_HELPER_IMAGE) */
  helperImage?: string
  /** create (default): destination absent or empty; replace: overwrite it; sync: send only what differs */
  mode?: CopyMode
  name: string
  /** with quiesce stop: copy while the containers run, then stop them only for the final delta and the proof */
  presync?: boolean
  /**
   * stop the containers that use the volume for the copy, and start them again after: on the source, and on the
   * destination when the volume there is used by containers
   */
  quiesce?: 'none' | 'stop'
  /** refuse (instead of warning) to copy a volume that running containers use without quiesce */
  strict?: boolean
  to: string
}

/** One pass of data: what was sent, how, and how long it took. */
export interface PassReport {
  bytes: number
  method: TransferMethod
  removed: number
  seconds: number
}

export interface VolumeCopyReport {
  /** how each side's data was reached */
  access: {destination: string; source: string}
  /** bytes that crossed from the source to the destination, all passes (as on the wire: compressed when it was) */
  bytes: number
  destination: string
  /** the source's containers were stopped from this many seconds (stop → start); absent when none were */
  downtimeSeconds?: number
  /** entries of the volume */
  files: number
  /** files whose contents were hashed on both hosts and found equal */
  hashed: number
  /** what the access paths could not keep (empty when nothing) */
  limits: string[]
  /** entries that differ because the source changed while it was copied (not quiesced): the copy is then not verified */
  changedDuringCopy: string[]
  /** how the (last) data pass was sent */
  method: TransferMethod
  /** the pass made while the containers ran (presync) */
  presync?: PassReport
  /** entries removed from the destination (sync) */
  removed: number
  seconds: number
  source: string
  /** containers stopped and started again: on the source */
  stopped: string[]
  /** and on the destination */
  stoppedAtDestination: string[]
  verified: boolean
}

export interface CopyContext {
  hosts: Hosts
  log: Logger
  signal: AbortSignal
}

/** zstd on the wire when the data leaves this machine and both ends can (de)compress it. */
function wireOf(source: {end: VolumeEnd; host: Host}, destination: {end: VolumeEnd; host: Host}) {
  const apart = !(source.host.onThisMachine && destination.host.onThisMachine)
  return apart && source.end.tools.zstd && destination.end.tools.zstd ? ('zstd' as const) : ('none' as const)
}

interface Sides {
  destination: VolumeEnd
  /** marks the destination unfinished, once, before anything is written to it */
  ensureMarked: () => Promise<void>
  source: VolumeEnd
  wire: 'none' | 'zstd'
}

/** Everything as one tar stream (the destination is empty). */
async function fullPass(sides: Sides, context: TransferContext): Promise<PassReport & {sent: Sent['sent']}> {
  const started = performance.now()
  const tar = (end: VolumeEnd) => ({end: tarEndOf(end, sides.wire), root: end.root})
  await sides.ensureMarked()
  const sent = await sendAll(tar(sides.source), tar(sides.destination), context)
  return {...sent, seconds: (performance.now() - started) / 1000}
}

/** One pass of data while the containers run (presync): everything into an empty destination, else a sync. */
async function pass(sides: Sides, how: {full: boolean}, context: TransferContext) {
  return how.full ? fullPass(sides, context) : (await syncPass(sides, {}, context)).sent
}

/**
 * The data pass that ends the copy, and its proof: a full copy hashes the source while the data is sent, and
 * then the destination; a sync hashes the files it sent on both sides (all of them with checksum). A source
 * nobody writes to is listed (and hashed) while the data is sent: it cannot change meanwhile.
 */
async function passAndProve(
  sides: Sides,
  how: {checksum?: boolean; full: boolean; names: {destination: string; source: string}; sourceQuiet: boolean},
  context: TransferContext,
) {
  const {signal} = context
  // a source being written to is compared after the copy: what changed meanwhile is told apart by its time
  const since = how.sourceQuiet ? undefined : await hostTime(sides.source, signal)
  const everything = how.full || how.checksum === true
  const early = how.sourceQuiet
    ? everything
      ? readSide(sides.source, signal)
      : listVolume(listingEnd(sides.source), {signal})
    : undefined
  early?.catch(() => {})
  let mark = performance.now()
  const {hash, manifests, sent} = how.full
    ? {hash: 'all' as const, manifests: {source: early}, sent: await fullPass(sides, context)}
    : await syncPass(sides, {checksum: how.checksum, early}, context)
  context.log.debug(`${sent.method} pass: ${elapsed(mark)}`)
  mark = performance.now()
  const proof = await proveEqual(
    {end: sides.source, manifest: manifests.source, name: how.names.source},
    {end: sides.destination, manifest: manifests.destination, name: how.names.destination},
    {hash, signal, sourceChangingSince: since},
  )
  context.log.debug(`proof: ${elapsed(mark)}`)
  return {proof, sent}
}

function elapsed(since: number): string {
  return `${(performance.now() - since).toFixed(0)} ms`
}

/**
 * The final pass of a sync, decided from both listings (made side by side, the source's already under way when
 * nobody writes to it): nothing when they are equal (the proof is those listings); the hosts' rsync when a large
 * file changed that the destination has an older copy of (only its changed blocks cross); else the changed
 * entries as one tar. Resolves to what was sent and what the proof may reuse.
 */
async function syncPass(
  sides: Sides,
  how: {checksum?: boolean; early?: Promise<VolumeManifest>},
  context: TransferContext,
): Promise<{
  hash: HashSet
  manifests: {destination?: VolumeManifest; source?: VolumeManifest}
  sent: PassReport & {sent: Sent['sent']}
}> {
  const started = performance.now()
  const read = (end: VolumeEnd) =>
    how.checksum ? readSide(end, context.signal) : listVolume(listingEnd(end), {signal: context.signal})
  const [wanted, present] = await Promise.all([how.early ?? read(sides.source), read(sides.destination)])
  const delta = syncDelta(wanted, present)
  // a source written to meanwhile is listed again for the proof
  const source = how.early ? wanted : undefined
  const hash = (files: Sent['sent']): HashSet => (how.checksum ? 'all' : files)
  const method = syncMethod(delta, present, sides.source.tools.rsync && sides.destination.tools.rsync)
  if (method === 'none') {
    context.log.info('sync: nothing differs')
    const sent = {bytes: 0, method, removed: 0, seconds: 0, sent: []}
    return {hash: hash([]), manifests: {destination: present, source}, sent}
  }

  context.log.info(
    `sync: ${delta.files.length} files to send (${delta.bytes} bytes at most), ${delta.remove.length} entries to remove, of ${wanted.entries.length}, by ${METHOD_WORDS[method]}`,
  )
  const tar = (end: VolumeEnd) => ({end: tarEndOf(end, sides.wire), root: end.root})
  await sides.ensureMarked()
  const sent =
    method === 'rsync'
      ? await sendByRsync(sides.source, sides.destination, {...context, checksum: how.checksum})
      : await sendDelta(tar(sides.source), tar(sides.destination), delta, context)
  return {
    hash: hash(sent.sent),
    manifests: {source},
    sent: {...sent, seconds: (performance.now() - started) / 1000},
  }
}

/** The clock of the host where an end's commands run, as `SECONDS.NANOS`. */
async function hostTime(end: VolumeEnd, signal: AbortSignal): Promise<string | undefined> {
  const {code, stdout} = await end.shell.run('date +%s.%N', {signal})
  return code === 0 && /^\d+\.\d{9}$/.test(stdout.trim()) ? stdout.trim() : undefined
}

export async function copyVolume(request: VolumeCopyRequest, context: CopyContext): Promise<VolumeCopyReport> {
  const {hosts, log, signal} = context
  checkVolumeName(request.name)
  if (request.as !== undefined) checkVolumeName(request.as, '--as')
  if (request.presync && request.quiesce !== 'stop') {
    throw new UsageError(
      'presync copies while the containers run and stops them for the final delta: it needs quiesce: stop',
      {
        code: 'VOLUME_PRESYNC_WITHOUT_QUIESCE',
        suggestions: ['add --quiesce stop (quiesce: stop), or leave presync out'],
      },
    )
  }

  const destinationName = request.as ?? request.name
  const started = performance.now()
  const [sourceHost, destinationHost] = await Promise.all([
    hosts.host(request.from, signal),
    hosts.host(request.to, signal),
  ])
  if (sameEngine(sourceHost, destinationHost) && destinationName === request.name) {
    throw new UsageError(
      `${request.from} and ${request.to} are the same engine: ${request.name} would be copied onto itself`,
      {code: 'VOLUME_SAME', suggestions: ['name the copy with --as (as:)']},
    )
  }

  const accesses = [accessOn(sourceHost, request.access?.from), accessOn(destinationHost, request.access?.to)]
  if (request.helperImage !== undefined && !accesses.some((access) => access === 'engine' || access === 'auto')) {
    throw new UsageError(
      `a helper image is used by engine access only, and both hosts are reached as ${accesses.join(' and ')}`,
      {
        code: 'VOLUME_HELPER_IMAGE_UNUSED',
        suggestions: ['leave --helper-image out, or say --from-access/--to-access engine (or auto)'],
      },
    )
  }

  await finishInterrupted(sourceHost, request.name, log)
  await finishInterrupted(destinationHost, destinationName, log)
  // both sides looked up at once; the source's refusal (an unknown volume) is told first
  const [sourceSide, destinationSide] = await Promise.allSettled([
    (async () => {
      const volume = await requireVolume(sourceHost.engine, request.name, signal, {anyDriver: true})
      return {users: await volumeUsers(sourceHost.engine, request.name, signal), volume}
    })(),
    checkDestinationUsers(destinationHost, destinationName, request, signal),
  ])
  if (sourceSide.status === 'rejected') throw sourceSide.reason
  const {users, volume: sourceVolume} = sourceSide.value
  const running = users.filter((user) => isActive(user))
  const quiesce = request.quiesce === 'stop'
  if (running.length > 0 && !quiesce) {
    const names = running.map((user) => containerName(user)).join(', ')
    if (request.strict) {
      throw new UsageError(`${request.name} is in use by ${names} on ${request.from}`, {
        code: 'VOLUME_IN_USE',
        suggestions: ['say `quiesce: stop` (--quiesce stop) to stop them for the copy and start them again after'],
      })
    }

    log.warn(
      `${request.name} is in use by ${names} on ${request.from}: the copy may catch files mid-write; what they change meanwhile is named and leaves the copy unverified (quiesce: stop avoids it)`,
    )
  }

  if (destinationSide.status === 'rejected') throw destinationSide.reason
  const destinationUsers = destinationSide.value
  log.debug(`hosts and volumes looked up: ${elapsed(started)}`)
  const source = await openVolumeEnd(sourceHost, sourceVolume, {
    access: request.access?.from,
    helperImage: request.helperImage,
    readOnly: true,
    signal,
  })
  try {
    const opened = await openDestination(destinationHost, sourceVolume, request, signal)
    log.debug(`both ends open (${source.describe}; ${opened.end.describe}): ${elapsed(started)}`)
    try {
      return await copyBetween(
        {host: sourceHost, running, users},
        {host: destinationHost, users: destinationUsers},
        {opened, source},
        {request, started},
        context,
      )
    } finally {
      await opened.end.close()
    }
  } finally {
    await source.close()
  }
}

/** The copy between two opened ends, its containers stopped as asked. */
async function copyBetween(
  from: {host: Host; running: VolumeUser[]; users: VolumeUser[]},
  to: {host: Host; users: VolumeUser[]},
  ends: {opened: Awaited<ReturnType<typeof openDestination>>; source: VolumeEnd},
  what: {request: VolumeCopyRequest; started: number},
  context: CopyContext,
): Promise<VolumeCopyReport> {
  const {log, signal} = context
  const {request, started} = what
  const {opened, source} = ends
  const {host: sourceHost, running, users} = from
  const {host: destinationHost, users: destinationUsers} = to
  const destinationName = request.as ?? request.name
  const quiesce = request.quiesce === 'stop'
  const destination = opened.end
  const {unfinished} = opened
  const mode = request.mode ?? 'create'
  if (unfinished && mode === 'create')
    log.warn(`${destinationName} on ${request.to} holds an unfinished copy: sending only what is missing`)
  let {marked} = opened
  const sides: Sides = {
    destination,
    async ensureMarked() {
      if (marked) return
      await markIncomplete(destination.shell, request.to, destination.root, signal)
      marked = true
    },
    source,
    wire: wireOf({end: source, host: sourceHost}, {end: destination, host: destinationHost}),
  }
  const names = {destination: destinationName, source: request.name}
  const limits = [...new Set([...destination.limits, ...source.limits])]
  for (const limit of limits) log.warn(`not kept: ${limit}`)

  const transfer = {log, signal}
  const options = {grace: request.grace, log}
  let presync: PassReport | undefined
  let downtimeSeconds: number | undefined
  const result = await withStopped(
    destinationHost,
    destinationName,
    quiesce ? destinationUsers : [],
    {...options, purpose: `the copy of ${request.name} into ${destinationName}`},
    async () => {
      if (mode === 'replace') await emptyVolume(destination.shell, request.to, destination.root, signal)
      let empty = mode === 'replace' || opened.empty
      if (request.presync && running.length === 0) {
        log.info(`presync: no running container uses ${request.name} on ${request.from}: one pass`)
      }

      if (request.presync && running.length > 0) {
        log.info(`presync: copying ${request.name} while ${running.map((user) => containerName(user)).join(', ')} run`)
        const first = await pass(sides, {full: empty}, transfer)
        presync = {bytes: first.bytes, method: first.method, removed: first.removed, seconds: first.seconds}
        empty = false
        // what the presync wrote goes to disk now, not while the containers are stopped
        await destination.shell.run(`sync -f ${shellQuote(destination.root)} || sync`, {signal})
      }

      const stoppedAt = performance.now()
      const last = await withStopped(sourceHost, request.name, quiesce ? users : [], options, () =>
        passAndProve(
          sides,
          {checksum: request.checksum, full: empty, names, sourceQuiet: quiesce || running.length === 0},
          transfer,
        ),
      )
      if (quiesce && running.length > 0) downtimeSeconds = (performance.now() - stoppedAt) / 1000
      const root = last.proof.source.entries.find((entry) => entry.path === '.')
      // nothing written (an equal volume synced): nothing to finish
      if (marked) await finishDestination(destination.shell, request.to, destination.root, root?.mtime, signal)
      log.debug(`finished: ${elapsed(started)}`)
      return last
    },
  )
  const {proof, sent} = result
  const moved = proof.changedDuringCopy
  if (moved.length > 0) {
    log.warn(
      `${request.name} changed on ${request.from} while it was copied (used by ${running.map((user) => containerName(user)).join(', ')}): ${moved.length} ${moved.length === 1 ? 'entry differs' : 'entries differ'} (${moved.slice(0, 5).join(', ')}${moved.length > 5 ? ', …' : ''}); the rest is proven equal. For a still picture: quiesce: stop (with presync for a short stop)`,
    )
  }

  return {
    access: {destination: destination.describe, source: source.describe},
    bytes: sent.bytes + (presync?.bytes ?? 0),
    destination: `${request.to}:${destinationName}`,
    downtimeSeconds,
    files: proof.source.entries.length,
    hashed: proof.hashed,
    limits,
    method: sent.method,
    presync,
    removed: sent.removed + (presync?.removed ?? 0),
    seconds: (performance.now() - started) / 1000,
    source: `${request.from}:${request.name}`,
    stopped: quiesce ? running.map((user) => containerName(user)) : [],
    stoppedAtDestination: quiesce
      ? destinationUsers.filter((user) => isActive(user)).map((user) => containerName(user))
      : [],
    changedDuringCopy: moved,
    verified: moved.length === 0,
  }
}

/**
 * The containers that use the destination volume, refused (exit 2, nothing changed) when its data would change
 * under them and they are not to be stopped.
 */
async function checkDestinationUsers(host: Host, name: string, request: VolumeCopyRequest, signal: AbortSignal) {
  const volume = await inspectVolume(host.engine, name, signal)
  if (!volume) return []
  const mode = request.mode ?? 'create'
  const users = await volumeUsers(host.engine, name, signal)
  // create fills an empty volume (a stopped user loses nothing); replace and sync delete what is there
  const inTheWay = mode === 'create' ? users.filter((user) => isActive(user)) : users
  if (inTheWay.length > 0 && request.quiesce !== 'stop') {
    const what =
      mode === 'create' ? 'its data would change under them' : `mode ${mode} would change its data under them`
    throw new UsageError(
      `${name} on ${request.to} is used by ${describeUsers(inTheWay)}: ${what}; nothing was copied`,
      {
        code: 'VOLUME_IN_USE',
        details: {containers: inTheWay.map((user) => containerName(user)), host: request.to, volume: name},
        suggestions: [
          'say `quiesce: stop` (--quiesce stop) to stop the running ones for the copy and start them again after (stopped ones stay stopped)',
          `or copy it under another name (--as), or remove those containers from ${request.to} first`,
        ],
      },
    )
  }

  return users
}

/**
 * The destination's end: the volume as it is (refused when `create` would overwrite data that no earlier copy
 * left unfinished), or created like the source (and removed again if its end cannot be opened).
 */
async function openDestination(host: Host, like: VolumeInfo, request: VolumeCopyRequest, signal: AbortSignal) {
  const name = request.as ?? request.name
  const existing = await inspectVolume(host.engine, name, signal)
  const volume = existing ?? (await createVolumeLike(host.engine, name, like, signal))
  let end: VolumeEnd
  try {
    end = await openVolumeEnd(host, volume, {
      access: request.access?.to,
      helperImage: request.helperImage,
      readOnly: false,
      signal,
    })
  } catch (error) {
    if (!existing)
      await host.engine.json({method: 'DELETE', path: `/volumes/${encodeURIComponent(name)}`}).catch(() => {})
    throw error
  }

  const mode = request.mode ?? 'create'
  // marked unfinished at once (in the same round trip), unless create is about to refuse it
  const state = await inspectAndMark(end.shell, request.to, end.root, mode, signal, {deferOnData: mode === 'sync'})
  if (!state.marked && mode === 'create') {
    await end.close()
    throw new UsageError(`${name} on ${request.to} is not empty: nothing was copied`, {
      code: 'VOLUME_NOT_EMPTY',
      suggestions: ['say `mode: replace` (--mode replace) to overwrite it, or `mode: sync` to make it equal'],
    })
  }

  return {end, volume, ...state}
}
