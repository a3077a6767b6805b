import type {PlanContext, Reference, SectionProvider, Step} from '@transship/kit'
import type {ImageReference} from '@transship/kit/reference'

import {ExitCode, TransshipError, UsageError} from '@transship/kit'
import {indexArchive, isArchiveError, requireCompressor} from '@transship/kit/archive'
import {formatReference, parseReference, referenceProblem, showReference} from '@transship/kit/reference'
import {formatBytes} from '@transship/kit/ui'
import {createReadStream} from 'node:fs'
import {mkdir, stat} from 'node:fs/promises'
import path from 'node:path'
import {z} from 'zod'

import {outputChoice, saveImages} from './image-save.js'
import {inspectImage, requireImage, tagImage} from './image-store.js'
import {pushImage} from './registry/push-image.js'
import {Registries} from './registry/registries.js'
import {assessDestinations, copyImages} from './transfer/copy.js'
import {describeSourceImages, layerSizes, type SourceImage} from './transfer/images.js'

/** An issue naming the reference and the rule of the reference grammar it breaks, if it breaks one. */
function checkReference(value: string, context: z.RefinementCtx): void {
  const problem = referenceProblem(value)
  if (problem)
    context.addIssue({code: 'custom', message: `${showReference(value)} is not a valid image reference: ${problem}`})
}

const imageRef = z.string().superRefine(checkReference)

/** A registry of the recipe (a bare word), or a registry host or full reference, which must be valid as one. */
const registryOrReference = z
  .string()
  .min(1)
  .superRefine((value, context) => {
    if (/[./:]/.test(value)) checkReference(value, context)
  })

export const imageSchema = z.strictObject({
  copy: z
    .array(z.string())
    .optional()
    .describe('Hosts the image is copied to, over SSH: only the layers each one lacks are sent.'),
  from: z.string().optional().describe('Host that has the image (default: local).'),
  push: z
    .array(
      z.union([
        registryOrReference,
        z.strictObject({
          as: imageRef.optional().describe('Its name there, e.g. team/app:1.4 (default: the same repository and tag).'),
          registry: registryOrReference.describe('A registry of the recipe, or a registry host.'),
        }),
      ]),
    )
    .optional()
    .describe(
      'Registries to push the image to, from the host that has it: a registry of the recipe, a full reference (registry.example.com/team/app:1), or {registry, as} to rename it there.',
    ),
  ref: imageRef.describe('The image, e.g. app:1.'),
  save: z
    .string()
    .trim()
    .min(1, {message: 'give a file name, e.g. out/app-1.tar.zst'})
    .refine((value) => value !== '-' && !value.endsWith('/'), {message: 'give a file name, e.g. out/app-1.tar.zst'})
    .optional()
    .describe(
      "Archive file to save the image into, from the host that has it (a path relative to the recipe's directory). The name chooses the layout and compression as for `transship image save`: .tar, .oci.tar, then .gz, .zst, .bz2 or .xz. Images with the same file go into one archive.",
    ),
  tags: z
    .array(imageRef)
    .optional()
    .describe('More names for the same image, on the host that has it and on the hosts it is copied to.'),
})

export const imagesSchema = z
  .array(imageSchema)
  .superRefine((images, context) => {
    // one archive is read from one engine
    const fromByFile = new Map<string, {from: string; index: number}>()
    for (const [index, image] of images.entries()) {
      // defensive: refinements may see items that failed their own schema
      const {from = 'local', save} = (image ?? {}) as Partial<ImageSpec>
      if (typeof save !== 'string' || !save) continue
      const file = path.normalize(save)
      const first = fromByFile.get(file)
      if (!first) fromByFile.set(file, {from, index})
      else if (first.from !== from) {
        context.addIssue({
          code: 'custom',
          message: `images[${first.index}] saves into this file from host "${first.from}": one archive comes from one host`,
          path: [index, 'save'],
        })
      }
    }
  })
  .describe('Images, their tags, and where they go.')

