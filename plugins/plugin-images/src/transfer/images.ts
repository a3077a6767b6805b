import type {EngineClient} from '@transship/kit'

import {requireImage} from '../image-store.js'
import {chainIds} from './chain.js'

/** One image to transfer, as the source engine describes it. */
export interface SourceImage {
  chains: string[]
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
    images.push({chains: chainIds(diffIDs), created: image.Created, diffIDs, id: image.Id, ref})
  }

  return images
}
