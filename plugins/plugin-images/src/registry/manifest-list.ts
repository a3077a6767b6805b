/**
 * Multi-platform images as `docker manifest` makes them: a list (OCI image index) is created locally from
 * per-platform images already in a registry, annotated, then pushed. The draft lives in
 * ~/.cache/transship/manifests/ until it is pushed. Images in other repositories of the same registry are
 * brought into the list's repository first (their blobs mounted, their manifests put by digest), since a
 * registry only accepts an index whose manifests its repository holds.
 */
import {UsageError} from '@transship/kit'
import {
  type Descriptor,
  type ImageManifest,
  isIndexMediaType,
  MEDIA_TYPES,
  type Platform,
  sha256,
} from '@transship/kit/oci'
import {formatReference, type ImageReference, parseReference} from '@transship/kit/reference'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {PassThrough, type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {RegistryClient} from './types.js'

import {type Registries} from './registries.js'

export interface ListEntry {
  /** the image as given, e.g. localhost:5000/app:1-arm64 */
  image: string
  descriptor: Descriptor & {platform: Platform}
}

export interface ManifestListDraft {
  list: string
  manifests: ListEntry[]
}

function draftFile(list: string): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  return path.join(
    base,
    'transship',
    'manifests',
    `${formatReference(parseReference(list)).replaceAll(/[^\w.-]/g, '_')}.json`,
  )
}

export async function readDraft(list: string): Promise<ManifestListDraft> {
  try {
    return JSON.parse(await readFile(draftFile(list), 'utf8')) as ManifestListDraft
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    throw new UsageError(`there is no manifest list ${list} to change or push`, {
      code: 'MANIFEST_LIST_UNKNOWN',
      suggestions: [`create it first: transship image manifest create ${list} IMAGE...`],
    })
  }
}

async function writeDraft(draft: ManifestListDraft): Promise<void> {
  const file = draftFile(draft.list)
  await mkdir(path.dirname(file), {recursive: true})
  await writeFile(file, JSON.stringify(draft, null, 2))
}

async function describe(
  client: RegistryClient,
  reference: ImageReference,
  image: string,
  signal?: AbortSignal,
): Promise<ListEntry> {
  const manifest = await client.getManifest(reference.path, reference.digest ?? reference.tag ?? 'latest', signal)
  if (!manifest) {
    throw new UsageError(`${image} is not in ${client.endpoint.name}: a list can only name images already pushed`, {
      code: 'IMAGE_NOT_FOUND',
      suggestions: [`push it first: transship image push … --to ${image}`],
    })
  }

  if (isIndexMediaType(manifest.mediaType)) {
    throw new UsageError(`${image} is itself a multi-platform list: name its per-platform images`, {
      code: 'MANIFEST_IS_LIST',
    })
  }

  const {config} = JSON.parse(manifest.body.toString('utf8')) as {config: Descriptor}
  const stream = await client.getBlob(reference.path, config.digest, signal)
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  const image_ = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    architecture?: string
    os?: string
    variant?: string
  }
  return {
    descriptor: {
      digest: manifest.digest,
      mediaType: manifest.mediaType,
      platform: {
        architecture: image_.architecture ?? 'amd64',
        os: image_.os ?? 'linux',
        ...(image_.variant ? {variant: image_.variant} : {}),
      },
      size: manifest.body.length,
    },
    image,
  }
}

/** Creates (or replaces) the draft of `list` from `images`, each read from its registry. */
export async function createList(
  registries: Registries,
  list: string,
  images: string[],
  signal?: AbortSignal,
): Promise<ManifestListDraft> {
  const target = parseReference(list)
  const manifests: ListEntry[] = []
  for (const image of images) {
    const reference = parseReference(image)
    if (reference.domain !== target.domain) {
      throw new UsageError(
        `${image} is in ${reference.domain}, the list in ${target.domain}: a list names images of its own registry`,
        {
          code: 'MANIFEST_LIST_REGISTRY',
        },
      )
    }

    manifests.push(await describe(registries.client(reference.domain), reference, image, signal))
  }

  const draft = {list: formatReference(target), manifests}
  await writeDraft(draft)
  return draft
}