export type ImageSpec = z.infer<typeof imageSchema>

export const imagesSection: SectionProvider<ImageSpec[]> = {
  // an image the recipe builds (rootfs) is copied, tagged, saved and pushed once it exists
  after: ['rootfs'],
  async plan(images, context) {
    const copies = await planCopies(images, context)
    const steps: Step[] = copies.map((copy) => copy.step)
    for (const [index, image] of images.entries()) {
      const from = image.from ?? 'local'
      steps.push(...(await planTags(image, index, from, upstream(context, from, image.ref), context)))
      for (const host of image.copy ?? []) {
        const copy = copies.find((item) => item.arriving.get(host)?.has(image.ref))
        const after = copy && {steps: [copy.step.id], toBeBuilt: copy.toBeBuilt.has(image.ref)}
        steps.push(...(await planTags(image, index, host, after, context)))
      }
    }

    steps.push(...(await planSaves(images, context)), ...(await planPushes(images, context)))
    return steps
  },
  plugin: '@transship/plugin-images',
  references(images): Reference[] {
    return images.flatMap((image, index) => [
      ...(image.push ?? []).flatMap((target, position) => {
        const name = typeof target === 'string' ? target : target.registry
        // a bare word names a registry of the recipe; hosts and references stand for themselves
        return /[./:]/.test(name) ? [] : [{kind: 'registry' as const, name, path: [index, 'push', position]}]
      }),
      ...(image.from ? [{kind: 'host' as const, name: image.from, path: [index, 'from']}] : []),
      ...(image.copy ?? []).map((name, position) => ({kind: 'host' as const, name, path: [index, 'copy', position]})),
    ])
  },
  schema: imagesSchema,
  section: 'images',
}

interface PlannedCopy {
  /** per destination host, the refs this step brings there */
  arriving: Map<string, Set<string>>
  step: Step
  /** the refs it copies that do not exist yet */
  toBeBuilt: Set<string>
}

/** Steps of earlier sections that make an image, and whether its ID is still unknown. */
interface Upstream {
  steps: string[]
  toBeBuilt: boolean
}

/** What an earlier section's steps will make of `ref` on `host` (e.g. a rootfs build); undefined: nothing. */
function upstream(context: PlanContext, host: string, ref: string): undefined | Upstream {
  const planned = context.planned.image(host, ref)
  return planned && {steps: planned.steps, toBeBuilt: planned.id === undefined}
}

/** Of `refs` on `host`, those that earlier steps make, with those steps. */
function upstreams(context: PlanContext, host: string, refs: string[]): Map<string, Upstream> {
  const made = new Map<string, Upstream>()
  for (const ref of refs) {
    const after = upstream(context, host, ref)
    if (after) made.set(ref, after)
  }

  return made
}

/** Every step of `made`, once: a step that uses those images waits for them all. */
function stepsOf(made: ReadonlyMap<string, Upstream>): string[] {
  return [...new Set([...made.values()].flatMap((after) => after.steps))]
}

/** `app:1`, or `app:1 (to be built)` when no ID is known yet. */
function shownRef(ref: string, after: undefined | Upstream): string {
  return after?.toBeBuilt ? `${ref} (to be built)` : ref
}

