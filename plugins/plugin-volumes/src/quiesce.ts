/**
 * Stopping the containers that write to a volume for the time of a copy, and starting exactly those again
 * afterwards, even when the copy fails or is interrupted. Before anything is stopped, a journal names the
 * containers; if transship dies mid-copy, the next run on that volume starts them first.
 */
import type {EngineClient, Logger} from '@transship/kit'

import {EngineError} from '@transship/kit'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {VolumeUser} from './volume-store.js'

interface Journal {
  containers: Array<{id: string; name: string}>
  host: string
  volume: string
}

function journalFile(host: string, volume: string): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  const key = `${host}--${volume}`.replaceAll(/[^\w.-]/g, '_')
  return path.join(base, 'transship', 'volume-journal', `${key}.json`)
}

async function startAll(engine: EngineClient, containers: Journal['containers'], log: Logger): Promise<string[]> {
  const failed: string[] = []
  for (const container of containers) {
    try {
      // no abort signal: a container stopped for the copy is started again whatever happened
      await engine.json({method: 'POST', path: `/containers/${container.id}/start`})
    } catch (error) {
      // 304: already running
      if (error instanceof EngineError && error.status === 304) continue
      failed.push(container.name)
      log.warn(`could not start ${container.name} again on ${engine.host}: ${(error as Error).message}`)
    }
  }

  return failed
}

/** Starts the containers an interrupted earlier copy of `volume` on `host` left stopped. */
export async function finishInterrupted(
  engine: EngineClient,
  host: string,
  volume: string,
  log: Logger,
): Promise<void> {
  const file = journalFile(host, volume)
  let journal: Journal
  try {
    journal = JSON.parse(await readFile(file, 'utf8')) as Journal
  } catch {
    return
  }

  log.info(
    `an earlier copy of ${volume} on ${host} was interrupted: starting ${journal.containers.map((item) => item.name).join(', ')} again`,
  )
  const failed = await startAll(engine, journal.containers, log)
  if (failed.length === 0) await rm(file, {force: true})
}

export interface QuiesceOptions {
  /** seconds a container gets to stop before it is killed (default 10, as `docker stop`) */
  grace?: number
  log: Logger
}

/**
 * Runs `body` with the running containers among `users` stopped (newest first, as they usually depend on
 * older ones) and starts them again (oldest first) afterwards, however `body` ends.
 */
export async function withStopped<T>(
  engine: EngineClient,
  host: string,
  volume: string,
  users: VolumeUser[],
  options: QuiesceOptions,
  body: () => Promise<T>,
): Promise<T> {
  const running = users.filter((user) => user.State === 'running')
  if (running.length === 0) return body()
  const containers = running.map((user) => ({id: user.Id, name: (user.Names[0] ?? user.Id).replace(/^\//, '')}))
  const file = journalFile(host, volume)
  await mkdir(path.dirname(file), {recursive: true})
  await writeFile(file, JSON.stringify({containers, host, volume} satisfies Journal))
  try {
    for (const container of [...containers].reverse()) {
      options.log.info(`stopping ${container.name} on ${host} for the copy of ${volume}`)
      await engine.json({method: 'POST', path: `/containers/${container.id}/stop`, query: {t: options.grace ?? 10}})
    }

    return await body()
  } finally {
    const failed = await startAll(engine, containers, options.log)
    if (failed.length === 0) {
      await rm(file, {force: true})
      options.log.info(`started ${containers.map((item) => item.name).join(', ')} again on ${host}`)
    }
  }
}
