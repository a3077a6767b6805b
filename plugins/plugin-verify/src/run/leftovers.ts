/**
 * Who made a container or image: every container the runner creates carries labels naming its run (this
 * machine's hostname and boot, the process ID and the process's start time), and the images committed from it
 * inherit them. A run killed outright (SIGKILL, a lost machine) cannot remove what it made; the next run on the
 * same engine does, but only what provably belongs to a dead run, since other runs (other CI jobs, other users)
 * may be using the same engine at the same time: a run of this machine whose process is gone (or is another
 * process with the same ID), or anything older than STALE_AFTER_MS (a run of another machine, or from before the
 * owner labels). Nothing without the runner's label is ever touched.
 */
import type {EngineClient} from '@transship/kit'

import {readFileSync} from 'node:fs'
import os from 'node:os'

import {removeContainer, removeImage} from './containers.js'

/** The label every container of the runner carries (and so the images committed from it). */
export const RUNNER_LABEL = 'io.transship.verify'
export const OWNER_HOST_LABEL = 'io.transship.verify.host'
export const OWNER_BOOT_LABEL = 'io.transship.verify.boot'
export const OWNER_PID_LABEL = 'io.transship.verify.pid'
export const OWNER_START_LABEL = 'io.transship.verify.start'

/** Leftovers whose run cannot be checked are removed only when older than this: no verify run takes a day. */
export const STALE_AFTER_MS = 24 * 60 * 60 * 1000

export interface Owner {
  boot: string
  host: string
  pid: number
  /** the process's start time in clock ticks since boot (/proc/PID/stat), '' when unknown */
  start: string
}

/** Field 22 of /proc/PID/stat (starttime), or undefined when there is no such process (or no /proc). */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the command name (field 2) is in parentheses and may hold spaces: count from the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields[19]
  } catch {
    return undefined
  }
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return ''
  }
}

let self: Owner | undefined

/** This process, as the labels name it. */
export function currentOwner(): Owner {
  self ??= {boot: bootId(), host: os.hostname(), pid: process.pid, start: processStart(process.pid) ?? ''}
  return self
}

/** The labels of a container made by this process. */
export function ownerLabels(owner: Owner = currentOwner()): Record<string, string> {
  return {
    [OWNER_BOOT_LABEL]: owner.boot,
    [OWNER_HOST_LABEL]: owner.host,
    [OWNER_PID_LABEL]: String(owner.pid),
    [OWNER_START_LABEL]: owner.start,
    [RUNNER_LABEL]: 'runner',
  }
}

/**
 * Whether the run that labelled something is provably over: its process is gone from this machine (same
 * hostname and boot; a process with its ID but another start time is another process), or it is older than
 * STALE_AFTER_MS. `created` is in ms since the epoch.
 */
export function isAbandoned(
  labels: null | Record<string, string> | undefined,
  created: number,
  now = Date.now(),
): boolean {
  if (labels?.[RUNNER_LABEL] === undefined) return false
  if (now - created > STALE_AFTER_MS) return true
  const me = currentOwner()
  const host = labels[OWNER_HOST_LABEL]
  const boot = labels[OWNER_BOOT_LABEL]
  const pid = Number(labels[OWNER_PID_LABEL])
  const start = labels[OWNER_START_LABEL]
  if (host !== me.host || !boot || boot !== me.boot || !Number.isSafeInteger(pid) || pid <= 0 || !start) return false
  if (pid === me.pid && start === me.start) return false
  return processStart(pid) !== start
}

interface Listed {
  Created?: number | string
  Id: string
  Labels?: null | Record<string, string>
  RepoTags?: null | string[]
}

/** Removes the containers, then the images, that abandoned runs left on this engine; what was removed. */
export async function removeLeftovers(
  engine: EngineClient,
  signal: AbortSignal,
  log?: {debug(m: string): void},
): Promise<{containers: string[]; images: string[]}> {
  const filters = JSON.stringify({label: [RUNNER_LABEL]})
  const removed = {containers: [] as string[], images: [] as string[]}
  const containers = await engine.json<Listed[]>({path: '/containers/json', query: {all: true, filters}, signal})
  for (const container of containers) {
    // the container list gives Created in seconds
    if (!isAbandoned(container.Labels, Number(container.Created) * 1000)) continue
    await removeContainer(engine, container.Id).then(
      () => removed.containers.push(container.Id),
      (error: unknown) => log?.debug(`verify: removing leftover container ${container.Id} failed: ${String(error)}`),
    )
  }

  const images = await engine.json<Listed[]>({path: '/images/json', query: {all: true, filters}, signal})
  // committed images form chains: the newest first, so that each is no longer the parent of another
  images.sort((a, b) => Number(b.Created) - Number(a.Created))
  for (const image of images) {
    // an image someone tagged is kept: it is theirs now
    if ((image.RepoTags ?? []).some((tag) => tag !== '<none>:<none>')) continue
    if (!isAbandoned(image.Labels, Number(image.Created) * 1000)) continue
    await removeImage(engine, image.Id).then(
      () => removed.images.push(image.Id),
      (error: unknown) => log?.debug(`verify: removing leftover image ${image.Id} failed: ${String(error)}`),
    )
  }

  if (removed.containers.length + removed.images.length > 0) {
    log?.debug(
      `verify: removed ${removed.containers.length} containers and ${removed.images.length} images left by runs that were killed`,
    )
  }

  return removed
}
