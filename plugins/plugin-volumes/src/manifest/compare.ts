import type {ManifestEntry, VolumeManifest} from './types.js'

/** An attribute's value in a difference; null where that side has none. */
export type ManifestValue = null | number | string | string[]

export interface AttributeDifference {
  /** type, size, digest, mode, uid, gid, mtime, linkTarget, devmajor, devminor, hardlinks, or `xattr NAME` */
  name: string
  source: ManifestValue
  destination: ManifestValue
}

export interface ManifestDifference {
  path: string
  kind: 'changed' | 'only-in-destination' | 'only-in-source'
  /** for 'changed': what differs */
  attributes?: AttributeDifference[]
}

export interface ComparisonCounts {
  /** paths in the source / the destination manifest (ignored ones excluded) */
  source: number
  destination: number
  /** paths present on both sides */
  compared: number
  changed: number
  onlyInSource: number
  onlyInDestination: number
  /** all differences, including those beyond `limit` */
  differences: number
}

export interface ManifestComparison {
  equal: boolean
  /** source paths in tar order, then the destination's own; at most `limit` */
  differences: ManifestDifference[]
  counts: ComparisonCounts
}

export interface CompareOptions {
  /** paths left out of the comparison on both sides */
  ignore?: (path: string) => boolean
  /** how many differences to keep (default 1000); `counts` still counts them all */
  limit?: number
}

/**
 * Compares the manifest of a volume's source with its destination's, path by path, on every attribute:
 * type, size, content (digest), mode, owner, mtime (directories too: tar restores them), symlink target,
 * device numbers, xattrs and ACLs. Whether a file was stored sparse is not compared (it is how tar stored it,
 * not what the file holds).
 *
 * Hard links are compared by group: each member of a group takes the attributes of the group's first entry,
 * and its `hardlinks` are the sorted paths of the whole group, so the tar order (which member carries the
 * content) does not matter. mtimes are compared to the nanosecond when both sides have nanoseconds, else in
 * whole seconds. When a path appears twice in a manifest the last entry counts, as when tar extracts it.
 * xattrs are left out when either manifest says they are unknown (its host could not list them).
 */
export function compareManifests(
  source: VolumeManifest,
  destination: VolumeManifest,
  options: CompareOptions = {},
): ManifestComparison {
  const ignore = options.ignore ?? (() => false)
  const limit = options.limit ?? 1000
  const ours = resolve(source, ignore)
  const theirs = resolve(destination, ignore)
  const xattrs = source.xattrs !== 'unknown' && destination.xattrs !== 'unknown'
  const counts: ComparisonCounts = {
    changed: 0,
    compared: 0,
    destination: theirs.size,
    differences: 0,
    onlyInDestination: 0,
    onlyInSource: 0,
    source: ours.size,
  }
  const differences: ManifestDifference[] = []
  const add = (difference: ManifestDifference) => {
    counts.differences++
    if (differences.length < limit) differences.push(difference)
  }

  for (const [path, entry] of ours) {
    const other = theirs.get(path)
    if (!other) {
      counts.onlyInSource++
      add({kind: 'only-in-source', path})
      continue
    }

    counts.compared++
    const attributes = attributeDifferences(entry, other, xattrs)
    if (attributes.length > 0) {
      counts.changed++
      add({attributes, kind: 'changed', path})
    }
  }

  for (const path of theirs.keys()) {
    if (ours.has(path)) continue
    counts.onlyInDestination++
    add({kind: 'only-in-destination', path})
  }

  return {counts, differences, equal: counts.differences === 0}
}

/**
 * One line per difference, e.g. `etc/x: mode 0644 → 0600; uid 0 → 999`, `var/y: only in the source`; a last
 * line says how many more there are when the comparison kept fewer than it counted.
 */
export function formatDifferences(comparison: ManifestComparison | ManifestDifference[]): string[] {
  const differences = Array.isArray(comparison) ? comparison : comparison.differences
  const lines = differences.map((difference) => {
    const path = showPath(difference.path)
    switch (difference.kind) {
      case 'only-in-destination': {
        return `${path}: only in the destination`
      }

      case 'only-in-source': {
        return `${path}: only in the source (missing from the destination)`
      }

      default: {
        const attributes = (difference.attributes ?? []).map(
          ({destination, name, source}) => `${name} ${showValue(name, source)} → ${showValue(name, destination)}`,
        )
        return `${path}: ${attributes.join('; ')}`
      }
    }
  })
  const more = Array.isArray(comparison) ? 0 : comparison.counts.differences - differences.length
  if (more > 0) lines.push(`… and ${more} more difference${more === 1 ? '' : 's'}`)
  return lines
}

/** An entry as compared: a hard link resolved to its group's first entry, with its group. */
interface Resolved {
  entry: ManifestEntry
  hardlinks?: string[]
}

