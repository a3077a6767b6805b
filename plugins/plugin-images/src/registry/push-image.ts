/**
 * `image push` and the recipe's `push:`: an image of an engine goes through that engine's push (after
 * transship checked the credentials itself, so a wrong password is an AuthError and not an engine's
 * message); an image on disk (`oci:DIR`, `oci-archive:FILE`, `docker-archive:FILE`) goes straight to the
 * registry, no engine involved. Either way the result is checked against the registry afterwards.
 */
import type {Hosts} from '@transship/kit'
import type {ImageReference} from '@transship/kit/reference'

import {ExitCode, TransshipError} from '@transship/kit'
import {parseImageLocation} from '@transship/kit/oci'
import {formatReference, parseReference} from '@transship/kit/reference'

import {pushThroughEngine} from './engine-registry.js'
import {openImageLayout} from './layout-source.js'
import {pushLayout} from './push.js'
import {type Registries} from './registries.js'

export interface PushRequest {
  /** rename at the destination, e.g. team/app:1.4 */
  as?: string
  /** the engine's host, for an image reference (default local) */
  host?: string
  /**
   * an image reference or ID on the engine (or docker-daemon:REF), or oci:DIR[:REF], oci-archive:FILE[:REF],
   * docker-archive:FILE[:REF]
   */
  source: string
  /** a registry of the recipe, a registry host, or a full reference */
  to?: string
}

export interface PushResult {
  /** blobs, for a daemonless push */
  blobs?: {bytes: number; mounted: number; skipped: number; uploaded: number}
  /** the manifest digest the registry holds under the tag */
  digest: string
  seconds: number
  source: string
  /** e.g. localhost:5000/team/app:1 */
  target: string
  via: 'engine' | 'registry API'
}

export interface PushContext {
  hosts?: Hosts
  log: {debug(message: string): void; warn(message: string): void}
  registries: Registries
  signal?: AbortSignal
}

export async function pushImage(request: PushRequest, context: PushContext): Promise<PushResult> {
  const started = performance.now()
  const {registries, signal} = context
  const location = parseImageLocation(request.source)
  if (location.kind !== 'engine') {
    await using layout = await openImageLayout(location)
    const named = location.ref ?? layout.tags[0]
    const target = registries.target(named ? parseReference(named) : undefined, request.to, request.as)
    const client = registries.client(target.domain)
    const report = await pushLayout(layout, client, {repository: target.path, tag: target.tag ?? 'latest'}, {signal})
    return {
      blobs: {bytes: report.bytes, mounted: report.mounted, skipped: report.skipped, uploaded: report.uploaded},
      digest: report.digest,
      seconds: (performance.now() - started) / 1000,
      source: layout.description,
      target: formatReference(target),
      via: 'registry API',
    }
  }

  if (!context.hosts) throw new Error('an engine push needs hosts')
  const host = request.host ?? 'local'
  // the names first: a bad one is a usage error before any engine is asked
  const source = parseReference(location.ref)
  const target: ImageReference = registries.target(source, request.to, request.as)
  const engine = await context.hosts.engine(host, signal)
  const client = registries.client(target.domain)
  // the credentials are checked here first: the engine would only say "unauthorized" in a message
  await client.ping(signal)
  const credentials = await registries.credentials(target.domain)
  const pushed = await pushThroughEngine(engine, location.ref, target, credentials, {
    log: context.log,
    onMessage: (message) => context.log.debug(`${host}: ${message.status ?? ''} ${message.progress ?? ''}`),
    signal,
  })
  const held = await client.headManifest(target.path, target.tag ?? 'latest', signal)
  if (held?.digest !== pushed.digest) {
    throw new TransshipError(
      'PUSH_VERIFY_FAILED',
      ExitCode.Verify,
      `${host} pushed ${formatReference(target)} as ${pushed.digest}, but the registry holds ${held?.digest ?? 'nothing'} there`,
    )
  }

  return {
    digest: pushed.digest,
    seconds: (performance.now() - started) / 1000,
    source: `${host}:${location.ref}`,
    target: formatReference(target),
    via: 'engine',
  }
}
