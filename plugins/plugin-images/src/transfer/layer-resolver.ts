import {createHash} from 'node:crypto'

import type {SourceImage} from './images.js'

import {nextChainId} from './chain.js'

/** What an archive entry of a source's save stream stands for, when it is a layer. */
export interface ResolvedLayer {
  /** the chain IDs this layer entry provides, in the images of the archive */
  chains: string[]
  diffID: string
}

/** Learned mappings of a source engine: archive entry path → layer, kept between runs. */
export type LayerPathCache = Map<string, ResolvedLayer>

/** the key moby's v1.CreateID adds to a layer's json */
const LAYER_ID = 'layer_id'
const LEGACY_LAYER = /^([\da-f]{64})\/layer\.tar$/
const LEGACY_JSON = /^([\da-f]{64})\/json$/
const OCI_BLOB = /^blobs\/sha256\/([\da-f]{64})$/

export function isLegacyLayerName(name: string): boolean {
  return LEGACY_LAYER.test(name)
}

export function isLayerEntryName(name: string): boolean {
  return LEGACY_LAYER.test(name) || OCI_BLOB.test(name)
}

/**
 * Tells, at the header of a layer entry of `GET /images/get`, which layer it is, so that the entry can be
 * left out for destinations that have it, without reading the stream twice.
 *
 * - OCI blobs (Docker 25+) are named by digest: an uncompressed layer's digest is its diffID.
 * - Legacy layer directories (Docker 20.10) are named by v1 IDs. They are resolved from what earlier runs
 *   learned (the cache), else by following the `parent` links of the `<dir>/json` entries, which come
 *   before each `<dir>/layer.tar`: a layer without a parent is the base, a layer whose parent is resolved
 *   is the next in that chain, and the layer that carries the image config is the top.
 * An entry that cannot be resolved is sent: correct, only less thrifty. At the end of the stream,
 * `learn` records the exact mapping from manifest.json for the next runs.
 */
export class LayerResolver {
  private readonly byDir = new Map<string, ResolvedLayer>()

  constructor(
    private readonly images: SourceImage[],
    private readonly cache: LayerPathCache,
  ) {}

  /** Records manifest.json's mapping of layer paths to the diffIDs of each image's config. */
  learn(manifest: Array<{Config: string; Layers: string[]}>, configs: Map<string, Buffer>): void {
    for (const entry of manifest) {
      const config = configs.get(entry.Config)
      if (!config) continue
      const diffIDs = (JSON.parse(config.toString('utf8')) as {rootfs?: {diff_ids?: string[]}}).rootfs?.diff_ids ?? []
      let chain: string | undefined
      for (const [index, path] of entry.Layers.entries()) {
        const diffID = diffIDs[index]
        if (!diffID) break
        chain = nextChainId(chain, diffID)
        const known = this.cache.get(path)
        const chains = new Set([chain, ...(known?.diffID === diffID ? known.chains : [])])
        this.cache.set(path, {chains: [...chains], diffID})
      }
    }
  }

  /** Notes a legacy `<dir>/json` entry: its parent link resolves the layer that follows it. */
  noteLegacyJson(name: string, body: Buffer): void {
    const dir = LEGACY_JSON.exec(name)?.[1]
    if (!dir) return
    let json: {config?: unknown; created?: string; parent?: string}
    try {
      json = JSON.parse(body.toString('utf8')) as typeof json
    } catch {
      return
    }

    // Docker derives a layer's v1 directory name from its json and chain ID: recomputing it names the
    // layer for certain, whatever order the directories come in
    const named = this.chainByV1Id(dir, json as Record<string, unknown>)
    if (named) {
      const diffID = this.diffIdOfChain(named)
      if (diffID) this.byDir.set(dir, {chains: [named], diffID})
      return
    }

    const candidates = new Set<string>()
    if (json.config !== undefined) {
      // the top layer carries the image config; with several images, its creation time tells which
      for (const image of this.images) {
        if (this.images.length === 1 || image.created === json.created) candidates.add(image.chains.at(-1)!)
      }
    } else if (json.parent) {
      const parent = this.byDir.get(json.parent) ?? this.cache.get(`${json.parent}/layer.tar`)
      for (const parentChain of parent?.chains ?? []) {
        for (const image of this.images) {
          const position = image.chains.indexOf(parentChain)
          if (position !== -1 && image.chains[position + 1]) candidates.add(image.chains[position + 1]!)
        }
      }
    } else {
      for (const image of this.images) if (image.chains[0]) candidates.add(image.chains[0])
    }

    if (candidates.size !== 1) return
    const chain = [...candidates][0]!
    const diffID = this.diffIdOfChain(chain)
    if (diffID) this.byDir.set(dir, {chains: [chain], diffID})
  }