function resolve(manifest: VolumeManifest, ignore: (path: string) => boolean): Map<string, Resolved> {
  const byPath = new Map<string, ManifestEntry>()
  for (const entry of manifest.entries) {
    if (!ignore(entry.path)) byPath.set(entry.path, entry)
  }

  const groups = new Map<string, string[]>()
  for (const entry of byPath.values()) {
    if (entry.type !== 'hardlink' || entry.hardlinkOf === undefined || !byPath.has(entry.hardlinkOf)) continue
    const group = groups.get(entry.hardlinkOf) ?? [entry.hardlinkOf]
    group.push(entry.path)
    groups.set(entry.hardlinkOf, group)
  }

  const resolved = new Map<string, Resolved>()
  for (const [path, entry] of byPath) {
    const leader = entry.type === 'hardlink' && entry.hardlinkOf !== undefined && byPath.get(entry.hardlinkOf)
    const group = groups.get(leader ? entry.hardlinkOf! : path)
    resolved.set(path, {entry: leader || entry, hardlinks: group && [...group].sort(byCodeUnit)})
  }

  return resolved
}

const ATTRIBUTES = ['type', 'size', 'digest', 'mode', 'uid', 'gid', 'mtime', 'linkTarget', 'hardlinkOf'] as const

function attributeDifferences(source: Resolved, destination: Resolved, xattrs: boolean): AttributeDifference[] {
  const differences: AttributeDifference[] = []
  const a = source.entry
  const b = destination.entry
  for (const name of ATTRIBUTES) {
    const left = a[name] ?? null
    const right = b[name] ?? null
    const same = name === 'mtime' ? sameTime(a.mtime, b.mtime) : left === right
    if (!same) differences.push({destination: right, name, source: left})
  }

  if (a.devmajor !== b.devmajor || a.devminor !== b.devminor) {
    differences.push({destination: device(b), name: 'device', source: device(a)})
  }

  const leftGroup = source.hardlinks ?? null
  const rightGroup = destination.hardlinks ?? null
  if (JSON.stringify(leftGroup) !== JSON.stringify(rightGroup)) {
    differences.push({destination: rightGroup, name: 'hardlinks', source: leftGroup})
  }

  if (!xattrs) return differences
  for (const name of new Set([...Object.keys(a.xattrs), ...Object.keys(b.xattrs)].sort(byCodeUnit))) {
    const left = a.xattrs[name] ?? null
    const right = b.xattrs[name] ?? null
    if (left !== right) differences.push({destination: right, name: `xattr ${name}`, source: left})
  }

  return differences
}

function device(entry: ManifestEntry): null | string {
  return entry.devmajor === undefined && entry.devminor === undefined
    ? null
    : `${entry.devmajor ?? 0},${entry.devminor ?? 0}`
}

/** mtimes `S` or `S.NNNNNNNNN`: to the nanosecond when both have them, else in whole seconds. */
function sameTime(a: string, b: string): boolean {
  if (a.includes('.') && b.includes('.')) return a === b
  return wholeSeconds(a) === wholeSeconds(b)
}

function wholeSeconds(mtime: string): bigint {
  const [seconds = '0', fraction = ''] = mtime.split('.')
  const whole = BigInt(seconds)
  // rounded down, like a header's seconds: -1.5 is -2
  return whole < 0n && /[1-9]/.test(fraction) ? whole - 1n : whole
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function showPath(path: string): string {
  // a name with a newline or another control character would break the lines apart
  // eslint-disable-next-line no-control-regex -- control characters are what is looked for
  return /[\u0000-\u001F\u007F]/.test(path) ? JSON.stringify(path) : path
}

function showValue(name: string, value: ManifestValue): string {
  if (value === null) return '(none)'
  if (Array.isArray(value)) return `[${value.map((path) => showPath(path)).join(', ')}]`
  if (name === 'mode' && typeof value === 'number') return value.toString(8).padStart(4, '0')
  if (name === 'digest' && typeof value === 'string') return `${value.slice(0, 12)}…`
  if (name.startsWith('xattr ') && typeof value === 'string') return showXattr(value)
  if (name === 'linkTarget' || name === 'hardlinkOf') return JSON.stringify(value)
  return String(value)
}

/** An xattr value (base64): as a quoted string when it is printable text, else in hex (cut after 32 bytes). */
function showXattr(base64: string): string {
  const bytes = Buffer.from(base64, 'base64')
  const text = bytes.toString('utf8').replace(/\0$/, '')
  // eslint-disable-next-line no-control-regex -- control characters are what is looked for
  if (!text.includes('\uFFFD') && !/[\u0000-\u0008\u000E-\u001F\u007F]/.test(text)) return JSON.stringify(text)
  const hex = bytes.subarray(0, 32).toString('hex')
  return `0x${hex}${bytes.length > 32 ? '…' : ''}`
}
