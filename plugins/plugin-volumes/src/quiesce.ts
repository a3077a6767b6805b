/**
 * Stopping the containers that use a volume for the time of a copy, and starting exactly those again
 * afterwards, even when the copy fails or is interrupted. Before anything is stopped, a journal names the
 * containers; if transship dies mid-copy, the next run on that volume starts them first. The journal is keyed
 * by the engine's identity (its ID), not by how its host was written: `--from web1` and
 * `--from ssh://root@web1.example.com` are the same engine, and find the same journal.
 */
import type {EngineClient, Host, Logger} from '@transship/kit'

import {EngineError} from '@transship/kit'
import {createHash} from 'node:crypto'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {VolumeUser} from './volume-store.js'

interface Journal {
  containers: Array<{id: string; name: string}>
  engine: string
  host: string
  volume: string
}

/** States in which a container may write to its volumes. */
const ACTIVE = new Set(['paused', 'restarting', 'running'])

export function isActive(user: VolumeUser): boolean {
  return ACTIVE.has(user.State)
}

/** A container's name (without the leading slash), or its ID. */
export function containerName(user: VolumeUser): string {
  return (user.Names[0] ?? user.Id).replace(/^\//, '')
}

/** `web, db (exited)`: the containers by name, with their state when they do not run. */
export function describeUsers(users: VolumeUser[]): string {
  return users
    .map((user) => (isActive(user) ? containerName(user) : `${containerName(user)} (${user.State})`))
    .join(', ')
}

function journalFile(engine: Host, volume: string): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  const key = createHash('sha256').update(`${engine.id}\0${volume}`).digest('hex').slice(0, 32)
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

/** Starts the containers an interrupted earlier copy of `volume` on that engine left stopped. */
export async function finishInterrupted(host: Host, volume: string, log: Logger): Promise<void> {
  const file = journalFile(host, volume)
  let journal: Journal
  try {
    journal = JSON.parse(await readFile(file, 'utf8')) as Journal
  } catch {
    return
  }

  const names = journal.containers.map((item) => item.name).join(', ')
  log.warn(
    `an earlier copy of ${volume} (on ${journal.host}, the engine of ${host.name}) was interrupted with ${names} stopped: starting ${journal.containers.length === 1 ? 'it' : 'them'} again`,
  )
  const failed = await startAll(host.engine, journal.containers, log)
  if (failed.length === 0) await rm(file, {force: true})
}

export interface QuiesceOptions {
  /** seconds a container gets to stop before it is killed (default 10, as `docker stop`) */
  grace?: number
  log: Logger
  /** what the containers are stopped for, in messages (default: `the copy of VOLUME`) */
  purpose?: string
}

/**
 * Runs `body` with the active containers among `users` stopped (newest first, as they usually depend on
 * older ones) and starts them again (oldest first) afterwards, however `body` ends.
 */
export async function withStopped<T>(
  host: Host,
  volume: string,
  users: VolumeUser[],
  options: QuiesceOptions,
  body: () => Promise<T>,
): Promise<T> {
  const running = users.filter((user) => isActive(user))
  if (running.length === 0) return body()
  const containers = running.map((user) => ({id: user.Id, name: containerName(user)}))
  const file = journalFile(host, volume)
  const {engine} = host
  const purpose = options.purpose ?? `the copy of ${volume}`
  await mkdir(path.dirname(file), {recursive: true})
  await writeFile(file, JSON.stringify({containers, engine: host.id, host: host.name, volume} satisfies Journal))
  try {
    for (const container of [...containers].reverse()) {
      options.log.info(`stopping ${container.name} on ${host.name} for ${purpose}`)
      try {
        await engine.json({method: 'POST', path: `/containers/${container.id}/stop`, query: {t: options.grace ?? 10}})
      } catch (error) {
        // 304: already stopped (it uses both volumes of a copy on one engine, say)
        if (!(error instanceof EngineError && error.status === 304)) throw error
      }
    }

    return await body()
  } finally {
    const failed = await startAll(engine, containers, options.log)
    if (failed.length === 0) {
      await rm(file, {force: true})
      options.log.info(`started ${containers.map((item) => item.name).join(', ')} again on ${host.name}`)
    }
  }
}