export interface Annotation {
  architecture?: string
  os?: string
  osVersion?: string
  variant?: string
}

/** Sets the platform of one image of the draft. */
export async function annotateList(list: string, image: string, annotation: Annotation): Promise<ManifestListDraft> {
  const draft = await readDraft(list)
  const wanted = formatReference(parseReference(image))
  const entry = draft.manifests.find((item) => formatReference(parseReference(item.image)) === wanted)
  if (!entry) {
    throw new UsageError(`${list} does not name ${image}`, {
      code: 'MANIFEST_LIST_IMAGE',
      suggestions: [`its images: ${draft.manifests.map((item) => item.image).join(', ')}`],
    })
  }

  const {platform} = entry.descriptor
  if (annotation.architecture) platform.architecture = annotation.architecture
  if (annotation.os) platform.os = annotation.os
  if (annotation.variant) platform.variant = annotation.variant
  if (annotation.osVersion) platform['os.version'] = annotation.osVersion
  await writeDraft(draft)
  return draft
}

/** A blob of another repository as a stream from `offset` (the bytes before it are read and dropped). */
function remoteBlob(
  client: RegistryClient,
  repository: string,
  digest: string,
  offset: number,
  signal?: AbortSignal,
): Readable {
  const output = new PassThrough()
  let skip = offset
  client
    .getBlob(repository, digest, signal)
    .then((stream) =>
      pipeline(
        stream,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            if (skip >= chunk.length) {
              skip -= chunk.length
              continue
            }

            yield chunk.subarray(skip)
            skip = 0
          }
        },
        output,
      ),
    )
    .catch((error: unknown) => output.destroy(error as Error))
  return output
}

/** Pushes the draft as an OCI image index; resolves to its digest. The draft is removed once pushed. */
export async function pushList(
  registries: Registries,
  list: string,
  signal?: AbortSignal,
): Promise<{digest: string; list: string; manifests: number}> {
  const draft = await readDraft(list)
  const target = parseReference(draft.list)
  const client = registries.client(target.domain)
  for (const entry of draft.manifests) {
    const source = parseReference(entry.image)
    if (source.path === target.path) continue
    // bring the image into the list's repository: blobs mounted, manifest put by digest
    if (await client.headManifest(target.path, entry.descriptor.digest, signal)) continue
    const manifest = await client.getManifest(source.path, entry.descriptor.digest, signal)
    if (!manifest) {
      throw new UsageError(
        `${list} names ${entry.image} (${entry.descriptor.digest}), which ${target.domain} no longer has`,
        {
          code: 'IMAGE_NOT_FOUND',
        },
      )
    }

    const body = JSON.parse(manifest.body.toString('utf8')) as ImageManifest
    for (const blob of [body.config, ...body.layers]) {
      if ((await client.headBlob(target.path, blob.digest, signal)) !== undefined) continue
      if (!(await client.mountBlob(target.path, blob.digest, source.path, signal))) {
        // the registry declined the mount: copy the blob through this machine
        await client.uploadBlob(
          target.path,
          blob,
          (offset) => remoteBlob(client, source.path, blob.digest, offset, signal),
          {signal},
        )
      }
    }

    await client.putManifest(target.path, entry.descriptor.digest, manifest.body, manifest.mediaType, signal)
  }

  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: draft.manifests.map((entry) => ({
        mediaType: entry.descriptor.mediaType,
        digest: entry.descriptor.digest,
        size: entry.descriptor.size,
        platform: entry.descriptor.platform,
      })),
    }),
  )
  const digest = await client.putManifest(target.path, target.tag ?? 'latest', index, MEDIA_TYPES.ociIndex, signal)
  if (digest !== sha256(index)) throw new Error(`the registry stored the list as ${digest}, not ${sha256(index)}`)
  await rm(draftFile(list), {force: true})
  return {digest, list: draft.list, manifests: draft.manifests.length}
}