/** One copy step per source and set of destinations: the source is read once for all of them. */
async function planCopies(images: ImageSpec[], context: PlanContext): Promise<PlannedCopy[]> {
  const groups = new Map<string, {from: string; refs: string[]; to: string[]}>()
  for (const image of images) {
    if (!image.copy?.length) continue
    const from = image.from ?? 'local'
    const to = [...new Set(image.copy)].filter((host) => host !== from).sort()
    const key = `${from}→${to.join(',')}`
    const group = groups.get(key) ?? {from, refs: [], to}
    if (!group.refs.includes(image.ref)) group.refs.push(image.ref)
    groups.set(key, group)
  }

  const planned: PlannedCopy[] = []
  for (const {from, refs, to} of groups.values()) {
    const made = upstreams(context, from, refs)
    if (made.size > 0) {
      planned.push(plannedCopyOfFutureImages(from, refs, to, made))
      continue
    }

    const source = await context.hosts.engine(from, context.signal)
    const sourceImages = await describeSourceImages(source, refs, context.signal)
    const sizes = await layerSizes(source, sourceImages, context.signal)
    const needs = (await assessDestinations(context.hosts, sourceImages, to, context.signal)).filter(
      (need) => need.images.length > 0,
    )
    if (needs.length === 0) continue
    const destinations = needs.map((need) => {
      const missing = [...new Set(need.images.flatMap((item) => item.missing))]
      const bytes = missing.every((diffID) => sizes.has(diffID))
        ? missing.reduce((sum, diffID) => sum + sizes.get(diffID)!, 0)
        : undefined
      return {bytes, host: need.destination.host, images: need.images.map((item) => item.image.ref), missing}
    })
    const bytes = destinations.reduce((sum, destination) => sum + (destination.bytes ?? 0), 0)
    const refsToCopy = [...new Set(destinations.flatMap((destination) => destination.images))]
    // a classic engine's image ID is its config digest, the same on both sides; a containerd store's is not
    const sourceStore = (await source.facts(context.signal)).imageStore
    const idOf = new Map(sourceImages.map((image) => [image.ref, image.id]))
    planned.push({
      arriving: new Map(destinations.map((destination) => [destination.host, new Set(destination.images)])),
      step: {
        bytes: bytes > 0 ? bytes : undefined,
        detail: {destinations, from, images: refsToCopy},
        host: from,
        id: `images:copy:${from}:${to.join(',')}`,
        produces: {
          images: needs.flatMap((need) =>
            need.images.map(({image}) => ({
              host: need.destination.host,
              id:
                sourceStore === 'classic' && need.destination.facts.imageStore === 'classic'
                  ? idOf.get(image.ref)
                  : undefined,
              ref: image.ref,
            })),
          ),
        },
        run: copyRun(
          from,
          refsToCopy,
          destinations.map((destination) => destination.host),
        ),
        section: 'images',
        title: `copy ${refsToCopy.join(', ')} to ${destinations
          .map(
            (destination) =>
              `${destination.host} (${destination.missing.length} layers missing${destination.bytes === undefined ? '' : `, ${formatBytes(destination.bytes)}`})`,
          )
          .join(', ')}`,
      },
      toBeBuilt: new Set(),
    })
  }

  return planned
}

/**
 * A copy of images that earlier steps make (a rootfs build): it waits for them, and what each destination
 * lacks is decided when it runs (a destination that already has the result gets nothing).
 */
function plannedCopyOfFutureImages(
  from: string,
  refs: string[],
  to: string[],
  made: ReadonlyMap<string, Upstream>,
): PlannedCopy {
  const toBeBuilt = new Set([...made].filter(([, after]) => after.toBeBuilt).map(([ref]) => ref))
  return {
    arriving: new Map(to.map((host) => [host, new Set(refs)])),
    step: {
      dependsOn: stepsOf(made),
      detail: {destinations: to.map((host) => ({host, images: refs})), from, images: refs, toBeBuilt: [...toBeBuilt]},
      host: from,
      id: `images:copy:${from}:${to.join(',')}`,
      produces: {images: to.flatMap((host) => refs.map((ref) => ({host, ref})))},
      run: copyRun(from, refs, to),
      section: 'images',
      title: `copy ${refs.map((ref) => shownRef(ref, made.get(ref))).join(', ')} to ${to.join(', ')}`,
    },
    toBeBuilt,
  }
}

