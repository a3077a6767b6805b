import type {PlanContext, Reference, SectionProvider, Step} from '@transship/kit'

import {z} from 'zod'

import {inspectImage, requireImage, tagImage} from './image-store.js'
import {formatReference, parseReference} from './reference.js'

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
  from: z.string().optional().describe('Host that has the image (default: local).'),
  ref: imageRef.describe('The image, e.g. app:1.'),
  tags: z.array(imageRef).optional().describe('More names for the same image on the hosts that have it.'),
})

export const imagesSchema = z.array(imageSchema).describe('Images, their tags, and where they go.')

export type ImageSpec = z.infer<typeof imageSchema>

export const imagesSection: SectionProvider<ImageSpec[]> = {
  async plan(images, context) {
    const steps: Step[] = []
    for (const [index, image] of images.entries()) steps.push(...(await planImage(image, index, context)))
    return steps
  },
  plugin: '@transship/plugin-images',
  references(images): Reference[] {
    return images.flatMap((image, index) =>
      image.from ? [{kind: 'host' as const, name: image.from, path: [index, 'from']}] : [],
    )
  },
  schema: imagesSchema,
  section: 'images',
}

async function planImage(image: ImageSpec, index: number, context: PlanContext): Promise<Step[]> {
  const host = image.from ?? 'local'
  const engine = await context.hosts.engine(host, context.signal)
  const source = await requireImage(engine, image.ref, context.signal)
  const steps: Step[] = []
  for (const tag of image.tags ?? []) {
    const current = await inspectImage(engine, tag, context.signal)
    if (current?.Id === source.Id) continue
    const name = formatReference(parseReference(tag))
    steps.push({
      detail: {from: current?.Id, image: source.Id, tag: name},
      host,
      id: `images[${index}]:tag:${host}:${name}`,
      async run({signal}) {
        await tagImage(engine, source.Id, tag, signal)
        return {summary: `${name} → ${source.Id.slice(0, 19)}`}
      },
      section: 'images',
      title: current ? `retag ${name} (now ${current.Id.slice(7, 19)}) to ${image.ref}` : `tag ${image.ref} as ${name}`,
    })
  }

  return steps
}
