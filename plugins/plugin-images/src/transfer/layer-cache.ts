import {mkdir, readFile, rename, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {LayerPathCache, ResolvedLayer} from './layer-resolver.js'

/** Entries kept per engine; the oldest are dropped first. */
const MAX_ENTRIES = 20_000

function cacheFile(engineId: string): string {
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache')
  return path.join(base, 'transship', 'layer-paths', `${engineId.replaceAll(/[^\w-]/g, '_')}.json`)
}

/** What earlier runs learned about the save streams of this engine (a lost or corrupt cache only costs speed). */
export async function loadLayerCache(id: string): Promise<LayerPathCache> {
  try {
    const entries = JSON.parse(await readFile(cacheFile(id), 'utf8')) as Array<[string, ResolvedLayer]>
    return new Map(entries)
  } catch {
    return new Map()
  }
}

export async function saveLayerCache(id: string, cache: LayerPathCache): Promise<void> {
  const file = cacheFile(id)
  await mkdir(path.dirname(file), {recursive: true})
  const entries = [...cache.entries()].slice(-MAX_ENTRIES)
  const temporary = `${file}.${process.pid}.tmp`
  await writeFile(temporary, JSON.stringify(entries))
  await rename(temporary, file)
}
