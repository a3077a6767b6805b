/**
 * Comparison of two images for `rootfs diff`: their configs key by key and their flattened file lists path by
 * path. Pure: the readers (image-files.ts) give the inputs, the command prints formatReport().
 */
import type {FileInfo, FileTree, ImageSummary} from '@transship/kit/archive'

export type {FileInfo, FileTree, ImageSummary} from '@transship/kit/archive'

export type FileAttribute = keyof FileInfo

/** One attribute that differs, with both values (undefined: the side has none). */
export type AttributeChange = {
  [K in FileAttribute]: {a: FileInfo[K] | undefined; attribute: K; b: FileInfo[K] | undefined}
}[FileAttribute]

export type FileDifference =
  | {a: FileInfo; kind: 'only-in-a'; path: string}
  | {b: FileInfo; kind: 'only-in-b'; path: string}
  | {changes: AttributeChange[]; kind: 'changed'; path: string}

/** A config key (`created`, `config.Env`, `rootfs.diff_ids`, …) whose values differ; undefined: not set. */
export interface ConfigDifference {
  a: unknown
  b: unknown
  /** for two arrays: the first position where they differ */
  index?: number
  key: string
}

export interface FileCounts {
  changed: number
  onlyInA: number
  onlyInB: number
  /** all file differences (the list may show fewer, see --limit) */
  total: number
}

export interface DiffReport {
  a: ImageSummary
  b: ImageSummary
  config: ConfigDifference[]
  counts: FileCounts & {config: number}
  /** the first file differences in path order (at most the limit) */
  files: FileDifference[]
  /**
   * false when both images have the same layers (diffIDs): their filesystems are then equal and the layers
   * were not read
   */
  filesCompared: boolean
  identical: boolean
  /** the most file differences listed (0: all) */
  limit: number
}

/** The order the attributes are compared and reported in: what most often explains a difference first. */
const ATTRIBUTES: FileAttribute[] = [
  'type',
  'linkname',
  'sha256',
  'size',
  'mode',
  'uid',
  'gid',
  'mtime',
  'xattrs',
  'devmajor',
  'devminor',
]

/** The attributes in which two entries of the same path differ (empty when they are equal). */
export function compareFileInfo(a: FileInfo, b: FileInfo): AttributeChange[] {
  const changes: AttributeChange[] = []
  for (const attribute of ATTRIBUTES) {
    if (!sameJson(a[attribute], b[attribute])) {
      changes.push({a: a[attribute], attribute, b: b[attribute]} as AttributeChange)
    }
  }

  return changes
}

/**
 * The differences of two file lists in path order (code-unit order, as `LC_ALL=C sort`), at most `limit` of
 * them (0: all), and how many there are in all.
 */
export function compareFiles(a: FileTree, b: FileTree, limit = 0): {counts: FileCounts; files: FileDifference[]} {
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort(byCodeUnits)
  const counts: FileCounts = {changed: 0, onlyInA: 0, onlyInB: 0, total: 0}
  const files: FileDifference[] = []
  const keep = (difference: FileDifference) => {
    counts.total++
    if (limit === 0 || files.length < limit) files.push(difference)
  }

  for (const path of paths) {
    const left = a.get(path)
    const right = b.get(path)
    if (!right) {
      counts.onlyInA++
      keep({a: left!, kind: 'only-in-a', path})
    } else if (left) {
      const changes = compareFileInfo(left, right)
      if (changes.length > 0) {
        counts.changed++
        keep({changes, kind: 'changed', path})
      }
    } else {
      counts.onlyInB++
      keep({b: right, kind: 'only-in-b', path})
    }
  }

  return {counts, files}
}

/**
 * The config keys whose values differ: top-level keys, `config.*` (Env, Cmd, Entrypoint, Labels, …) and
 * `rootfs.*` one by one, everything else (history, container_config, …) as a whole. Ordered as people read a
 * config: created, author, platform, other top-level keys, config.*, history, rootfs.*.
 */
