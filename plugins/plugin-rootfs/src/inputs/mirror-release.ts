/**
 * The Date of a Debian mirror's Release file for a suite, read the way debootstrap reads it
 * (`MIRROR/dists/SUITE/InRelease`, else `Release`): one small GET, of the file's head only. A new Date means the
 * mirror publishes another package set, so a bootstrapped image is out of date.
 */
import {UnreachableError} from '@transship/kit'
import {open} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {parseReleaseDate} from '../source/bootstrap.js'

/** `Date:` comes before the long checksum lists: this much of the file is read, whatever its length */
const HEAD_BYTES = 16_384
/** a mirror that does not answer within this time is reported, not waited for */
const TIMEOUT_MS = 30_000

/**
 * Seconds since the Unix epoch of the suite's Release file. Throws UnreachableError (ROOTFS_MIRROR_UNREACHABLE)
 * when the mirror cannot be read, and when the file has no readable Date.
 */
export async function mirrorReleaseDate(mirror: string, suite: string, signal: AbortSignal): Promise<number> {
  const base = new URL(mirror.endsWith('/') ? mirror : `${mirror}/`)
  let lastProblem = ''
  for (const name of ['InRelease', 'Release']) {
    const url = new URL(`dists/${encodeURIComponent(suite)}/${name}`, base)
    const head = await readHead(url, signal).catch((error: unknown) => {
      if (signal.aborted) throw signal.reason
      throw unreachable(url, (error as Error).message, error)
    })
    if (head === undefined) {
      lastProblem = `${url.href} does not exist`
      continue
    }

    const date = parseReleaseDate(head)
    if (date !== undefined) return date
    lastProblem = `${url.href} has no Date field`
  }

  throw unreachable(base, lastProblem)
}

function unreachable(url: URL, problem: string, cause?: unknown): UnreachableError {
  return new UnreachableError('ROOTFS_MIRROR_UNREACHABLE', `cannot read the Release date of ${url.href}: ${problem}`, {
    cause,
    details: {url: url.href},
    suggestions: ['check that the mirror is reachable from this machine and has the suite'],
  })
}

/** The first HEAD_BYTES of a file on the mirror (as text), or undefined when it does not exist there. */
async function readHead(url: URL, signal: AbortSignal): Promise<string | undefined> {
  if (url.protocol === 'file:') return readLocalHead(fileURLToPath(url))
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`a ${url.protocol} mirror cannot be read (http, https and file can)`)
  }

  const response = await fetch(url, {
    headers: {range: `bytes=0-${HEAD_BYTES - 1}`},
    redirect: 'follow',
    signal: AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]),
  })
  if (response.status === 404) {
    await response.body?.cancel()
    return undefined
  }

  if (!response.ok || !response.body) {
    await response.body?.cancel()
    throw new Error(`HTTP ${response.status} ${response.statusText}`)
  }

  // a server that ignores the range sends the whole file: stop reading after the head
  const chunks: Buffer[] = []
  let bytes = 0
  const reader = response.body.getReader()
  try {
    while (bytes < HEAD_BYTES) {
      const {done, value} = await reader.read()
      if (done) break
      chunks.push(Buffer.from(value))
      bytes += value.length
    }
  } finally {
    await reader.cancel().catch(() => {})
  }

  return Buffer.concat(chunks).subarray(0, HEAD_BYTES).toString('utf8')
}

async function readLocalHead(file: string): Promise<string | undefined> {
  let handle
  try {
    handle = await open(path.resolve(file), 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }

  try {
    const buffer = Buffer.alloc(HEAD_BYTES)
    const {bytesRead} = await handle.read(buffer, 0, HEAD_BYTES, 0)
    return buffer.toString('utf8', 0, bytesRead)
  } finally {
    await handle.close()
  }
}
