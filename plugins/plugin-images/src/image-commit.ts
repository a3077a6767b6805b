import {type EngineClient, EngineError, ExitCode, TransshipError, UsageError} from '@transship/kit'
import {formatReference, type ImageReference, parseReference, repositoryName} from '@transship/kit/reference'

import {requireImage} from './image-store.js'

export interface CommitResult {
  container: {id: string; name: string}
  host: string
  /** the new image's ID */
  id: string
  /** how many layers the new image has */
  layers: number
  /** the name it was given */
  ref: string
}

export interface CommitRequest {
  author?: string
  /** Dockerfile instructions, each checked with checkChange */
  changes: string[]
  /** the comment of the new layer */
  comment?: string
  /** the container's name or ID */
  container: string
  /** the host as the user named it, for messages and the result */
  host: string
  /** pause a running container while its changes are read */
  pause: boolean
  /** the new image's name, from commitReference */
  reference: ImageReference
}

interface ContainerInspect {
  Id: string
  Name: string
  State?: {Running?: boolean}
}

/** The Dockerfile instructions the engine applies to a commit (`docker commit --change`). */
export const CHANGE_INSTRUCTIONS = [
  'CMD',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'HEALTHCHECK',
  'LABEL',
  'ONBUILD',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
]

/** The name of a new image: a name and a tag, not a digest (a usage error otherwise). */
export function commitReference(ref: string): ImageReference {
  const reference = parseReference(ref)
  if (reference.digest) {
    throw new UsageError(`"${ref}" names a digest: a new image gets a name and a tag, e.g. app:1-debug`, {
      code: 'REFERENCE_INVALID',
    })
  }

  return reference
}

/** A --change value: a Dockerfile instruction the engine applies to a commit, else a usage error. */
export function checkChange(change: string): string {
  const instruction = /^\s*(\S+)/.exec(change)?.[1]?.toUpperCase()
  if (!instruction || !CHANGE_INSTRUCTIONS.includes(instruction)) {
    throw new UsageError(
      `--change "${change}": a commit applies only the instructions ${CHANGE_INSTRUCTIONS.join(', ')}`,
      {code: 'CHANGE_INVALID', suggestions: [`--change 'CMD ["app", "--debug"]' --change 'ENV MODE=debug'`]},
    )
  }

  if (!/^\s*\S+\s+\S/.test(change)) {
    throw new UsageError(`--change "${change}": ${instruction} needs arguments`, {code: 'CHANGE_INVALID'})
  }

  return change.trim()
}

/** Commits a container's changes as a new image and checks the name given points at it. */
export async function commitContainer(
  engine: EngineClient,
  request: CommitRequest,
  signal: AbortSignal,
): Promise<CommitResult> {
  const {changes, container, host, reference} = request
  const name = formatReference(reference)
  let inspected: ContainerInspect
  try {
    inspected = await engine.json<ContainerInspect>({
      path: `/containers/${encodeURIComponent(container)}/json`,
      signal,
    })
  } catch (error) {
    if (error instanceof EngineError && error.status === 404) {
      throw new TransshipError('CONTAINER_NOT_FOUND', ExitCode.Failed, `no container ${container} on host "${host}"`, {
        cause: error,
        details: {container, host},
        suggestions: [`list the containers there: docker ps --all (on host "${host}")`],
      })
    }

    throw error
  }

  // the container's ID, not its name: exactly the container inspected is committed
  const {Id: id} = await engine.json<{Id: string}>({
    method: 'POST',
    path: '/commit',
    query: {
      author: request.author,
      changes: changes.length > 0 ? changes : undefined,
      comment: request.comment,
      container: inspected.Id,
      pause: request.pause,
      repo: repositoryName(reference),
      tag: reference.tag,
    },
    signal,
  })
  const image = await requireImage(engine, name, signal)
  if (image.Id !== id) {
    throw new TransshipError(
      'TAG_MISMATCH',
      ExitCode.Failed,
      `${name} on host "${host}" points at ${image.Id}, not at the committed image ${id}: was it tagged again meanwhile?`,
    )
  }

  return {
    container: {id: inspected.Id, name: inspected.Name.replace(/^\//, '')},
    host,
    id,
    layers: image.RootFS.Layers?.length ?? 0,
    ref: name,
  }
}
