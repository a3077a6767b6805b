/**
 * The proof that a destination volume equals its source, without moving the data a second time: each side is
 * listed and hashed where it is (find and sha256sum on that host, or in its helper container), and only the
 * listings cross. Every entry's metadata is compared (type, size, mode, owner, mtime to the nanosecond, link
 * target, hard link groups, devices, xattrs and ACLs when both hosts can list them); contents by SHA-256, of
 * every file after a full copy, of the files sent after a sync (the rest were equal by size and mtime, as rsync
 * decides, or by content with --checksum).
 */
import {ExitCode, TransshipError} from '@transship/kit'
import path from 'node:path'

import type {VolumeEnd} from './access/volume-end.js'
import type {ManifestComparison} from './manifest/compare.js'
import type {VolumeManifest} from './manifest/types.js'

import {INCOMPLETE_MARKER} from './destination.js'
import {compareManifests, formatDifferences} from './manifest/compare.js'
import {hashFiles, type ListingEnd, listVolume, withDigests} from './manifest/host-listing.js'

/** Which files get their content hashed: all, those named, or none (metadata only). */
export type HashSet = 'all' | 'none' | string[]

export function listingEnd(end: VolumeEnd): ListingEnd {
  return {
    getfattr: end.tools.getfattr,
    hasher: end.tools.openssl ? 'openssl' : 'sha256sum',
    host: end.host,
    root: end.root,
    shell: end.shell,
  }
}

/** `paths` and every member of a hard link group that one of them is in. */
function withLinkGroups(paths: Iterable<string>, manifest: VolumeManifest): string[] {
  const wanted = new Set(paths)
  const groups = new Map<string, string[]>()
  for (const entry of manifest.entries) {
    const leader = entry.type === 'hardlink' ? entry.hardlinkOf : entry.path
    if (leader === undefined) continue
    const group = groups.get(leader)
    if (group) group.push(entry.path)
    else groups.set(leader, [entry.path])
  }

  for (const members of groups.values()) {
    if (members.length > 1 && members.some((member) => wanted.has(member))) for (const m of members) wanted.add(m)
  }

  return [...wanted]
}

function canHash(end: VolumeEnd): boolean {
  return end.tools.openssl || end.tools.sha256sum
}

function withoutDigests(manifest: VolumeManifest): VolumeManifest {
  return {...manifest, entries: manifest.entries.map(({digest: _digest, ...entry}) => entry)}
}

/** One side's listing, with every file's content hashed alongside (when the host can hash). */
export async function readSide(end: VolumeEnd, signal: AbortSignal): Promise<VolumeManifest> {
  const listing = listingEnd(end)
  if (!canHash(end)) return listVolume(listing, {signal})
  const [manifest, hashes] = await Promise.all([listVolume(listing, {signal}), hashFiles(listing, 'all', {signal})])
  return withDigests(manifest, hashes)
}

/** The listing with the contents of those of `paths` that it has as files hashed. */
async function hashSome(end: VolumeEnd, manifest: VolumeManifest, paths: Set<string>, signal: AbortSignal) {
  const present = manifest.entries.filter((entry) => entry.type === 'file' && paths.has(entry.path))
  if (present.length === 0) return manifest
  const hashes = await hashFiles(
    listingEnd(end),
    present.map((entry) => entry.path),
    {signal, sizes: new Map(present.map((entry) => [entry.path, entry.size]))},
  )
  return withDigests(manifest, hashes)
}

export interface Proof {
  /**
   * paths that differ because the source changed while it was copied (it was not quiesced): their source mtime is
   * not older than the copy's start; the copy is then not proven, and says so
   */
  changedDuringCopy: string[]
  comparison: ManifestComparison
  destination: VolumeManifest
  /** files whose contents were compared */
  hashed: number
  source: VolumeManifest
}

/** A `SECONDS.NANOS` time (the fraction optional) in nanoseconds. */
function nanoseconds(time: string): bigint {
  const [seconds = '0', nanos = ''] = time.split('.')
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanos.padEnd(9, '0').slice(0, 9))
}

function notBefore(a: string, b: string): boolean {
  return nanoseconds(a) >= nanoseconds(b)
}

