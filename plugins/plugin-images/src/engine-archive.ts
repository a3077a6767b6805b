import type {IncomingMessage} from 'node:http'

import {compareApiVersions, type EngineClient, type EngineFacts, ExitCode, TransshipError} from '@transship/kit'
import {type ArchiveFormat, type ArchiveLayer, type Compression, familiarName, fullName} from '@transship/kit/archive'
import {type EngineLoadResult} from '@transship/kit/engine'

import {inspectImage} from './image-store.js'

/** What an engine's `docker save` writes and its `docker load` reads. */
export interface EngineArchiveSupport {
  /** the compressions `POST /images/load` decompresses itself */
  compressions: Compression[]
  /** the archive layouts `POST /images/load` reads */
  formats: ArchiveFormat[]
  /** what `GET /images/get` writes */
  native: ArchiveFormat
}

function atLeast(apiVersion: string, wanted: string): boolean {
  return compareApiVersions(apiVersion, wanted) >= 0
}

/**
 * By API version: Docker 20.10 (API 1.41) writes and reads the docker-archive layout only and decompresses
 * gzip, bzip2 and xz; Docker 23 (1.42) added zstd; Docker 25 (1.44) writes an OCI layout plus manifest.json
 * and reads OCI layouts (both image stores). Observed: 20.10 and 26.1 (containerd store) on the test bed.
 */
export function archiveSupport(facts: Pick<EngineFacts, 'apiVersion'>): EngineArchiveSupport {
  const oci = atLeast(facts.apiVersion, '1.44')
  return {
    compressions: atLeast(facts.apiVersion, '1.42')
      ? ['none', 'gzip', 'bzip2', 'xz', 'zstd']
      : ['none', 'gzip', 'bzip2', 'xz'],
    formats: oci ? ['docker', 'docker+oci', 'oci'] : ['docker', 'docker+oci'],
    native: oci ? 'docker+oci' : 'docker',
  }
}

/** `GET /images/get`: the engine's archive of the images `names` (IDs or references), as a stream. */
export async function engineSave(
  engine: EngineClient,
  names: string[],
  signal?: AbortSignal,
): Promise<IncomingMessage> {
  return engine.stream({path: '/images/get', query: {names}, signal})
}

/** What a loaded image must look like: its layers, names and (where known) the ID it gets. */
export interface ExpectedImage {
  configDigest: string
  /** the image index (multi-platform) that leads to the manifest, when the engine was sent one */
  indexDigest?: string
  layers: Array<{diffID: string}>
  /** the OCI/Docker manifest digest the engine was sent (a containerd-store engine's image ID) */
  manifestDigest?: string
  repoTags: string[]
}

export interface VerifiedImage {
  /** the image's ID on the engine */
  id: string
  /** layers (diffIDs) */
  layers: string[]
  tags: string[]
}

function same(a: string[] | undefined, b: string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i])
}

/** The ID an image must have on the engine, when it can be known: */
function expectedId(image: ExpectedImage, facts: EngineFacts): string | undefined {
  // a classic engine names an image by its config; the containerd store by what its name points at
  return facts.imageStore === 'classic' ? image.configDigest : (image.indexDigest ?? image.manifestDigest)
}

/**
 * Checks that every image of an archive is on the engine with exactly the archive's layers (diffIDs), and
 * with the ID it must have: the config digest on a classic engine, the manifest (or image index) digest on a
 * containerd-store engine (when the archive sent had one). A name that several images of the archive carry
 * (the platforms of a multi-platform image) must give one of them. Untagged images are found by that ID, or
 * among the IDs the engine reported. A difference is a TransshipError with exit 5.
 */
