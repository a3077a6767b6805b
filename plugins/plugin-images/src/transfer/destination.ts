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
  return sameLayers && found.Created === image.created ? found : undefined
}

/** The layers of `image` the destination lacks (by chain: a layer is reusable only on the same stack). */
export function missingLayers(destination: DestinationState, image: SourceImage): string[] {
  return image.diffIDs.filter((_, index) => !destination.chains.has(image.chains[index]!))
}
