/**
 * Push and pull through an engine (`POST /images/{name}/push`, `POST /images/create?fromImage=`), with the
 * credentials in the X-Registry-Auth header. The engine names the image by a reference that includes the
 * registry, so a push under another name tags it first (and removes that tag again when it was made only
 * for the push: see PUSH_MARKER_REPOSITORY).
 */
import type {EngineClient, EngineMessage, Logger} from '@transship/kit'
import type {ImageReference} from '@transship/kit/reference'

import {EngineError, ExitCode, TransshipError} from '@transship/kit'
import {formatReference} from '@transship/kit/reference'
import {createHash} from 'node:crypto'

import type {RegistryCredentials} from './types.js'

import {inspectImage, requireImage, tagImage} from '../image-store.js'
import {engineAuthHeader} from './registries.js'

export interface EnginePushResult {
  /** the manifest digest the registry holds */
  digest: string
  /** bytes the engine reported for the manifest */
  size?: number
}

function repository(reference: ImageReference): string {
  return formatReference({...reference, digest: undefined, tag: undefined})
}

async function drain(
  messages: AsyncIterable<EngineMessage>,
  onMessage?: (message: EngineMessage) => void,
): Promise<EngineMessage[]> {
  const all: EngineMessage[] = []
  for await (const message of messages) {
    all.push(message)
    onMessage?.(message)
  }

  return all
}

/**
 * The engine pushes a name it holds, so a push under another name tags the image with that name first. The
 * name is then transship's, not the user's, and it says so with a marker on the same image:
 * `transship.invalid/pushing:<sha256 of the name>` (`.invalid` is reserved, RFC 2606: no registry has it, so
 * no image of the user's is named so). A name with its marker on one image is a name transship made: it is
 * removed after the push, or, when the push was killed before it could, by the next push to that name.
 */
export const PUSH_MARKER_REPOSITORY = 'transship.invalid/pushing'

/** How long the removal of the names made for a push may take, after the push (or Ctrl-C). */
const CLEANUP_TIMEOUT_MS = 10_000

export function pushMarker(name: string): string {
  return `${PUSH_MARKER_REPOSITORY}:${createHash('sha256').update(name).digest('hex')}`
}

export async function pushThroughEngine(
  engine: EngineClient,
  source: string,
  target: ImageReference,
  credentials: RegistryCredentials | undefined,
  options: {
    log?: Pick<Logger, 'debug' | 'warn'>
    onMessage?: (message: EngineMessage) => void
    signal?: AbortSignal
  } = {},
): Promise<EnginePushResult> {
  const {signal} = options
  const name = formatReference(target)
  const marker = pushMarker(name)
  const sourceImage = await requireImage(engine, source, signal)
  const existing = await inspectImage(engine, name, signal)
  const leftover = existing !== undefined && (await inspectImage(engine, marker, signal))?.Id === existing.Id
  if (leftover)
    options.log?.debug(`${engine.host}: ${name} was left by an interrupted push; it is removed after this one`)
  const made = existing === undefined || leftover
  if (made) {
    // the marker first: an interruption in between leaves a marker alone, never a name that looks like the user's
    if (existing?.Id !== sourceImage.Id) {
      await tagImage(engine, sourceImage.Id, marker, signal)
      await tagImage(engine, sourceImage.Id, name, signal)
    }
  } else if (existing.Id !== sourceImage.Id) {
    // the user's own name: it moves to the image pushed (as `docker tag` would) and stays
    await tagImage(engine, sourceImage.Id, name, signal)
  }

  try {
    const messages = await drain(
      engine.messages({
        headers: {'X-Registry-Auth': engineAuthHeader(target.domain, credentials)},
        method: 'POST',
        path: `/images/${encodeURIComponent(repository(target))}/push`,
        query: {tag: target.tag ?? 'latest'},
        signal,
      }),
      options.onMessage,
    )
    const aux = messages
      .map((message) => message.aux as undefined | {Digest?: string; Size?: number})
      .find((item) => item?.Digest)
    if (!aux?.Digest) {
      throw new TransshipError(
        'PUSH_DIGEST_MISSING',
        ExitCode.Failed,
        `${engine.host} pushed ${name} but did not report its digest`,
      )
    }

    return {digest: aux.Digest, size: aux.Size}
  } finally {
    if (made) await removePushNames(engine, {imageId: sourceImage.Id, marker, name}, options.log)
  }
}

/**
 * Removes the name made for a push, then its marker, with a signal of its own: the push's may be the one
 * Ctrl-C aborted. The marker stays when it is the image's last name (removing an image's last name removes
 * the image). A failure is a warning that says what is left and how to remove it.
 */
async function removePushNames(
  engine: EngineClient,
  names: {imageId: string; marker: string; name: string},
  log: Pick<Logger, 'warn'> | undefined,
): Promise<void> {
  const {imageId, marker, name} = names
  const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS)
  try {
    await removeName(engine, name, signal)
    const image = await inspectImage(engine, imageId, signal)
    if ((image?.RepoTags ?? []).some((tag) => tag !== marker)) await removeName(engine, marker, signal)
  } catch (error) {
    log?.warn(
      `the name ${name} made for the push is still on host "${engine.host}" (${(error as Error).message}); remove it with \`docker rmi ${name} ${marker}\`, or push to it again: the next push removes it`,
    )
  }
}

async function removeName(engine: EngineClient, name: string, signal: AbortSignal): Promise<void> {
  try {
    await engine.json({method: 'DELETE', path: `/images/${encodeURIComponent(name)}`, query: {noprune: true}, signal})
  } catch (error) {
    // already gone (another push to the same name removed it): nothing left
    if (!(error instanceof EngineError && error.status === 404)) throw error
  }
}

export async function pullThroughEngine(
  engine: EngineClient,
  reference: ImageReference,
  credentials: RegistryCredentials | undefined,
  options: {onMessage?: (message: EngineMessage) => void; signal?: AbortSignal} = {},
): Promise<{digest?: string; id: string}> {
  const {signal} = options
  await drain(
    engine.messages({
      headers: {'X-Registry-Auth': engineAuthHeader(reference.domain, credentials)},
      method: 'POST',
      path: '/images/create',
      query: {fromImage: repository(reference), tag: reference.digest ?? reference.tag ?? 'latest'},
      signal,
    }),
    options.onMessage,
  )
  const name = formatReference(reference)
  const image = await inspectImage(engine, name, signal)
  if (!image)
    throw new TransshipError('PULL_MISSING', ExitCode.Failed, `${engine.host} pulled ${name} but does not list it`)
  const prefix = `${repository(reference)}@`
  const digest = (image.RepoDigests ?? []).find((item) => item.startsWith(prefix))?.slice(prefix.length)
  return {digest, id: image.Id}
}
