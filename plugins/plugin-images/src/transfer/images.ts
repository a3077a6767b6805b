import type {EngineClient} from '@transship/kit'

import {requireImage} from '../image-store.js'
import {chainIds} from './chain.js'

/** One image to transfer, as the source engine describes it. */
export interface SourceImage {
  chains: string[]
  /** the runtime settings (inspect's Config), to tell apart images that share their layers */
  config?: Record<string, unknown>
  created: string
  diffIDs: string[]
  /** the engine's image ID: the config digest on a classic store, the manifest digest on a containerd store */
  id: string
  ref: string
}

export async function describeSourceImages(
  engine: EngineClient,
  refs: string[],
  signal?: AbortSignal,
): Promise<SourceImage[]> {
  const images: SourceImage[] = []
  for (const ref of refs) {
    const image = await requireImage(engine, ref, signal)
    const diffIDs = image.RootFS.Layers ?? []
    images.push({chains: chainIds(diffIDs), config: image.Config, created: image.Created, diffIDs, id: image.Id, ref})
  }

  return images
}

/**
 * Uncompressed layer sizes, from the image history: its entries with a size are its layers, oldest
 * first. When the count does not match (empty layers), the sizes stay unknown rather than wrong.
 */
export async function layerSizes(
  engine: EngineClient,
  images: SourceImage[],
  signal?: AbortSignal,
): Promise<Map<string, number>> {
  const sizes = new Map<string, number>()
  for (const image of images) {
    const history = await engine.json<Array<{Size: number}>>({
      path: `/images/${encodeURIComponent(image.id)}/history`,
      signal,
    })
    const layered = history.filter((item) => item.Size > 0).reverse()
    if (layered.length !== image.diffIDs.length) continue
    for (const [position, diffID] of image.diffIDs.entries()) sizes.set(diffID, layered[position]!.Size)
  }

  return sizes
}
