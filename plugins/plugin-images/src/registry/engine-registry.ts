/**
 * Push and pull through an engine (`POST /images/{name}/push`, `POST /images/create?fromImage=`), with the
 * credentials in the X-Registry-Auth header. The engine names the image by a reference that includes the
 * registry, so a push under another name tags it first (and removes that tag again when it was made only
 * for the push).
 */
import type {EngineClient, EngineMessage, ImageReference, RegistryCredentials} from '@transship/kit'

import {ExitCode, formatReference, TransshipError} from '@transship/kit'

import {inspectImage} from '../image-store.js'
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

export async function pushThroughEngine(
  engine: EngineClient,
  source: string,
  target: ImageReference,
  credentials: RegistryCredentials | undefined,
  options: {onMessage?: (message: EngineMessage) => void; signal?: AbortSignal} = {},
): Promise<EnginePushResult> {
  const {signal} = options
  const name = formatReference(target)
  const sourceImage = await inspectImage(engine, source, signal)
  const existing = await inspectImage(engine, name, signal)
  const tagged = existing?.Id !== sourceImage?.Id
  if (tagged) {
    await engine.json({
      method: 'POST',
      path: `/images/${encodeURIComponent(source)}/tag`,
      query: {repo: repository(target), tag: target.tag ?? 'latest'},
      signal,
    })
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
        'PUSH_NO_DIGEST',
        ExitCode.Failed,
        `${engine.host} pushed ${name} but did not report its digest`,
      )
    }

    return {digest: aux.Digest, size: aux.Size}
  } finally {
    if (tagged && !existing) {
      await engine
        .json({method: 'DELETE', path: `/images/${encodeURIComponent(name)}`, query: {noprune: true}, signal})
        .catch(() => {
          // the tag made for the push stays: harmless
        })
    }
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
