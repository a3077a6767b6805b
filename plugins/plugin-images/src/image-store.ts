import type {EngineClient} from '@transship/kit'
import type {ImageReference} from '@transship/kit/reference'

import {EngineError, ExitCode, TransshipError} from '@transship/kit'
import {parseReference, repositoryName} from '@transship/kit/reference'

export interface ImageSummary {
  Created: number
  Id: string
  RepoTags: null | string[]
  Size: number
}

export interface ImageInspect {
  Config?: Record<string, unknown>
  Created: string
  Id: string
  RepoDigests?: string[]
  RepoTags: string[]
  RootFS: {Layers?: string[]; Type: string}
  Size: number
}

/** The engine's view of one image, or undefined when the engine does not have it. */
export async function inspectImage(
  engine: EngineClient,
  ref: string,
  signal?: AbortSignal,
): Promise<ImageInspect | undefined> {
  try {
    return await engine.json<ImageInspect>({path: `/images/${encodeURIComponent(ref)}/json`, signal})
  } catch (error) {
    if (error instanceof EngineError && error.status === 404) return undefined
    throw error
  }
}

/** Like inspectImage, but a missing image is an error that says where it was looked for. */
export async function requireImage(engine: EngineClient, ref: string, signal?: AbortSignal): Promise<ImageInspect> {
  const image = await inspectImage(engine, ref, signal)
  if (!image) {
    throw new TransshipError('IMAGE_NOT_FOUND', ExitCode.Failed, `image ${ref} is not on host "${engine.host}"`, {
      details: {host: engine.host, image: ref},
      suggestions: [`list what the host has with: transship image ls --host ${engine.host}`],
    })
  }

  return image
}

/** Points `target` at the image `imageId` (an ID, so exactly that image is tagged), then checks it. */
export async function tagImage(
  engine: EngineClient,
  imageId: string,
  target: string,
  signal?: AbortSignal,
): Promise<void> {
  const reference: ImageReference = parseReference(target)
  await engine.json({
    method: 'POST',
    path: `/images/${encodeURIComponent(imageId)}/tag`,
    query: {repo: repositoryName(reference), tag: reference.tag},
    signal,
  })
  const tagged = await requireImage(engine, target, signal)
  if (tagged.Id !== imageId) {
    throw new TransshipError(
      'TAG_MISMATCH',
      ExitCode.Failed,
      `${target} on host "${engine.host}" points at ${tagged.Id}, not ${imageId}`,
    )
  }
}

export async function listImages(engine: EngineClient, signal?: AbortSignal): Promise<ImageSummary[]> {
  return engine.json<ImageSummary[]>({path: '/images/json', signal})
}
