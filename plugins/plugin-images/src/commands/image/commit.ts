import {Args, Flags} from '@oclif/core'
import {
  BaseCommand,
  EngineError,
  hostFlag,
  openHosts,
  recipeHostFlags,
  TransshipError,
  UsageError,
} from '@transship/kit'
import {formatReference, parseReference, repositoryName} from '@transship/kit/reference'

import {requireImage} from '../../image-store.js'

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

interface ContainerInspect {
  Id: string
  Name: string
  State?: {Running?: boolean}
}

/** The Dockerfile instructions the engine applies to a commit (`docker commit --change`). */
const CHANGE_INSTRUCTIONS = [
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

export default class ImageCommit extends BaseCommand<typeof ImageCommit> {
  static override args = {
    container: Args.string({description: 'The container (name or ID).', required: true}),
    ref: Args.string({description: 'Name of the new image, e.g. app:1-debug.', required: true}),
  }
  static override description = `Make a new image of a container's changes, on any host: the local engine, a host of a recipe, or ssh://user@host[:port]. The image is the container's image plus one layer with what the container changed in its file system (as \`docker commit\`). A running container is paused while its changes are read, unless --no-pause.

The new image's ID is printed; --json gives it with the container, the name and the layer count.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> web-1 app:1-debug',
    `<%= config.bin %> <%= command.id %> web-1 app:1-debug --host ssh://deploy@edge.example.com --message "after the fix" --change 'CMD ["app", "--debug"]'`,
    '<%= config.bin %> <%= command.id %> web-1 app:1-debug --recipe recipes/fleet.yaml --host edge --no-pause',
  ]
  static override flags = {
    ...recipeHostFlags,
    author: Flags.string({char: 'a', description: 'Author of the new image (e.g. "Name <name@example.com>").'}),
    change: Flags.string({
      char: 'c',
      description: `A Dockerfile instruction to apply to the image's config (repeatable): ${CHANGE_INSTRUCTIONS.join(', ')}.`,
      multiple: true,
    }),
    host: hostFlag('commit on'),
    message: Flags.string({char: 'm', description: 'Commit message (the comment of the new layer).'}),
    pause: Flags.boolean({
      allowNo: true,
      default: true,
      description: 'Pause a running container while its changes are read.',
    }),
  }
  static override summary = "Make an image of a container's changes."

  async run(): Promise<CommitResult> {
    const {container, ref} = this.args
    const reference = parseReference(ref)
    if (reference.digest) {
      throw new UsageError(`"${ref}" names a digest: a new image gets a name and a tag, e.g. app:1-debug`, {
        code: 'INVALID_REFERENCE',
      })
    }

    const changes = (this.flags.change ?? []).map((change) => checkChange(change))
    const name = formatReference(reference)
    const {host} = this.flags
    await using hosts = await openHosts(this.config, this.flags, [host])
    const engine = await hosts.engine(host, this.signal)

    let inspected: ContainerInspect
    try {
      inspected = await engine.json<ContainerInspect>({
        path: `/containers/${encodeURIComponent(container)}/json`,
        signal: this.signal,
      })
    } catch (error) {
      if (error instanceof EngineError && error.status === 404) {
        throw new TransshipError('CONTAINER_NOT_FOUND', 1, `no container ${container} on host "${host}"`, {
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
        author: this.flags.author,
        changes: changes.length > 0 ? changes : undefined,
        comment: this.flags.message,
        container: inspected.Id,
        pause: this.flags.pause,
        repo: repositoryName(reference),
        tag: reference.tag,
      },
      signal: this.signal,
    })
    const image = await requireImage(engine, name, this.signal)
    if (image.Id !== id) {
      throw new TransshipError(
        'TAG_MISMATCH',
        1,
        `${name} on host "${host}" points at ${image.Id}, not at the committed image ${id}: was it tagged again meanwhile?`,
      )
    }

    const containerName = inspected.Name.replace(/^\//, '')
    this.logger().info(`${host}: container ${containerName} committed as ${name}`)
    this.log(id)
    return {
      container: {id: inspected.Id, name: containerName},
      host,
      id,
      layers: image.RootFS.Layers?.length ?? 0,
      ref: name,
    }
  }
}

/** A --change value: a Dockerfile instruction the engine applies to a commit, else a usage error. */
function checkChange(change: string): string {
  const instruction = /^\s*(\S+)/.exec(change)?.[1]?.toUpperCase()
  if (!instruction || !CHANGE_INSTRUCTIONS.includes(instruction)) {
    throw new UsageError(
      `--change "${change}": a commit applies only the instructions ${CHANGE_INSTRUCTIONS.join(', ')}`,
      {code: 'INVALID_CHANGE', suggestions: [`--change 'CMD ["app", "--debug"]' --change 'ENV MODE=debug'`]},
    )
  }

  if (!/^\s*\S+\s+\S/.test(change)) {
    throw new UsageError(`--change "${change}": ${instruction} needs arguments`, {code: 'INVALID_CHANGE'})
  }

  return change.trim()
}
