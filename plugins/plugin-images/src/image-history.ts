import type {EngineClient} from '@transship/kit'

import {requireImage} from './image-store.js'

export interface HistoryEntry {
  comment: string
  created: string
  createdBy: string
  /** the layer this entry made (sha256:…), when the entries with a size line up with the image's layers */
  diffID?: string
  /** the image ID of this step, when the engine has it (built or pulled here), else undefined */
  id?: string
  size: number
  tags: string[]
}

export interface HistoryResult {
  /** the image's layers, bottom first (RootFS.Layers) */
  diffIDs: string[]
  /** newest first, as the engine lists them */
  history: HistoryEntry[]
  host: string
  id: string
  ref: string
}

interface EngineHistoryItem {
  Comment?: string
  Created: number
  CreatedBy?: string
  Id: string
  Size: number
  Tags?: null | string[]
}

/**
 * An image's history on an engine, newest first, with the layer each step with a size made when those steps
 * line up with the image's layers (`lined`).
 */
export async function imageHistory(
  engine: EngineClient,
  ref: string,
  host: string,
  signal: AbortSignal,
): Promise<{lined: boolean; result: HistoryResult}> {
  const image = await requireImage(engine, ref, signal)
  const items = await engine.json<EngineHistoryItem[]>({
    path: `/images/${encodeURIComponent(image.Id)}/history`,
    signal,
  })
  const diffIDs = image.RootFS.Layers ?? []
  const history: HistoryEntry[] = items.map((item) => ({
    comment: item.Comment ?? '',
    created: new Date(item.Created * 1000).toISOString(),
    createdBy: item.CreatedBy ?? '',
    id: item.Id && item.Id !== '<missing>' ? item.Id : undefined,
    size: item.Size,
    tags: item.Tags ?? [],
  }))
  const layered = history.filter((entry) => entry.size > 0)
  const lined = layered.length === diffIDs.length
  if (lined) for (const [position, entry] of [...layered].reverse().entries()) entry.diffID = diffIDs[position]
  return {lined, result: {diffIDs, history, host, id: image.Id, ref}}
}
