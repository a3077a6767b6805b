/**
 * Which checks passed on which image of which engine, remembered in
 * ~/.cache/transship/verified/<engine ID>.json (XDG_CACHE_HOME honoured) as `<image ID> <checks digest>`. A
 * recipe's checks are planned again only when the image or the checks changed, or when they have not passed
 * there yet (a failed check is not remembered, so the next apply runs it again). A lost record costs a run of
 * the checks, nothing else. `transship verify` runs checks whenever asked.
 */
import {createHash} from 'node:crypto'
import {mkdir, readFile, rename, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {VerifyConfig} from './config/types.js'

/** passes kept per engine; the oldest are forgotten first */
const MAX_ENTRIES = 5000

interface Passed {
  /** when, ISO 8601 */
  at: string
  checks: number
}

/** sha256 of the checks, written with sorted keys: the same checks give the same digest however written. */
export function checksDigest(config: VerifyConfig): string {
  return `sha256:${createHash('sha256').update(canonical(config)).digest('hex')}`
}

export async function hasPassed(engineId: string, imageId: string, checks: string): Promise<boolean> {
  return (await load(engineId))[`${imageId} ${checks}`] !== undefined
}

/** steps of one run record passes at the same time: one read-modify-write after the other */
let writes: Promise<void> = Promise.resolve()

export async function recordPass(engineId: string, imageId: string, checks: string, count: number): Promise<void> {
  const write = writes.then(() => writeRecord(engineId, imageId, checks, count))
  writes = write.catch(() => {})
  return write
}

async function writeRecord(engineId: string, imageId: string, checks: string, count: number): Promise<void> {
  const file = recordFile(engineId)
  const passes = await load(engineId)
  const key = `${imageId} ${checks}`
  delete passes[key]
  passes[key] = {at: new Date().toISOString(), checks: count}
  const kept = Object.entries(passes).slice(-MAX_ENTRIES)
  await mkdir(path.dirname(file), {recursive: true})
  const temporary = `${file}.${process.pid}.tmp`
  await writeFile(temporary, JSON.stringify(Object.fromEntries(kept)))
  await rename(temporary, file)
}

function recordFile(engineId: string): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  return path.join(base, 'transship', 'verified', `${engineId.replaceAll(/[^\w-]/g, '_')}.json`)
}

async function load(engineId: string): Promise<Record<string, Passed>> {
  try {
    const value = JSON.parse(await readFile(recordFile(engineId), 'utf8')) as unknown
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, Passed>) : {}
  } catch {
    // missing or damaged: the checks run again
    return {}
  }
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonical(item)).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`
  }

  return JSON.stringify(value) ?? 'null'
}