  resolve(name: string): ResolvedLayer | undefined {
    const cached = this.cache.get(name)
    if (cached) return cached
    const dir = LEGACY_LAYER.exec(name)?.[1]
    if (dir) return this.byDir.get(dir)
    const digest = OCI_BLOB.exec(name)?.[1]
    if (!digest) return undefined
    return this.resolveDiffId(`sha256:${digest}`)
  }

  /** The layer with this diffID in the archive's images, if it is one of theirs. */
  resolveDiffId(diffID: string): ResolvedLayer | undefined {
    const chains = this.images.flatMap((image) => image.chains.filter((_, index) => image.diffIDs[index] === diffID))
    return chains.length > 0 ? {chains, diffID} : undefined
  }

  /**
   * The chain ID whose v1 ID (moby's `v1.CreateID`) is `dir`: sha256 of the layer's json without `id`,
   * with `parent` as a digest and `layer_id` set to the chain ID, keys sorted, encoded as Go does. Lower
   * layers were named before their `os` was set; the top layer's json is the image's and keeps it.
   */
  private chainByV1Id(dir: string, json: Record<string, unknown>): string | undefined {
    const base = Object.fromEntries(Object.entries(json).filter(([key]) => key !== 'id'))
    if (typeof json.parent === 'string') base.parent = `sha256:${json.parent}`
    const variants = [base, Object.fromEntries(Object.entries(base).filter(([key]) => key !== 'os'))]
    for (const image of this.images) {
      for (const chain of image.chains) {
        for (const variant of variants) {
          const fields: Record<string, unknown> = {...variant}
          fields[LAYER_ID] = chain
          const encoded = `{${Object.keys(fields)
            .sort()
            .map((key) => `${goJson(key)}:${goJson(fields[key])}`)
            .join(',')}}`
          if (createHash('sha256').update(encoded).digest('hex') === dir) return chain
        }
      }
    }

    return undefined
  }

  private diffIdOfChain(chain: string): string | undefined {
    for (const image of this.images) {
      const index = image.chains.indexOf(chain)
      if (index !== -1) return image.diffIDs[index]
    }

    return undefined
  }
}

const GO_ESCAPES: Record<string, string> = {
  '&': String.raw`\u0026`,
  '<': String.raw`\u003c`,
  '>': String.raw`\u003e`,
  [String.raw`\b`]: String.raw`\u0008`,
  [String.raw`\f`]: String.raw`\u000c`,
  '\u2028': String.raw`\u2028`,
  '\u2029': String.raw`\u2029`,
}

/** JSON as Go's encoding/json writes it: compact, `<>&` and U+2028/2029 escaped, \b and \f as \u00XX. */
export function goJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => goJson(item)).join(',')}]`
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([key, item]) => `${goJson(key)}:${goJson(item)}`)
      .join(',')}}`
  }

  if (typeof value !== 'string') return JSON.stringify(value)
  return JSON.stringify(value).replaceAll(/\\.|[<>&\u2028\u2029]/g, (match) => GO_ESCAPES[match] ?? match)
}
