import type {EngineClient, PlanContext, Reference, SectionProvider, Step} from '@transship/kit'

import {formatBytes, TransshipError} from '@transship/kit'
import {z} from 'zod'

import {inspectImage, requireImage, tagImage} from './image-store.js'
import {formatReference, parseReference} from './reference.js'
import {assessDestinations, copyImages} from './transfer/copy.js'
import {describeSourceImages, type SourceImage} from './transfer/images.js'

const imageRef = z.string().refine(
  (value) => {
    try {
      parseReference(value)
      return true
    } catch {
      return false
    }
  },
  {message: 'not a valid image reference (e.g. app:1, registry.example.com/team/app:1.4)'},
)

export const imageSchema = z.strictObject({
  copy: z
    .array(z.string())
    .optional()
    .describe('Hosts the image is copied to, over SSH: only the layers each one lacks are sent.'),
  from: z.string().optional().describe('Host that has the image (default: local).'),
  ref: imageRef.describe('The image, e.g. app:1.'),
  tags: z
    .array(imageRef)
    .optional()
    .describe('More names for the same image, on the host that has it and on the hosts it is copied to.'),
})

export const imagesSchema = z.array(imageSchema).describe('Images, their tags, and where they go.')

export type ImageSpec = z.infer<typeof imageSchema>

export const imagesSection: SectionProvider<ImageSpec[]> = {
  async plan(images, context) {
    const copies = await planCopies(images, context)
    const steps: Step[] = copies.map((copy) => copy.step)
    for (const [index, image] of images.entries()) {
      const from = image.from ?? 'local'
      steps.push(...(await planTags(image, index, from, undefined, context)))
      for (const host of image.copy ?? []) {
        const copy = copies.find((item) => item.arriving.get(host)?.has(image.ref))
        steps.push(...(await planTags(image, index, host, copy?.step.id, context)))
      }
    }

    return steps
  },
  plugin: '@transship/plugin-images',
  references(images): Reference[] {
    return images.flatMap((image, index) => [
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
    planned.push({
      arriving: new Map(destinations.map((destination) => [destination.host, new Set(destination.images)])),
      step: {
        bytes: bytes > 0 ? bytes : undefined,
        detail: {destinations, from, images: refsToCopy},
        host: from,
        id: `images:copy:${from}:${to.join(',')}`,
        async run({hosts, log, progress, signal}) {
          const reports = await copyImages({
            compression: 'auto',
            from,
            hosts,
            log,
            progress,
            refs: refsToCopy,
            signal,
            to: destinations.map((destination) => destination.host),
          })
          const failed = reports.filter((report) => report.status === 'failed')
          if (failed.length > 0) {
            throw new TransshipError(
              'COPY_FAILED',
              1,
              failed.map((report) => `${report.host}: ${report.error?.message}`).join('; '),
            )
          }

          return {
            hosts: reports,
            summary: reports
              .map(
                (report) =>
                  `${report.host}: ${report.layersSent} layers sent, ${report.layersSkipped} skipped, ${formatBytes(report.bytesOnWire)}`,
              )
              .join('; '),
          }
        },
        section: 'images',
        title: `copy ${refsToCopy.join(', ')} to ${destinations
          .map(
            (destination) =>
              `${destination.host} (${destination.missing.length} layers missing${destination.bytes === undefined ? '' : `, ${formatBytes(destination.bytes)}`})`,
          )
          .join(', ')}`,
      },
    })
  }

  return planned
}

/** Tags of an image on one host. After a copy step, they wait for it and name what it brought. */
async function planTags(
  image: ImageSpec,
  index: number,
  host: string,
  after: string | undefined,
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
    steps.push({
      dependsOn: after ? [after] : undefined,
      detail: {from: current?.Id, image: source?.Id ?? image.ref, tag: name},
      host,
      id: `images[${index}]:tag:${host}:${name}`,
      async run({signal}) {
        const id = source?.Id ?? (await requireImage(engine, image.ref, signal)).Id
        await tagImage(engine, id, tag, signal)
        return {summary: `${name} → ${id.slice(0, 19)}`}
      },
      section: 'images',
      title: current ? `retag ${name} (now ${current.Id.slice(7, 19)}) to ${image.ref}` : `tag ${image.ref} as ${name}`,
    })
  }

  return steps
}

/**
 * Uncompressed layer sizes, from the image history: its entries with a size are its layers, oldest
 * first. When the count does not match (empty layers), the sizes stay unknown rather than wrong.
 */
async function layerSizes(
  engine: EngineClient,
  images: SourceImage[],
  signal: AbortSignal,
): Promise<Map<string, number>> {
  const sizes = new Map<string, number>()
  for (const image of images) {
    const history = await engine.json<Array<{Size: number}>>({
      path: `/images/${encodeURIComponent(image.id)}/history`,
      signal,
    })
    const layered = history.filter((item) => item.Size > 0).reverse()
    if (layered.length !== image.diffIDs.length) continue
    for (const [position, diffID] of image.diffIDs.entries()) sizes.set(diffID, layered[position]!.Size)
  }

  return sizes
}
