import type {Readable} from 'node:stream'

import type {EngineMessage} from '../engine.js'

import {EngineError} from '../errors.js'

/** A line longer than this is not an engine progress message; refuse rather than buffer without bound. */
const MAX_LINE = 1024 * 1024

/** Reads a newline-delimited JSON reply (the engine's progress streams) message by message. */
export async function* readMessages(stream: Readable, host = 'engine'): AsyncIterable<EngineMessage> {
  let pending = ''
  for await (const chunk of stream) {
    pending += (chunk as Buffer).toString('utf8')
    let newline = pending.indexOf('\n')
    while (newline !== -1) {
      const line = pending.slice(0, newline).trim()
      pending = pending.slice(newline + 1)
      if (line) yield parse(line, host)
      newline = pending.indexOf('\n')
    }

    if (pending.length > MAX_LINE) throw new EngineError(`${host}: a reply line exceeds ${MAX_LINE} bytes`, {host})
  }

  const last = pending.trim()
  if (last) yield parse(last, host)
}

function parse(line: string, host: string): EngineMessage {
  try {
    return JSON.parse(line) as EngineMessage
  } catch (error) {
    throw new EngineError(`${host}: the engine sent a reply that is not JSON: ${line.slice(0, 200)}`, {
      cause: error,
      host,
    })
  }
}