export async function verifyLoaded(options: {
  engine: EngineClient
  facts: EngineFacts
  images: ExpectedImage[]
  loaded: EngineLoadResult
  signal?: AbortSignal
}): Promise<VerifiedImage[]> {
  const {engine, facts, images, loaded, signal} = options
  const problems: string[] = []
  const verified = new Map<ExpectedImage, VerifiedImage>()
  const diffIDs = (image: ExpectedImage) => image.layers.map((layer) => layer.diffID)
  const matches = (image: ExpectedImage, found: {Id: string; RootFS: {Layers?: string[]}}) => {
    const id = expectedId(image, facts)
    return same(found.RootFS.Layers, diffIDs(image)) && (!id || found.Id === id)
  }

  const tags = [...new Set(images.flatMap((image) => image.repoTags))]
  for (const tag of tags) {
    const found = await inspectImage(engine, tag, signal)
    if (!found) {
      problems.push(`${tag} is not on host "${engine.host}" after the load`)
      continue
    }

    const carriers = images.filter((image) => image.repoTags.includes(tag))
    const match = carriers.find((image) => matches(image, found))
    if (match) {
      const entry = verified.get(match) ?? {id: found.Id, layers: diffIDs(match), tags: []}
      entry.tags.push(tag)
      verified.set(match, entry)
    } else {
      const wanted = carriers.map((image) => expectedId(image, facts)).filter(Boolean)
      problems.push(
        `${tag} on host "${engine.host}" is ${found.Id}${wanted.length > 0 ? ` (expected ${wanted.join(' or ')})` : ''}, with ${
          same(found.RootFS.Layers, diffIDs(carriers[0]!)) ? 'the' : 'other'
        } layers than the archive`,
      )
    }
  }

  for (const image of images.filter((each) => each.repoTags.length === 0)) {
    const id = expectedId(image, facts)
    const candidates = [...new Set([...(id ? [id] : []), ...loaded.ids])]
    for (const candidate of candidates) {
      const found = await inspectImage(engine, candidate, signal)
      if (found && matches(image, found)) {
        verified.set(image, {id: found.Id, layers: diffIDs(image), tags: []})
        break
      }
    }

    if (!verified.has(image)) {
      problems.push(
        `the untagged image ${image.configDigest.slice(0, 19)} is not on host "${engine.host}" after the load`,
      )
    }
  }

  if (problems.length > 0) {
    throw new TransshipError(
      'LOAD_VERIFY_FAILED',
      ExitCode.Verify,
      `the load did not give the archive's images: ${problems.join('; ')}`,
      {
        details: {host: engine.host, problems},
        suggestions: [`see what the host has: transship image ls --host ${engine.host}`],
      },
    )
  }

  // in the archive's order; images of a multi-platform name that the engine did not pick are not listed
  return images.flatMap((image) => {
    const entry = verified.get(image)
    return entry ? [entry] : []
  })
}

export interface ArchiveNameKind {
  compression?: Compression
  format?: ArchiveFormat
}

const SUFFIXES: Array<[string, Compression, string]> = [
  ['.tgz', 'gzip', '.tar'],
  ['.tzst', 'zstd', '.tar'],
  ['.tbz2', 'bzip2', '.tar'],
  ['.tbz', 'bzip2', '.tar'],
  ['.txz', 'xz', '.tar'],
  ['.gz', 'gzip', ''],
  ['.zst', 'zstd', ''],
  ['.bz2', 'bzip2', ''],
  ['.xz', 'xz', ''],
]

/**
 * What an archive's file name says about it: `.oci.tar` an OCI layout, another `.tar` a docker-archive (the
 * engine's own layout: format left undefined), and a compression suffix (`.gz`/`.tgz`, `.zst`/`.tzst`,
 * `.bz2`/`.tbz2`, `.xz`/`.txz`); `none` for a plain `.tar`.
 */
export function archiveKindFromName(file: string): ArchiveNameKind {
  const lower = file.toLowerCase()
  let rest = lower
  let compression: Compression | undefined
  for (const [suffix, kind, replacement] of SUFFIXES) {
    if (lower.endsWith(suffix)) {
      compression = kind
      rest = lower.slice(0, -suffix.length) + replacement
      break
    }
  }

  const result: ArchiveNameKind = {}
  if (compression) result.compression = compression
  else if (rest.endsWith('.tar')) result.compression = 'none'
  if (rest.endsWith('.oci.tar') || rest.endsWith('.oci')) result.format = 'oci'
  return result
}

/** Layers by every entry path that leads to their body (the path and its aliases). */
export function layerPaths(layers: ArchiveLayer[]): Map<string, ArchiveLayer> {
  const byPath = new Map<string, ArchiveLayer>()
  for (const layer of layers) for (const entry of [layer.path, ...(layer.aliases ?? [])]) byPath.set(entry, layer)
  return byPath
}

/**
 * Images in the order they were asked for (`refs`: names or IDs), so that an archive of the same images is
 * written the same way each time (Docker 20.10 lists them in no particular order).
 */
export function inRequestOrder<T extends {configDigest: string; repoTags: string[]}>(images: T[], refs: string[]): T[] {
  const wanted = refs.map((ref) => (/^(sha256:)?[0-9a-f]{12,64}$/.test(ref) ? ref : familiarName(fullName(ref))))
  const rank = (image: T) => {
    const position = wanted.findIndex(
      (ref) => image.repoTags.includes(ref) || image.configDigest.slice(7).startsWith(ref.replace(/^sha256:/, '')),
    )
    return position === -1 ? wanted.length : position
  }

  return [...images].sort((a, b) => rank(a) - rank(b))
}

/**
 * The images to write for an engine that reads manifest.json only: where several images carry the same name
 * (the platforms of a multi-platform image), only the one for the engine's platform (else the first), since
 * the name can point at one image only.
 */
export function forPlatform<T extends {platform?: string; repoTags: string[]}>(
  images: T[],
  facts: Pick<EngineFacts, 'arch' | 'os'>,
): T[] {
  const platform = `${facts.os}/${facts.arch}`
  return images.filter((image) => {
    const group = images.filter((other) => other.repoTags.some((tag) => image.repoTags.includes(tag)))
    if (group.length <= 1) return true
    const preferred =
      group.find((each) => each.platform === platform || each.platform?.startsWith(`${platform}/`)) ?? group[0]
    return preferred === image
  })
}