function copyRun(from: string, refs: string[], to: string[]): Step['run'] {
  return async ({hosts, log, progress, signal}) => {
    const reports = await copyImages({compression: 'auto', from, hosts, log, progress, refs, signal, to})
    const failed = reports.filter((report) => report.status === 'failed')
    if (failed.length > 0) {
      throw new TransshipError(
        'COPY_FAILED',
        ExitCode.Failed,
        failed.map((report) => `${report.host}: ${report.error?.message}`).join('; '),
      )
    }

    return {
      hosts: reports,
      summary: reports
        .map((report) =>
          report.status === 'up-to-date'
            ? `${report.host}: already there`
            : `${report.host}: ${report.layersSent} layers sent, ${report.layersSkipped} skipped, ${formatBytes(report.bytesOnWire)}`,
        )
        .join('; '),
    }
  }
}

/**
 * Tags of an image on one host. After the steps that bring or build the image there, they wait for them and
 * name what they made.
 */
async function planTags(
  image: ImageSpec,
  index: number,
  host: string,
  after: undefined | Upstream,
  context: PlanContext,
): Promise<Step[]> {
  if (!image.tags?.length) return []
  const engine = await context.hosts.engine(host, context.signal)
  const source = after ? undefined : await requireImage(engine, image.ref, context.signal)
  const steps: Step[] = []
  for (const tag of image.tags) {
    const current = await inspectImage(engine, tag, context.signal)
    if (source && current?.Id === source.Id) continue
    const name = formatReference(parseReference(tag))
    const shown = shownRef(image.ref, after)
    steps.push({
      dependsOn: after?.steps,
      detail: {from: current?.Id, image: source?.Id ?? image.ref, tag: name},
      host,
      id: `images[${index}]:tag:${host}:${name}`,
      produces: {images: [{host, id: source?.Id, ref: name}]},
      async run({signal}) {
        const id = source?.Id ?? (await requireImage(engine, image.ref, signal)).Id
        await tagImage(engine, id, tag, signal)
        return {summary: `${name} → ${id.slice(0, 19)}`}
      },
      section: 'images',
      title: current ? `retag ${name} (now ${current.Id.slice(7, 19)}) to ${shown}` : `tag ${shown} as ${name}`,
    })
  }

  return steps
}

/**
 * One step per archive file: the images that name it, saved from their host into one archive, unless the file
 * already holds every one of them (same ID and layers, under its name).
 */
async function planSaves(images: ImageSpec[], context: PlanContext): Promise<Step[]> {
  const groups = new Map<string, {file: string; from: string; refs: string[]; shown: string}>()
  for (const image of images) {
    if (!image.save) continue
    const file = path.resolve(context.recipe.dir, image.save)
    const group = groups.get(file) ?? {file, from: image.from ?? 'local', refs: [], shown: image.save}
    if (!group.refs.includes(image.ref)) group.refs.push(image.ref)
    groups.set(file, group)
  }

  const steps: Step[] = []
  for (const {file, from, refs, shown} of groups.values()) {
    const made = upstreams(context, from, refs)
    // images made by earlier steps are saved once they exist, whatever the file holds now
    const state: ArchiveState =
      made.size > 0
        ? {missing: refs, reason: 'missing'}
        : await archiveState(
            file,
            shown,
            await describeSourceImages(await context.hosts.engine(from, context.signal), refs, context.signal),
            context,
          )
    if (state.missing.length === 0) continue
    await requireCompressor(outputChoice(file).compression)
    steps.push({
      dependsOn: made.size > 0 ? stepsOf(made) : undefined,
      detail: {file, from, images: refs, missing: state.missing, reason: state.reason},
      host: from,
      id: `images:save:${file}`,
      async run({hosts, progress, signal}) {
        await mkdir(path.dirname(file), {recursive: true})
        const result = await saveImages({
          engine: await hosts.engine(from, signal),
          file,
          progress,
          refs,
          signal,
        })
        return {
          bytes: result.bytes,
          compression: result.compression,
          file,
          format: result.format,
          images: result.images,
          summary: `${shown}: ${result.images.length} image${result.images.length === 1 ? '' : 's'}, ${result.format}${
            result.compression === 'none' ? '' : `, ${result.compression}`
          }, ${formatBytes(result.bytes)}`,
        }
      },
      section: 'images',
      title: `save ${refs.map((ref) => shownRef(ref, made.get(ref))).join(', ')} to ${shown}${state.reason === 'missing' ? '' : ` (${state.reason})`}`,
    })
  }

  return steps
}

