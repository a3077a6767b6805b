import {Args, Flags} from '@oclif/core'
import {BaseCommand, hostFlag, openHosts, recipeHostFlags} from '@transship/kit'

import {
  CHANGE_INSTRUCTIONS,
  checkChange,
  commitContainer,
  commitReference,
  type CommitResult,
} from '../../image-commit.js'

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
    const reference = commitReference(ref)
    const changes = (this.flags.change ?? []).map((change) => checkChange(change))
    const {host} = this.flags
    await using hosts = await openHosts(this.config, this.flags, [host])
    const engine = await hosts.engine(host, this.signal)
    const {author, message: comment, pause} = this.flags
    const result = await commitContainer(
      engine,
      {author, changes, comment, container, host, pause, reference},
      this.signal,
    )
    this.logger().info(`${host}: container ${result.container.name} committed as ${result.ref}`)
    this.log(result.id)
    return result
  }
}
