import {Args, Flags} from '@oclif/core'
import {BaseCommand, coreServices, openHosts, recipeHostFlags, UsageError} from '@transship/kit'
import {parseReference} from '@transship/kit/reference'
import {formatBytes, formatTable} from '@transship/kit/ui'

import {type BuildRequest, type BuildResult, buildRootfs, type RootfsInput} from '../../build.js'
import {type ImageConfigInput, imageConfigSchema} from '../../image/config.js'
import {parseOutput} from '../../output/targets.js'
import {buildRequest, type RootfsImageSpec} from '../../section.js'

const list = (description: string) => Flags.string({delimiter: ',', description, multiple: true})

/** `KEY=VALUE` flags as a record. */
function pairs(values: string[] | undefined, flag: string): Record<string, string> | undefined {
  if (!values) return undefined
  return Object.fromEntries(
    values.map((value) => {
      const equals = value.indexOf('=')
      if (equals < 1) throw new UsageError(`--${flag} ${value}: give KEY=VALUE`, {code: 'FLAG_INVALID'})
      return [value.slice(0, equals), value.slice(equals + 1)]
    }),
  )
}

/** A command flag: a JSON list (exec form) or a string for the shell, as in a Dockerfile. */
function command(value: string | undefined): string | string[] | undefined {
  if (value === undefined || !value.trimStart().startsWith('[')) return value
  try {
    return JSON.parse(value) as string[]
  } catch {
    throw new UsageError(`${value} is not a JSON list of strings`, {
      code: 'FLAG_INVALID',
      suggestions: ['write the exec form as JSON, e.g. \'["bash", "-l"]\', or give a string for /bin/sh -c'],
    })
  }
}

export default class RootfsBuild extends BaseCommand<typeof RootfsBuild> {
  static override args = {
    recipe: Args.string({description: 'A recipe whose `rootfs` images to build (all, or those named by --image).'}),
  }
  static override description = `Builds a base image the reproducible way: the same inputs give the same layer digest and image ID, bit for bit. The rootfs comes from debootstrap (or mmdebstrap), a rootfs tarball, or a directory; logs, caches, apt lists, machine-id and the build host's hostname and resolv.conf are left out, times are clamped to the epoch (SOURCE_DATE_EPOCH), owners are numeric, hardlinks stay hardlinks and file capabilities (xattrs) are kept. The image config is written by transship with created = the epoch.

The epoch, when not given, is the Date of the apt Release file debootstrap fetched, else the newest file; it is printed so the build can be repeated. Outputs: the local engine (default), a host's engine (engine:HOST), an OCI layout (oci:DIR), an OCI archive (oci-archive:FILE) or a docker-archive (docker-archive:FILE); file outputs need no engine. debootstrap needs root.`
  static override enableJsonFlag = true
  static override examples = [
    {
      command:
        '<%= config.bin %> <%= command.id %> --debootstrap bookworm --variant minbase --tag base/debian:bookworm',
      description: 'A Debian bookworm minbase image in the local engine.',
    },
    {
      command:
        '<%= config.bin %> <%= command.id %> --debootstrap bookworm --variant minbase --include iputils-ping --epoch 1731974400 --tag base/debian:bookworm -o oci:out/debian -o docker-archive:out/debian.tar',
      description: 'The same, with a fixed epoch, to an OCI layout and a docker-archive (no engine needed).',
    },
    {
      command:
        '<%= config.bin %> <%= command.id %> --tarball rootfs.tar.gz --tag base/alpine:3.20 --cmd \'["/bin/sh"]\'',
      description: 'A rootfs tarball as an image, reproducibly (unlike docker import).',
    },
    {
      command: '<%= config.bin %> <%= command.id %> recipes/debian-base.yaml',
      description: 'Every rootfs image of a recipe.',
    },
  ]
  static override flags = {
    ...recipeHostFlags,
    arch: Flags.string({description: 'Debian architecture to bootstrap (default: this machine).'}),
    cleanup: Flags.boolean({
      allowNo: true,
      default: true,
      description: 'Leave out logs, caches, apt lists, machine-id and host files.',
    }),
    cmd: Flags.string({description: 'CMD: a JSON list, or a string for /bin/sh -c.'}),
    components: list('Archive components (comma-separated).'),
    compression: Flags.string({description: 'Layer compression of OCI outputs.', options: ['gzip', 'none']}),
    debootstrap: Flags.string({
      description: 'Bootstrap this Debian suite with debootstrap (needs root).',
      exclusive: ['tarball', 'dir'],
    }),
    dir: Flags.string({description: 'An existing rootfs directory.', exclusive: ['tarball', 'debootstrap']}),
    entrypoint: Flags.string({description: 'ENTRYPOINT: a JSON list, or a string for /bin/sh -c.'}),
    env: Flags.string({description: 'ENV KEY=VALUE (repeatable).', multiple: true}),
    epoch: Flags.integer({
      description: 'SOURCE_DATE_EPOCH, in seconds (default: decided from the rootfs and printed).',
      min: 0,
    }),
    exclude: list('Packages to leave out (comma-separated; debootstrap only).'),
    expose: Flags.string({description: 'EXPOSE a port, e.g. 80 or 53/udp (repeatable).', multiple: true}),
    image: Flags.string({description: 'With a recipe: build only this image (repeatable).', multiple: true}),
    include: list('Packages to add (comma-separated).'),
    label: Flags.string({description: 'LABEL KEY=VALUE (repeatable).', multiple: true}),
    mirror: Flags.string({description: 'Debian mirror, e.g. a snapshot.debian.org URL.'}),
    mmdebstrap: Flags.boolean({
      description: 'Bootstrap with mmdebstrap instead of debootstrap.',
      dependsOn: ['debootstrap'],
    }),
    output: Flags.string({
      char: 'o',
      description:
        'Where the image goes: engine, engine:HOST, oci:DIR, oci-archive:FILE, docker-archive:FILE (repeatable; default engine).',
      multiple: true,
    }),
    'stop-signal': Flags.string({description: 'STOPSIGNAL, e.g. SIGQUIT.'}),
    tag: Flags.string({char: 't', description: 'Name of the image, e.g. base/debian:bookworm.'}),
    tarball: Flags.string({
      description: 'A rootfs tarball (compressed or not), or - for stdin.',
      exclusive: ['debootstrap', 'dir'],
    }),
    user: Flags.string({description: 'USER the container runs as.'}),
    variant: Flags.string({description: 'debootstrap variant, e.g. minbase.'}),
    volume: Flags.string({description: 'VOLUME, an absolute path (repeatable).', multiple: true}),
    'work-dir': Flags.string({description: 'Where debootstrap builds the rootfs (default /var/tmp).'}),
    workdir: Flags.string({description: 'WORKDIR of the image.'}),
  }
  static override summary = 'Build a reproducible base image from debootstrap, a rootfs tarball or a directory.'

