/**
 * The record of what a rootfs image was built from, kept with the image as the label
 * `org.transship.rootfs.inputs` (canonical JSON: visible with `docker inspect`, and part of the config, so it
 * travels with every copy and output). `plan` computes the record the recipe asks for (the mirror's Release
 * date with one small GET, a digest of a tarball or directory) and compares it with the image's: equal means
 * up to date, else the differing fields say why the image is rebuilt.
 */
import path from 'node:path'

import type {BuildRequest} from '../build.js'

import {type ImageConfigSpec, imagePlatform, runtimeConfigDigest} from '../image/config.js'
import {DEFAULT_MIRROR} from '../source/bootstrap.js'

export const INPUTS_LABEL = 'org.transship.rootfs.inputs'

/** bumped when the meaning of a field changes: an image recorded with another version is rebuilt */
const RECORD_VERSION = 1

export interface InputsRecord {
  /** the config's digest (runtime settings and labels, before this record is added) */
  config: string
  cleanup: boolean
  components?: string[]
  /** tarball or directory: sha256 of its tree as transship reads it, before cleanup (see inputs/content.ts) */
  content?: string
  epoch: null | number
  exclude?: string[]
  include?: string[]
  mirror?: string
  /** tarball or directory: its file name (the image history names it) */
  name?: string
  /** os/architecture[/variant] of the image */
  platform: string
  /** the Date of the mirror's Release file that the packages came from (RFC 3339), null when unknown */
  release?: null | string
  source: 'debootstrap' | 'directory' | 'mmdebstrap' | 'tarball'
  suite?: string
  variant?: null | string
  version: number
}

/** What the request alone does not say: read from the mirror, or from the tarball or directory. */
export interface InputFacts {
  /** tarball or directory: the digest of its content */
  content?: string
  /** bootstrap: the Release file's Date, seconds since the Unix epoch */
  release?: number
}

/** The fields in the order they are written: the same inputs always give the same text. */
const FIELDS = [
  'version',
  'source',
  'suite',
  'mirror',
  'release',
  'variant',
  'components',
  'include',
  'exclude',
  'name',
  'content',
  'platform',
  'epoch',
  'cleanup',
  'config',
] as const satisfies ReadonlyArray<keyof InputsRecord>

/** The record of a build request. */
export function inputsRecord(request: BuildRequest, facts: InputFacts): InputsRecord {
  const {input} = request
  const common = {
    cleanup: request.cleanup ?? true,
    config: runtimeConfigDigest(request.config),
    epoch: request.epoch ?? null,
    platform: formatPlatform(imagePlatform(input.kind === 'bootstrap' ? input.bootstrap.arch : undefined)),
    version: RECORD_VERSION,
  }
  if (input.kind === 'bootstrap') {
    const spec = input.bootstrap
    return {
      ...common,
      components: spec.components ?? [],
      exclude: spec.exclude ?? [],
      include: spec.include ?? [],
      mirror: (spec.mirror ?? DEFAULT_MIRROR).replace(/\/+$/, ''),
      release: facts.release === undefined ? null : new Date(facts.release * 1000).toISOString(),
      source: spec.tool,
      suite: spec.suite,
      variant: spec.variant ?? null,
    }
  }

  return {
    ...common,
    content: facts.content,
    name: path.basename(input.path),
    source: input.kind,
  }
}

/** The label's value. */
export function formatRecord(record: InputsRecord): string {
  return JSON.stringify(Object.fromEntries(FIELDS.map((field) => [field, record[field]])))
}

/** The record a label holds; undefined when it is not one. */
export function parseRecord(label: string): InputsRecord | undefined {
  try {
    const value = JSON.parse(label) as unknown
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
    const record = value as Partial<InputsRecord>
    if (typeof record.version !== 'number' || typeof record.source !== 'string') return undefined
    return record as InputsRecord
  } catch {
    return undefined
  }
}

/** The config of a build: the user's, plus the record. */
export function withRecord(config: ImageConfigSpec | undefined, record: InputsRecord): ImageConfigSpec {
  return {...config, labels: {...config?.labels, [INPUTS_LABEL]: formatRecord(record)}}
}

/** Why an image built with `previous` is not what `wanted` asks for; [] when it is. */
export function inputChanges(previous: InputsRecord, wanted: InputsRecord): string[] {
  if (previous.version !== wanted.version) return ['its inputs were recorded by another version of transship']
  if (previous.source !== wanted.source) return [`the source changed (${previous.source} → ${wanted.source})`]
  const changes: string[] = []
  for (const field of FIELDS) {
    const before = previous[field]
    const after = wanted[field]
    if (JSON.stringify(before) === JSON.stringify(after)) continue
    switch (field) {
      case 'config': {
        changes.push('the image config changed')
        break
      }

      case 'content': {
        changes.push(`the ${wanted.source}'s content changed`)
        break
      }

      case 'release': {
        changes.push(`the mirror's Release date changed (${show(before)} → ${show(after)})`)
        break
      }

      default: {
        changes.push(`${field} changed (${show(before)} → ${show(after)})`)
      }
    }
  }

  return changes
}

function show(value: unknown): string {
  if (value === undefined || value === null) return 'none'
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.join(', ')
  return String(value)
}

function formatPlatform(platform: {architecture: string; variant?: string}): string {
  return `linux/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`
}
