import type {Readable} from 'node:stream'

import type {EngineClient} from '../engine.js'

export interface EngineLoadResult {
  /** image IDs the engine reported for images without a name */
  ids: string[]
  /** names the engine reported (`Loaded image: app:1`) */
  names: string[]
}

/**
 * `POST /images/load` with `body` (an archive, compressed as the engine accepts), reading the whole reply:
 * an in-band error rejects (EngineError).
 */
export async function engineLoad(
  engine: EngineClient,
  body: Readable,
  signal?: AbortSignal,
): Promise<EngineLoadResult> {
  const result: EngineLoadResult = {ids: [], names: []}
  const messages = engine.messages({
    body,
    headers: {'content-type': 'application/x-tar'},
    method: 'POST',
    path: '/images/load',
    signal,
  })
  for await (const message of messages) {
    const text =
      typeof message.stream === 'string' ? message.stream : typeof message.status === 'string' ? message.status : ''
    for (const line of text.split('\n')) {
      const id = /^Loaded image ID: (\S+)/.exec(line.trim())
      const name = /^Loaded image: (\S+)/.exec(line.trim())
      if (id) result.ids.push(id[1]!)
      else if (name) result.names.push(name[1]!)
    }
  }

  return result
}
