import type {Reference, SectionProvider} from '@transship/kit'

import {z} from 'zod'

const imageSchema = z.array(z.strictObject({copy: z.array(z.string()).optional(), ref: z.string()}))
type Images = z.output<typeof imageSchema>

/** A small `images` section: each `copy` entry names a host. */
export const imagesProvider: SectionProvider<Images> = {
  async plan() {
    return []
  },
  plugin: '@example/plugin-images',
  references: (images) =>
    images.flatMap((image, i) =>
      (image.copy ?? []).map((name, j): Reference => ({kind: 'host', name, path: [i, 'copy', j]})),
    ),
  schema: imageSchema,
  section: 'images',
}

const pushSchema = z.array(
  z.discriminatedUnion('kind', [
    z.strictObject({kind: z.literal('push'), ref: z.string(), to: z.string()}),
    z.strictObject({kind: z.literal('pull'), from: z.string(), ref: z.string()}),
  ]),
)
type Pushes = z.output<typeof pushSchema>

/** A section with a discriminated union and registry references, for the harder paths. */
export const pushProvider: SectionProvider<Pushes> = {
  async plan() {
    return []
  },
  plugin: '@example/plugin-push',
  references: (items) =>
    items.map((item, i): Reference =>
      item.kind === 'push'
        ? {kind: 'registry', name: item.to, path: [i, 'to']}
        : {kind: 'registry', name: item.from, path: [i, 'from']},
    ),
  schema: pushSchema,
  section: 'push',
}

/** A section whose value is a plain union: a name, or a list of names. */
export const tagsProvider: SectionProvider<string | string[]> = {
  async plan() {
    return []
  },
  plugin: '@example/plugin-tags',
  schema: z.union([z.string(), z.array(z.string())]),
  section: 'tags',
}
