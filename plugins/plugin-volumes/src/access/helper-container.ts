/**
 * Access `engine`: a helper container on the volume's engine, with the volume mounted at /volume, in which the
 * volume's commands run (through exec). It has no network, idles until removed, and is labelled so that a
 * leftover one can be found: `transship.helper=volume`.
 */
import {type EngineClient, EngineError, UsageError} from '@transship/kit'
import {randomBytes} from 'node:crypto'

/** where the volume is mounted in the helper */
export const HELPER_ROOT = '/volume'
export const HELPER_LABEL = 'transship.helper'

export interface HelperContainer {
  id: string
  /** removes it (forced: whatever runs in it stops); idempotent, never rejects */
  remove(): Promise<void>
}

/** Starts the helper for volume `volume` from `image` (pulled once if the engine lacks it). */
export async function startHelper(
  engine: EngineClient,
  options: {image: string; readOnly: boolean; signal?: AbortSignal; volume: string},
): Promise<HelperContainer> {
  const {image, signal, volume} = options
  await ensureImage(engine, image, signal)
  const name = `transship-helper-${volume.slice(0, 40)}-${randomBytes(4).toString('hex')}`
  const {Id: id} = await engine.json<{Id: string}>({
    body: {
      // the image's own entrypoint and user do not matter: it idles as root until removed
      Cmd: ['/dev/null'],
      Entrypoint: ['tail', '-f'],
      Image: image,
      Labels: {[HELPER_LABEL]: 'volume', 'transship.volume': volume},
      User: '0:0',
      WorkingDir: '/',
      HostConfig: {
        Mounts: [{ReadOnly: options.readOnly, Source: volume, Target: HELPER_ROOT, Type: 'volume'}],
        NetworkMode: 'none',
      },
    },
    method: 'POST',
    path: '/containers/create',
    query: {name},
    signal,
  })
  let removed: Promise<void> | undefined
  const remove = async (): Promise<void> => {
    // not with the run's signal: the helper goes also when the run was aborted
    // a helper already gone is fine, and a failure to remove one is not the run's failure: it is labelled
    removed ??= engine.json({method: 'DELETE', path: `/containers/${id}`, query: {force: true}}).then(
      () => {},
      () => {},
    )
    return removed
  }

  try {
    await engine.json({method: 'POST', path: `/containers/${id}/start`, signal})
  } catch (error) {
    await remove()
    throw error
  }

  return {id, remove}
}

/** Makes sure the engine has `image`: pulled once when it lacks it, else a UsageError naming it. */
async function ensureImage(engine: EngineClient, image: string, signal?: AbortSignal): Promise<void> {
  try {
    await engine.json({path: `/images/${encodeURIComponent(image)}/json`, signal})
    return
  } catch (error) {
    if (!(error instanceof EngineError && error.status === 404)) throw error
  }

  try {
    const [fromImage, tag] = splitTag(image)
    const pulling = engine.messages({method: 'POST', path: '/images/create', query: {fromImage, tag}, signal})
    const messages = pulling[Symbol.asyncIterator]()
    while (!(await messages.next()).done) {
      // progress only: an in-band error rejects
    }
  } catch (error) {
    signal?.throwIfAborted()
    throw new UsageError(
      `the helper image ${image} is not on the engine of ${engine.host}, and pulling it failed: ${(error as Error).message}`,
      {
        cause: error,
        code: 'VOLUME_HELPER_IMAGE_MISSING',
        suggestions: [
          `load it there (docker pull ${image}, or docker load from an archive), or`,
          'name another image with GNU tar that the engine has: helperImage',
        ],
      },
    )
  }
}

/** `name[:tag]` apart (a registry port is not a tag); a digest reference stays whole. */
function splitTag(image: string): [string, string | undefined] {
  if (image.includes('@')) return [image, undefined]
  const colon = image.lastIndexOf(':')
  if (colon > image.lastIndexOf('/')) return [image.slice(0, colon), image.slice(colon + 1)]
  return [image, 'latest']
}