/**
 * The differences that the source's own changes since `since` explain: a path changed at the source since then,
 * or one gone from it whose directory changed since then.
 */
function changedSince(comparison: ManifestComparison, source: VolumeManifest, since: string): string[] | undefined {
  const mtimes = new Map(source.entries.map((entry) => [entry.path, entry.mtime]))
  const newer = (item: string) => {
    const mtime = mtimes.get(item)
    return mtime !== undefined && notBefore(mtime, since)
  }

  const explained = comparison.differences.filter((difference) =>
    difference.kind === 'only-in-destination'
      ? newer(path.posix.dirname(difference.path) === '.' ? '.' : path.posix.dirname(difference.path))
      : newer(difference.path),
  )
  const all = explained.length === comparison.counts.differences
  return all ? explained.map((difference) => difference.path) : undefined
}

/**
 * Compares the destination with the source (whose manifest may already be on its way: hashed while the data
 * was sent); throws VOLUME_VERIFY_FAILED with the differing files. With `sourceChangingSince` (the source is
 * written to while it is copied; the time is the source host's clock when the copy started), differences that
 * the source's own changes explain are returned as `changedDuringCopy` instead.
 */
export async function proveEqual(
  source: {end: VolumeEnd; manifest?: Promise<VolumeManifest> | VolumeManifest; name: string},
  destination: {end: VolumeEnd; manifest?: Promise<VolumeManifest> | VolumeManifest; name: string},
  options: {hash: HashSet; signal: AbortSignal; sourceChangingSince?: string},
): Promise<Proof> {
  const {signal} = options
  // a host with neither sha256sum nor openssl: contents are not compared (the plan and the report say so)
  const hash = canHash(source.end) && canHash(destination.end) ? options.hash : 'none'
  let sourceManifest: VolumeManifest
  let destinationManifest: VolumeManifest
  if (hash === 'all') {
    ;[sourceManifest, destinationManifest] = await Promise.all([
      source.manifest ?? readSide(source.end, signal),
      destination.manifest ?? readSide(destination.end, signal),
    ])
  } else {
    const [sourceListing, destinationListing] = await Promise.all([
      source.manifest ?? listVolume(listingEnd(source.end), {signal}),
      destination.manifest ?? listVolume(listingEnd(destination.end), {signal}),
    ])
    // a hard link group is hashed whole on both sides, whichever member leads it on each
    const paths =
      hash === 'none'
        ? new Set<string>()
        : new Set([...withLinkGroups(hash, destinationListing), ...withLinkGroups(hash, sourceListing)])
    ;[sourceManifest, destinationManifest] = await Promise.all([
      hashSome(source.end, sourceListing, paths, signal),
      hashSome(destination.end, destinationListing, paths, signal),
    ])
  }

  if (hash === 'none') {
    sourceManifest = withoutDigests(sourceManifest)
    destinationManifest = withoutDigests(destinationManifest)
  }

  const comparison = compareManifests(sourceManifest, destinationManifest, {
    ignore: (item) => item === INCOMPLETE_MARKER,
    limit: options.sourceChangingSince === undefined ? undefined : Number.MAX_SAFE_INTEGER,
  })
  // undefined: differences that the source's own changes do not explain
  const changedDuringCopy = comparison.equal
    ? []
    : options.sourceChangingSince === undefined
      ? undefined
      : changedSince(comparison, sourceManifest, options.sourceChangingSince)
  if (!changedDuringCopy) {
    throw new TransshipError(
      'VOLUME_VERIFY_FAILED',
      ExitCode.Verify,
      `${destination.name} on ${destination.end.host} differs from ${source.name} on ${source.end.host}:\n${formatDifferences(comparison).join('\n')}`,
      {
        details: {differences: comparison.differences},
        suggestions: [
          'if the source changed while it was copied, stop its writers (quiesce: stop, with presync for a short stop) and sync again',
        ],
      },
    )
  }

  const hashed = destinationManifest.entries.filter((entry) => entry.digest !== undefined).length
  return {changedDuringCopy, comparison, destination: destinationManifest, hashed, source: sourceManifest}
}
