import type {PlanContext, Reference, SectionProvider, Step} from '@transship/kit'

import path from 'node:path'
import {z} from 'zod'

import {type BuildRequest, buildRootfs, imageTag, type RootfsInput} from './build.js'
import {imageConfigSchema} from './image/config.js'
import {inputChanges, parseRecord} from './inputs/record.js'
import {type WantedInputs, wantedInputs} from './inputs/wanted.js'
import {type OutputState, outputState} from './output/recorded.js'
import {formatOutput, type OutputTarget, parseOutput} from './output/targets.js'

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

/** The source, its path as the recipe writes it (relative to the recipe's directory). */
function describeInput(input: RootfsInput, baseDir: string): string {
  if (input.kind === 'bootstrap') {
    const {suite, tool, variant} = input.bootstrap
    return `${tool} ${suite}${variant ? ` (${variant})` : ''}`
  }

  const relative = path.relative(baseDir, input.path)
  return `${input.kind} ${relative && !relative.startsWith('..') ? relative : input.path}`
}

interface StaleOutput {
  output: OutputTarget
  /** why it gets the image (again) */
  reason: string
}

/**
 * The outputs that lack the image as the entry describes it: absent, without an inputs record, or built from
 * other inputs than the recipe's now (a new Release date on the mirror, another package list, a changed
 * tarball...).
 */
async function staleOutputs(request: BuildRequest, tag: string, context: PlanContext): Promise<StaleOutput[]> {
  const wanted = await wantedInputs(request, context.signal)
  const stale: StaleOutput[] = []
  for (const output of request.outputs) {
    const state = await outputState(output, tag, {
      compression: request.compression ?? 'gzip',
      hosts: context.hosts,
      signal: context.signal,
    })
    const reason = staleReason(state, wanted)
    if (reason !== undefined) stale.push({output, reason})
  }

  return stale
}

function staleReason(state: OutputState, wanted: WantedInputs): string | undefined {
  if (state.state === 'absent') return state.reason
  if ('unknown' in wanted) return `rebuild: ${wanted.unknown}`
  if (state.label === undefined) return 'rebuild: it has no record of its inputs'
  const previous = parseRecord(state.label)
  if (!previous) return 'rebuild: its record of its inputs cannot be read'
  const changes = inputChanges(previous, wanted.record)
  return changes.length > 0 ? `rebuild: ${changes.join('; ')}` : undefined
}

/** One reason when all outputs share it, else each output's. */
function summarise(stale: StaleOutput[]): string {
  const reasons = new Set(stale.map((item) => item.reason))
  if (reasons.size === 1) return stale[0]!.reason
  return stale.map((item) => `${formatOutput(item.output)}: ${item.reason}`).join('; ')
}

export const rootfsSection: SectionProvider<RootfsImageSpec[]> = {
  async plan(images, context) {
    const steps: Step[] = []
    for (const [index, spec] of images.entries()) {
      const request = buildRequest(spec, context.recipe.dir)
      const tag = imageTag(spec.image)
      const stale = await staleOutputs(request, tag, context)
      if (stale.length === 0) continue
      const build: BuildRequest = {...request, outputs: stale.map((item) => item.output)}
      const outputs = build.outputs.map((output) => formatOutput(output))
      const engineHosts = build.outputs.flatMap((output) => (output.kind === 'engine' ? [output.host] : []))
      steps.push({
        detail: {
          image: tag,
          input: describeInput(request.input, context.recipe.dir),
          outputs,
          reasons: Object.fromEntries(stale.map((item) => [formatOutput(item.output), item.reason])),
        },
        host: engineHosts[0] ?? 'local',
        id: `rootfs:${index}:${tag}`,
        // the ID is known once built (a bootstrap fetches what the mirror has then)
        produces: {images: engineHosts.map((host) => ({host, ref: tag}))},
        async run({hosts, log, signal}) {
          const result = await buildRootfs(build, {hosts, log, signal})
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
        title: `build ${tag} from ${describeInput(request.input, context.recipe.dir)} → ${outputs.join(', ')} (${summarise(stale)})`,
      })
    }

    return steps
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
