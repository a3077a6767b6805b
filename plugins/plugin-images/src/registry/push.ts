/**
 * A daemonless push: an image on disk (see layout-source.ts) to a registry, blobs first, the manifest last
 * and byte for byte (so its digest is the source's). Only what is missing moves: a blob the repository has
 * is skipped (HEAD); one that another repository of the registry has is mounted from it; the rest are
 * uploaded a few at a time, each retried and resumed by the client.
 */

import {ExitCode, TransshipError} from '@transship/kit'
import {type Descriptor, isIndexMediaType} from '@transship/kit/oci'

import type {RegistryClient} from './types.js'

import {blobLocations} from './blob-locations.js'
import {type ImageLayout} from './layout-source.js'

export interface PushTarget {
  /** repository path inside the registry, e.g. team/app */
  repository: string
  /** the tag to give it */
  tag: string
}

export interface PushReport {
  /** bytes uploaded */
  bytes: number
  /** the manifest (or index) digest the registry holds under the tag */
  digest: string
  /** blobs mounted from another repository */
  mounted: number
  /** blobs the repository already had */
  skipped: number
  /** e.g. localhost:5000/team/app:1 */
  target: string
  /** blobs uploaded */
  uploaded: number
}

export interface PushOptions {
  /** uploads at a time (default 4) */
  concurrency?: number
  onBytes?: (bytes: number) => void
  signal?: AbortSignal
}

interface Manifest {
  config?: Descriptor
  layers?: Descriptor[]
  manifests?: Descriptor[]
}

/** Every manifest under `root` (children of an index first) and every blob they name. */
async function walk(
  layout: ImageLayout,
  root: Descriptor,
): Promise<{blobs: Map<string, number>; manifests: Array<{body: Buffer; descriptor: Descriptor}>}> {
  const blobs = new Map<string, number>()
  const manifests: Array<{body: Buffer; descriptor: Descriptor}> = []
  const visit = async (descriptor: Descriptor) => {
    const body = await layout.read(descriptor.digest)
    const manifest = JSON.parse(body.toString('utf8')) as Manifest
    if (isIndexMediaType(descriptor.mediaType)) {
      for (const child of manifest.manifests ?? []) await visit(child)
    } else {
      for (const blob of [manifest.config, ...(manifest.layers ?? [])]) {
        if (blob) blobs.set(blob.digest, blob.size)
      }
    }

    manifests.push({body, descriptor})
  }

  await visit(root)
  return {blobs, manifests}
}

/** Runs `task` over `items`, at most `limit` at a time; the first failure stops new ones and is thrown. */
async function eachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failed: unknown
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const item = items[next++]!
      try {
        await task(item)
      } catch (error) {
        failed ??= error
      }
    }
  }

  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
  if (failed !== undefined) throw failed
}

export async function pushLayout(
  layout: ImageLayout,
  client: RegistryClient,
  target: PushTarget,
  options: PushOptions = {},
): Promise<PushReport> {
  const {signal} = options
  const {blobs, manifests} = await walk(layout, layout.root)
  const report: PushReport = {
    bytes: 0,
    digest: '',
    mounted: 0,
    skipped: 0,
    target: `${client.endpoint.host}/${target.repository}:${target.tag}`,
    uploaded: 0,
  }
  const known = blobLocations(client.endpoint.host)
  await eachLimited([...blobs], options.concurrency ?? 4, async ([digest, size]) => {
    if ((await client.headBlob(target.repository, digest, signal)) !== undefined) {
      report.skipped++
      return
    }

    for (const from of await known.repositories(digest)) {
      if (from !== target.repository && (await client.mountBlob(target.repository, digest, from, signal))) {
        report.mounted++
        return
      }
    }

    await client.uploadBlob(target.repository, {digest, size}, (offset) => layout.open(digest, offset), {
      onBytes(bytes) {
        report.bytes += bytes
        options.onBytes?.(bytes)
      },
      signal,
    })
    report.uploaded++
  })
  await known.record(target.repository, [...blobs.keys()])

  for (const {body, descriptor} of manifests) {
    const isRoot = descriptor.digest === layout.root.digest
    const digest = await client.putManifest(
      target.repository,
      isRoot ? target.tag : descriptor.digest,
      body,
      descriptor.mediaType,
      signal,
    )
    if (digest !== descriptor.digest) {
      throw new TransshipError(
        'REGISTRY_DIGEST_MISMATCH',
        ExitCode.Verify,
        `${client.endpoint.host} stored the manifest of ${report.target} as ${digest}, not ${descriptor.digest}`,
      )
    }

    if (isRoot) report.digest = digest
  }

  return report
}