export function compareConfigs(a: unknown, b: unknown): ConfigDifference[] {
  const left = flattenConfig(a)
  const right = flattenConfig(b)
  const keys = [...new Set([...left.keys(), ...right.keys()])].sort(
    (x, y) => configRank(x) - configRank(y) || byCodeUnits(x, y),
  )
  const differences: ConfigDifference[] = []
  for (const key of keys) {
    const valueA = left.get(key)
    const valueB = right.get(key)
    if (sameJson(valueA, valueB)) continue
    const difference: ConfigDifference = {a: valueA, b: valueB, key}
    if (Array.isArray(valueA) && Array.isArray(valueB)) {
      const length = Math.max(valueA.length, valueB.length)
      for (let position = 0; position < length; position++) {
        if (!sameJson(valueA[position], valueB[position])) {
          difference.index = position
          break
        }
      }
    }

    differences.push(difference)
  }

  return differences
}

/** The keys compareConfigs() compares, with their values. */
function flattenConfig(config: unknown): Map<string, unknown> {
  const result = new Map<string, unknown>()
  if (!isObject(config)) return result
  for (const [key, value] of Object.entries(config)) {
    if ((key === 'config' || key === 'rootfs') && isObject(value)) {
      for (const [inner, innerValue] of Object.entries(value)) result.set(`${key}.${inner}`, innerValue)
    } else {
      result.set(key, value)
    }
  }

  return result
}

const TOP_RANK: Record<string, number> = {architecture: 2, author: 1, created: 0, os: 4, variant: 3}

function configRank(key: string): number {
  if (key in TOP_RANK) return TOP_RANK[key]!
  if (key.startsWith('os.')) return 5
  if (key.startsWith('config.')) return 7
  if (key === 'history') return 8
  if (key.startsWith('rootfs.')) return 9
  return 6
}

/**
 * Puts the comparison together. `files` is undefined when both images have the same layers: the
 * filesystems are then equal without reading them.
 */
export function buildReport(options: {
  a: ImageSummary
  b: ImageSummary
  configA: unknown
  configB: unknown
  files?: {a: FileTree; b: FileTree}
  limit: number
}): DiffReport {
  const {files, limit} = options
  const config = compareConfigs(options.configA, options.configB)
  const compared = files
    ? compareFiles(files.a, files.b, limit)
    : {counts: {changed: 0, onlyInA: 0, onlyInB: 0, total: 0}, files: []}
  const a = files ? {...options.a, files: files.a.size} : options.a
  const b = files ? {...options.b, files: files.b.size} : options.b
  return {
    a,
    b,
    config,
    counts: {...compared.counts, config: config.length},
    files: compared.files,
    filesCompared: files !== undefined,
    identical: config.length === 0 && compared.counts.total === 0,
    limit,
  }
}

const VALUE_WIDTH = 100

/** The report for people: both identities, then `identical`, or the config and file differences. */
export function formatReport(report: DiffReport): string {
  const lines: string[] = []
  for (const [side, image] of [
    ['A', report.a],
    ['B', report.b],
  ] as const) {
    const about = [image.platform, ...image.names].filter(Boolean).join(', ')
    lines.push(`${side}: ${image.input}${about ? ` (${about})` : ''}`, `   config ${image.configDigest}`)
    const count = `${image.diffIDs.length} layer${image.diffIDs.length === 1 ? '' : 's'}`
    const files = image.files === undefined ? '' : `, ${image.files} paths`
    lines.push(`   ${count}${files}:`, ...image.diffIDs.map((diffID) => `     ${diffID}`))
  }

  lines.push('')
  if (report.identical) {
    lines.push('identical: same config and same files')
    return lines.join('\n')
  }

  if (report.config.length === 0) {
    lines.push('config: identical')
  } else {
    lines.push(`config: ${plural(report.config.length, 'key differs', 'keys differ')}`)
    for (const difference of report.config) lines.push(...formatConfigDifference(difference))
  }

  lines.push('', ...formatFileSection(report))
  return lines.join('\n')
}

