import type {Reference, SectionProvider, Step} from '@transship/kit'

import path from 'node:path'
import {z} from 'zod'

import {type BuildRequest, buildRootfs, imageTag, type RootfsInput} from './build.js'
import {imageConfigSchema} from './image/config.js'
import {formatOutput, parseOutput} from './output/targets.js'

const listOfWords = z.array(z.string().regex(/^[\w+.:=~-]+$/, {message: 'a package or component name'}))

const bootstrapSchema = z.strictObject({
  arch: z.string().regex(/^\w+$/).optional().describe("Debian architecture, e.g. arm64 (default: this machine's)."),
  components: listOfWords.optional().describe('Archive components, e.g. [main, contrib] (default: main).'),
  exclude: listOfWords.optional().describe('Packages left out (debootstrap only).'),
  include: listOfWords.optional().describe('Packages added, e.g. [iputils-ping, ca-certificates].'),
  mirror: z
    .url()
    .optional()
    .describe('Debian mirror (default: http://deb.debian.org/debian); a snapshot.debian.org URL pins the package set.'),
  suite: z
    .string()
    .regex(/^[\w.-]+$/, {message: 'a suite or codename, e.g. bookworm'})
    .describe('Suite or codename, e.g. bookworm.'),
  variant: z
    .string()
    .regex(/^[\w-]+$/)
    .optional()
    .describe('Package set, e.g. minbase (debootstrap default: the required and important packages).'),
})

const outputSchema = z
  .string()
  .refine(
    (value) => {
      try {
        parseOutput(value)
        return true
      } catch {
        return false
      }
    },
    {message: 'engine, engine:HOST, oci:DIR, oci-archive:FILE or docker-archive:FILE'},
  )
  .describe(
    'engine (this machine), engine:HOST (a host of the recipe), oci:DIR, oci-archive:FILE or docker-archive:FILE.',
  )

export const rootfsImageSchema = z
  .strictObject({
    cleanup: z
      .boolean()
      .optional()
      .describe('Remove logs, caches, apt lists, machine-id and the host resolv.conf/hostname (default true).'),
    compression: z
      .enum(['gzip', 'none'])
      .optional()
      .describe('Layer compression of OCI outputs (default gzip, reproducible).'),
    config: imageConfigSchema.optional(),
    debootstrap: bootstrapSchema.optional().describe('Build the rootfs with debootstrap (needs root).'),
    dir: z.string().min(1).optional().describe("An existing rootfs directory (relative to the recipe's directory)."),
    epoch: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'SOURCE_DATE_EPOCH: no file or config time is later. Default: the apt Release date of a debootstrap build, else the newest file.',
      ),
    image: z.string().min(1).describe('The image to build, e.g. base/debian:bookworm.'),
    mmdebstrap: bootstrapSchema
      .optional()
      .describe('Build the rootfs with mmdebstrap (same keys as debootstrap, no exclude).'),
    outputs: z.array(outputSchema).min(1).optional().describe('Where the image goes (default: [engine]).'),
    tarball: z
      .string()
      .min(1)
      .optional()
      .describe("A rootfs tarball, compressed or not (relative to the recipe's directory)."),
  })
  .superRefine((value, context) => {
    const given = (['debootstrap', 'mmdebstrap', 'tarball', 'dir'] as const).filter((key) => value[key] !== undefined)
    if (given.length !== 1) {
      context.addIssue({
        code: 'custom',
        message:
          given.length === 0
            ? 'say where the rootfs comes from: debootstrap, mmdebstrap, tarball or dir'
            : `give one of debootstrap, mmdebstrap, tarball or dir, not ${given.join(' and ')}`,
        path: [],
      })
    }

    if (value.mmdebstrap?.exclude) {
      context.addIssue({code: 'custom', message: 'mmdebstrap has no exclude', path: ['mmdebstrap', 'exclude']})
    }
  })

export const rootfsSchema = z
  .array(rootfsImageSchema)
  .describe('Base images built from debootstrap, tarballs or directories.')

export type RootfsImageSpec = z.infer<typeof rootfsImageSchema>

/** The build request of a recipe entry; paths are relative to `baseDir`. */
export function buildRequest(spec: RootfsImageSpec, baseDir: string): BuildRequest {
  let input: RootfsInput
  if (spec.debootstrap) input = {bootstrap: {...spec.debootstrap, tool: 'debootstrap'}, kind: 'bootstrap'}
  else if (spec.mmdebstrap) input = {bootstrap: {...spec.mmdebstrap, tool: 'mmdebstrap'}, kind: 'bootstrap'}
  else if (spec.tarball)
    input = {kind: 'tarball', path: spec.tarball === '-' ? '-' : path.resolve(baseDir, spec.tarball)}
  else input = {kind: 'directory', path: path.resolve(baseDir, spec.dir!)}
  return {
    cleanup: spec.cleanup,
    compression: spec.compression,
    config: spec.config,
    epoch: spec.epoch,
    image: spec.image,
    input,
    outputs: (spec.outputs ?? ['engine']).map((output) => parseOutput(output, baseDir)),
  }
}

function describeInput(input: RootfsInput): string {
  if (input.kind === 'bootstrap') {
    const {suite, tool, variant} = input.bootstrap
    return `${tool} ${suite}${variant ? ` (${variant})` : ''}`
  }

  return `${input.kind} ${path.relative(process.cwd(), input.path) || input.path}`
}

export const rootfsSection: SectionProvider<RootfsImageSpec[]> = {
  async plan(images, context) {
    return images.map((spec, index): Step => {
      const request = buildRequest(spec, context.recipe.dir)
      const outputs = request.outputs.map((output) => formatOutput(output))
      const engineHosts = request.outputs.flatMap((output) => (output.kind === 'engine' ? [output.host] : []))
      return {
        detail: {image: imageTag(spec.image), input: describeInput(request.input), outputs},
        host: engineHosts[0] ?? 'local',
        id: `rootfs:${index}:${imageTag(spec.image)}`,
        async run({hosts, log, signal}) {
          const result = await buildRootfs(request, {hosts, log, signal})
          return {
            ...result,
            summary: `${result.image}: layer ${result.diffID.slice(0, 19)}…, epoch ${result.epoch} (${result.epochSource}), ${result.outputs
              .map(
                (output) =>
                  `${output.output} ${(output.id ?? output.manifestDigest ?? output.configDigest).slice(0, 19)}…`,
              )
              .join(', ')}`,
          }
        },
        section: 'rootfs',
        title: `build ${imageTag(spec.image)} from ${describeInput(request.input)} → ${outputs.join(', ')}`,
      }
    })
  },
  plugin: '@transship/plugin-rootfs',
  references(images): Reference[] {
    return images.flatMap((image, index) =>
      (image.outputs ?? []).flatMap((output, position) => {
        const target = parseOutput(output)
        return target.kind === 'engine' && target.host !== 'local'
          ? [{kind: 'host' as const, name: target.host, path: [index, 'outputs', position]}]
          : []
      }),
    )
  },
  schema: rootfsSchema,
  section: 'rootfs',
}
