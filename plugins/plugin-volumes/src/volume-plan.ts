/**
 * What a volume copy would do, read from both hosts and changing nothing on them: the listings of the source and
 * of the destination (when it exists) say how many files and bytes a copy or sync would send, and opening each
 * end says how its data is reached and what that path cannot keep. (An `engine` end runs a helper container
 * for the time of the listing; it is removed after.)
 */
import type {Host} from '@transship/kit'

import type {VolumeEnd} from './access/volume-end.js'
import type {VolumeManifest} from './manifest/types.js'

import {openVolumeEnd} from './access/volume-end.js'
import {INCOMPLETE_MARKER} from './destination.js'
import {listVolume} from './manifest/host-listing.js'
import {listingEnd, proveEqual} from './volume-proof.js'
import {inspectVolume, requireVolume} from './volume-store.js'
import {syncDelta, syncMethod, type TransferMethod} from './volume-transfer.js'

export interface VolumeEstimate {
  access: {destination: string; source: string}
  /** logical bytes of the files that would be sent (at most: rsync sends only changed blocks) */
  bytes: number
  /** whether the destination volume exists, and holds an unfinished copy */
  destination: 'absent' | 'present' | 'unfinished'
  /** files whose content would be sent */
  files: number
  limits: string[]
  method: TransferMethod
  /** entries a sync would remove */
  remove: number
}

export interface PlanSides {
  destination: {host: Host; name: string}
  mode: 'create' | 'replace' | 'sync'
  signal: AbortSignal
  source: {host: Host; name: string}
}

async function openBoth(sides: PlanSides) {
  const {signal} = sides
  const sourceVolume = await requireVolume(sides.source.host.engine, sides.source.name, signal, {anyDriver: true})
  const destinationVolume = await inspectVolume(sides.destination.host.engine, sides.destination.name, signal)
  // each host reached as its recipe says; read-only: the plan changes nothing at the destination either
  const source = await openVolumeEnd(sides.source.host, sourceVolume, {readOnly: true, signal})
  let destination: undefined | VolumeEnd
  try {
    destination =
      destinationVolume && (await openVolumeEnd(sides.destination.host, destinationVolume, {readOnly: true, signal}))
  } catch (error) {
    await source.close()
    throw error
  }

  return {destination, source}
}

/** What would be sent, from the two listings (`present` undefined: the destination does not exist). */
function delta(wanted: VolumeManifest, present: undefined | VolumeManifest, mode: PlanSides['mode'], rsync: boolean) {
  if (!present || mode === 'replace') {
    const files = wanted.entries.filter((entry) => entry.type === 'file')
    const bytes = files.reduce((sum, entry) => sum + entry.size, 0)
    return {bytes, files: files.length, method: 'tar' as TransferMethod, remove: 0}
  }

  const changes = syncDelta(wanted, present)
  const method = syncMethod(changes, present, rsync)
  return {bytes: changes.bytes, files: changes.files.length, method, remove: changes.remove.length}
}

/** Files and bytes a copy (or a sync) would send, and how each side is reached. */
export async function estimateCopy(sides: PlanSides): Promise<VolumeEstimate> {
  const {destination, source} = await openBoth(sides)
  try {
    const [wanted, present] = await Promise.all([
      listVolume(listingEnd(source), {signal: sides.signal}),
      destination && listVolume(listingEnd(destination), {signal: sides.signal}),
    ])
    const unfinished = present?.entries.some((entry) => entry.path === INCOMPLETE_MARKER) ?? false
    const rsync = source.tools.rsync && destination?.tools.rsync === true
    return {
      ...delta(wanted, present, sides.mode, rsync),
      access: {destination: destination?.describe ?? 'access chosen when the volume is made', source: source.describe},
      destination: present ? (unfinished ? 'unfinished' : 'present') : 'absent',
      limits: [...new Set([...(destination?.limits ?? []), ...source.limits])],
    }
  } finally {
    await Promise.all([source.close(), destination?.close()])
  }
}

/** Proves an existing destination equal to the source (contents hashed on both hosts); throws when it is not. */
export async function proveExisting(sides: PlanSides) {
  const {destination, source} = await openBoth(sides)
  try {
    if (!destination) throw new Error(`${sides.destination.name} is not on ${sides.destination.host.name}`)
    return await proveEqual(
      {end: source, name: sides.source.name},
      {end: destination, name: sides.destination.name},
      {hash: 'all', signal: sides.signal},
    )
  } finally {
    await Promise.all([source.close(), destination?.close()])
  }
}