  async run(): Promise<BuildResult[]> {
    const requests = this.args.recipe ? await this.recipeRequests(this.args.recipe) : [this.flagRequest()]
    const hostNames = [
      ...new Set(
        requests.flatMap((request) =>
          request.outputs.flatMap((output) => (output.kind === 'engine' ? [output.host] : [])),
        ),
      ),
    ]
    await using hosts = await openHosts(this.config, this.flags, hostNames)
    const results: BuildResult[] = []
    for (const request of requests) {
      const result = await buildRootfs(request, {hosts, log: this.logger(), signal: this.signal})
      results.push(result)
      this.render(result)
    }

    return results
  }

  private flagRequest(): BuildRequest {
    const {flags} = this
    if (!flags.tag) {
      throw new UsageError('name the image with --tag (e.g. --tag base/debian:bookworm)', {code: 'FLAG_MISSING'})
    }

    parseReference(flags.tag)

    let input: RootfsInput
    if (flags.debootstrap) {
      input = {
        bootstrap: {
          arch: flags.arch,
          components: flags.components,
          exclude: flags.exclude,
          include: flags.include,
          mirror: flags.mirror,
          suite: flags.debootstrap,
          tool: flags.mmdebstrap ? 'mmdebstrap' : 'debootstrap',
          variant: flags.variant,
        },
        kind: 'bootstrap',
      }
    } else if (flags.tarball) input = {kind: 'tarball', path: flags.tarball}
    else if (flags.dir) input = {kind: 'directory', path: flags.dir}
    else {
      throw new UsageError(
        'say where the rootfs comes from: --debootstrap SUITE, --tarball FILE or --dir DIR (or give a recipe)',
        {
          code: 'FLAG_MISSING',
        },
      )
    }

    const config: ImageConfigInput = {
      cmd: command(flags.cmd),
      entrypoint: command(flags.entrypoint),
      env: pairs(flags.env, 'env'),
      labels: pairs(flags.label, 'label'),
      ports: flags.expose,
      stopSignal: flags['stop-signal'],
      user: flags.user,
      volumes: flags.volume,
      workdir: flags.workdir,
    }
    const parsed = imageConfigSchema.safeParse(config)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!
      throw new UsageError(`--${String(issue.path[0] ?? 'config')}: ${issue.message}`, {code: 'FLAG_INVALID'})
    }

    return {
      cleanup: flags.cleanup,
      compression: flags.compression as 'gzip' | 'none' | undefined,
      config: parsed.data,
      epoch: flags.epoch,
      image: flags.tag,
      input,
      outputs: (flags.output ?? ['engine']).map((output) => parseOutput(output)),
      workDir: flags['work-dir'],
    }
  }

  private async recipeRequests(file: string): Promise<BuildRequest[]> {
    const services = await coreServices(this.config)
    const section = await services.recipeSection(file, 'rootfs')
    const specs = (section?.value ?? []) as RootfsImageSpec[]
    const wanted = this.flags.image
    const chosen = wanted ? specs.filter((spec) => wanted.includes(spec.image)) : specs
    if (chosen.length === 0) {
      throw new UsageError(
        wanted ? `${file} builds no image named ${wanted.join(', ')}` : `${file} has no rootfs section`,
        {
          code: 'RECIPE_NOTHING_TO_BUILD',
          suggestions: specs.length > 0 ? [`its images: ${specs.map((spec) => spec.image).join(', ')}`] : [],
        },
      )
    }

    return chosen.map((spec) => ({...buildRequest(spec, section!.dir), workDir: this.flags['work-dir']}))
  }

  private render(result: BuildResult): void {
    if (this.jsonEnabled()) return
    this.log(`${result.image}: ${result.entries} files, layer ${formatBytes(result.layerSize)} ${result.diffID}`)
    this.log(
      `epoch ${result.epoch} (${new Date(result.epoch * 1000).toISOString()}, ${result.epochSource}): rebuild with --epoch ${result.epoch}`,
    )
    this.log(
      formatTable(
        ['OUTPUT', 'IMAGE ID / MANIFEST', 'CONFIG'],
        result.outputs.map((output) => [output.output, output.id ?? output.manifestDigest ?? '', output.configDigest]),
      ),
    )
  }
}
