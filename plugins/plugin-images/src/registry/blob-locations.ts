/**
 * Which repositories of a registry were seen to hold which blobs (pushed or pulled by transship), kept in
 * ~/.cache/transship/registry-blobs/<registry>.json, so a push to a new repository can mount a blob from
 * one that has it instead of uploading it again (Docker keeps the same knowledge for the same reason). A
 * wrong entry costs nothing: the registry declines the mount and the blob is uploaded.
 */
import {mkdir, readFile, rename, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

/** At most this many repositories are remembered per blob. */
const REPOSITORIES_PER_BLOB = 5

function cacheFile(host: string): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  return path.join(base, 'transship', 'registry-blobs', `${host.replaceAll(/[^\w.-]/g, '_')}.json`)
}

export interface BlobLocations {
  record(repository: string, digests: string[]): Promise<void>
  repositories(digest: string): Promise<string[]>
}

export function blobLocations(host: string): BlobLocations {
  const file = cacheFile(host)
  let loaded: Promise<Record<string, string[]>> | undefined
  const load = () => {
    loaded ??= readFile(file, 'utf8')
      .then((text) => JSON.parse(text) as Record<string, string[]>)
      .catch(() => ({}))
    return loaded
  }

  return {
    async record(repository, digests) {
      const known = await load()
      for (const digest of digests) {
        const repositories = (known[digest] ?? []).filter((item) => item !== repository)
        known[digest] = [repository, ...repositories].slice(0, REPOSITORIES_PER_BLOB)
      }

      try {
        await mkdir(path.dirname(file), {recursive: true})
        const temporary = `${file}.${process.pid}.tmp`
        await writeFile(temporary, JSON.stringify(known))
        await rename(temporary, file)
      } catch {
        // a cache that cannot be written only costs later uploads
      }
    },
    async repositories(digest) {
      return (await load())[digest] ?? []
    },
  }
}