function formatConfigDifference(difference: ConfigDifference): string[] {
  const {a, b, index, key} = difference
  if (index !== undefined && Array.isArray(a) && Array.isArray(b)) {
    return [
      `  ${key}: first differs at [${index}] (${a.length} and ${b.length} items)`,
      `    A: ${formatJson(a[index])}`,
      `    B: ${formatJson(b[index])}`,
    ]
  }

  return [`  ${key}:`, `    A: ${formatJson(a)}`, `    B: ${formatJson(b)}`]
}

function formatFileSection(report: DiffReport): string[] {
  const {counts} = report
  if (!report.filesCompared) return ['files: identical (both images have the same layers)']
  if (counts.total === 0) {
    // the diffIDs differ (else the files were not read), yet every compared attribute is equal
    return [
      'files: identical in every compared attribute; the layer tars differ in what is not compared (entry order, uname/gname, atime/ctime, tar padding or header encoding)',
    ]
  }

  const lines = [
    `files: ${plural(counts.total, 'difference', 'differences')} (${counts.onlyInA} only in A, ${counts.onlyInB} only in B, ${counts.changed} changed)${
      report.files.length < counts.total ? `; the first ${report.files.length}:` : ':'
    }`,
  ]
  for (const difference of report.files) {
    switch (difference.kind) {
      case 'changed': {
        lines.push(`  changed    ${difference.path}`)
        for (const change of difference.changes) {
          lines.push(
            `               ${change.attribute}: ${formatAttribute(change, 'a')} → ${formatAttribute(change, 'b')}`,
          )
        }

        break
      }

      case 'only-in-a': {
        lines.push(`  only in A  ${difference.path} (${describe(difference.a)})`)
        break
      }

      case 'only-in-b': {
        lines.push(`  only in B  ${difference.path} (${describe(difference.b)})`)
        break
      }
    }
  }

  if (report.files.length < counts.total) {
    lines.push(`  … ${counts.total - report.files.length} more (--limit 0 lists all)`)
  }

  return lines
}

/** One side of an attribute change, in the form people know (`0644`, ISO times, short hashes). */
function formatAttribute(change: AttributeChange, side: 'a' | 'b'): string {
  const value = change[side]
  if (value === undefined) return '(none)'
  switch (change.attribute) {
    case 'mode': {
      return formatMode(value as number)
    }

    case 'mtime': {
      return formatTime(value as number)
    }

    case 'sha256': {
      return (value as string).slice(0, 16)
    }

    case 'xattrs': {
      const other = change[side === 'a' ? 'b' : 'a'] ?? {}
      const own = value as Record<string, string>
      // only the attributes that differ: a file can carry several long ones (security.selinux, ACLs)
      const names = [...new Set([...Object.keys(other), ...Object.keys(own)])].sort(byCodeUnits)
      const shown = names
        .filter((name) => own[name] !== other[name])
        .map((name) => (name in own ? `${name}=${JSON.stringify(own[name])}` : `${name} unset`))
      return `{${shown.join(', ')}}`
    }

    default: {
      return typeof value === 'string' ? JSON.stringify(value) : String(value)
    }
  }
}

function describe(info: FileInfo): string {
  const parts = [info.type, formatMode(info.mode), `${info.uid}:${info.gid}`]
  if (info.type === 'file') parts.push(`${info.size} bytes`)
  if (info.linkname !== undefined) parts.push(`→ ${info.linkname}`)
  return parts.join(' ')
}

function formatMode(mode: number): string {
  return mode.toString(8).padStart(4, '0')
}

function formatTime(seconds: number): string {
  const date = new Date(seconds * 1000)
  return Number.isNaN(date.getTime()) ? String(seconds) : `${date.toISOString().replace('.000Z', 'Z')} (${seconds})`
}

function formatJson(value: unknown): string {
  if (value === undefined) return '(not set)'
  const text = JSON.stringify(value)
  return text.length > VALUE_WIDTH ? `${text.slice(0, VALUE_WIDTH - 1)}…` : text
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`
}

function byCodeUnits(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Deep equality of JSON values; object key order does not matter. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i]))
  }

  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a).filter((key) => a[key] !== undefined)
    const other = Object.keys(b).filter((key) => b[key] !== undefined)
    return keys.length === other.length && keys.every((key) => sameJson(a[key], b[key]))
  }

  return false
}