interface ArchiveState {
  /** the refs the file does not hold as their host has them */
  missing: string[]
  reason: 'missing' | 'outdated' | 'unreadable' | 'up to date'
}

/**
 * Whether `file` holds each source image: an image with its ID (the config digest on a classic engine; the
 * manifest or image index digest on a containerd-store engine) and its layers (diffIDs), under its name.
 * The whole file is read and checked (indexArchive): a damaged one is written again.
 */
async function archiveState(
  file: string,
  shown: string,
  sources: SourceImage[],
  context: PlanContext,
): Promise<ArchiveState> {
  const all = sources.map((source) => source.ref)
  const info = await stat(file).catch(() => {})
  if (!info) return {missing: all, reason: 'missing'}
  if (!info.isFile()) {
    throw new UsageError(`cannot save into ${file}: it is not a file`, {code: 'SAVE_TARGET_INVALID'})
  }

  let index
  try {
    index = await indexArchive(createReadStream(file), {signal: context.signal, source: shown})
  } catch (error) {
    if (!isArchiveError(error)) throw error
    context.log.warn(`${error.message}: apply writes ${shown} again`)
    return {missing: all, reason: 'unreadable'}
  }

  const missing = sources
    .filter((source) => {
      const name = formatReference(parseReference(source.ref))
      return !index.images.some(
        (image) =>
          [image.configDigest, image.indexDigest, image.manifestDigest].includes(source.id) &&
          image.repoTags.includes(name) &&
          image.layers.length === source.diffIDs.length &&
          image.layers.every((layer, position) => layer.diffID === source.diffIDs[position]),
      )
    })
    .map((source) => source.ref)
  return {missing, reason: missing.length === 0 ? 'up to date' : 'outdated'}
}

/**
 * Whether the registry's tag already names the engine's image: its manifest's config is the image's config
 * (a classic engine's image ID), or the manifest is the image (a containerd-store engine's ID).
 */
async function registryHolds(
  registries: Registries,
  target: ImageReference,
  imageId: string,
  signal: AbortSignal,
): Promise<boolean> {
  const held = await registries
    .client(target.domain)
    .getManifest(target.path, target.tag ?? 'latest', signal)
    .catch(() => {})
  if (!held) return false
  if (held.digest === imageId) return true
  const {config} = JSON.parse(held.body.toString('utf8')) as {config?: {digest?: string}}
  return config?.digest === imageId
}

/** One push step per image and target, unless the registry already holds the engine's image under that name. */
async function planPushes(images: ImageSpec[], context: PlanContext): Promise<Step[]> {
  const registries = new Registries(context.recipe.registrySpecs, context.log)
  const steps: Step[] = []
  for (const image of images) {
    const from = image.from ?? 'local'
    for (const entry of image.push ?? []) {
      const to = typeof entry === 'string' ? entry : entry.registry
      const as = typeof entry === 'string' ? undefined : entry.as
      const target = registries.target(parseReference(image.ref), to, as)
      const shown = formatReference(target)
      const after = upstream(context, from, image.ref)
      if (!after) {
        const engine = await context.hosts.engine(from, context.signal)
        const local = await requireImage(engine, image.ref, context.signal)
        if (await registryHolds(registries, target, local.Id, context.signal)) continue
      }

      steps.push({
        dependsOn: after?.steps,
        detail: {from, image: image.ref, target: shown},
        host: from,
        id: `images:push:${from}:${image.ref}:${shown}`,
        async run({hosts, log, signal}) {
          const result = await pushImage({as, host: from, source: image.ref, to}, {hosts, log, registries, signal})
          return {...result, summary: `${result.target}: ${result.digest}`}
        },
        section: 'images',
        title: `push ${shownRef(image.ref, after)} to ${shown}`,
      })
    }
  }

  return steps
}
