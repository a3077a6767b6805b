import type {EngineClient, EngineFacts} from '@transship/kit'

import type {SourceImage} from './images.js'

import {type ImageInspect, inspectImage, listImages} from '../image-store.js'
import {chainIds} from './chain.js'

/** What a destination engine already holds, as far as the transfer is concerned. */
export interface DestinationState {
  /** chain IDs of every layer stack of every image it has */
  chains: Set<string>
  /** diffIDs of every layer of every image it has */
  diffIDs: Set<string>
  engine: EngineClient
  facts: EngineFacts
  host: string
}

export async function probeDestination(
  host: string,
  engine: EngineClient,
  signal?: AbortSignal,
): Promise<DestinationState> {
  const facts = await engine.facts(signal)
  const chains = new Set<string>()
  const diffIDs = new Set<string>()
  const seen = new Set<string>()
  for (const summary of await listImages(engine, signal)) {
    if (seen.has(summary.Id)) continue
    seen.add(summary.Id)
    const image = await inspectImage(engine, summary.Id, signal)
    const layers = image?.RootFS.Layers ?? []
    for (const chain of chainIds(layers)) chains.add(chain)
    for (const layer of layers) diffIDs.add(layer)
  }

  return {chains, diffIDs, engine, facts, host}
}

/** Whether the destination already holds this image: same config (classic store ID) or same layers and config. */
export async function holdsImage(
  destination: DestinationState,
  image: SourceImage,
  signal?: AbortSignal,
): Promise<ImageInspect | undefined> {
  const found = await inspectImage(destination.engine, image.ref, signal)
  if (!found) return undefined
  if (found.Id === image.id) return found
  const sameLayers = JSON.stringify(found.RootFS.Layers ?? []) === JSON.stringify(image.diffIDs)
  return sameLayers && found.Created === image.created && sameSettings(found.Config, image.config) ? found : undefined
}

/**
 * The settings of an image config that engines report alike (a classic and a containerd store differ in IDs
 * and in the build-time `Image` field): a rebuilt image with the same layers and time but another CMD, ENV or
 * label is another image.
 */
const SETTINGS = [
  'Cmd',
  'Entrypoint',
  'Env',
  'ExposedPorts',
  'Healthcheck',
  'Labels',
  'OnBuild',
  'StopSignal',
  'User',
  'Volumes',
  'WorkingDir',
] as const

function sameSettings(a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): boolean {
  // an empty list and an absent one are the same setting
  const value = (config: Record<string, unknown> | undefined, key: string) => {
    const item = config?.[key]
    return item === undefined || item === null || item === '' || (Array.isArray(item) && item.length === 0)
      ? null
      : JSON.stringify(item)
  }

  return SETTINGS.every((key) => value(a, key) === value(b, key))
}

/** The layers of `image` the destination lacks (by chain: a layer is reusable only on the same stack). */
export function missingLayers(destination: DestinationState, image: SourceImage): string[] {
  return image.diffIDs.filter((_, index) => !destination.chains.has(image.chains[index]!))
}
