/**
 * `rootfs diff`'s comparison of two images; reading them (archives, OCI layouts, engines) is the kit's
 * image-files module, re-exported here.
 */
import {type EngineClient} from '@transship/kit'
import {
  type ImageSource,
  type LayerCache,
  openImage,
  resolveImageSource as resolveKitImageSource,
} from '@transship/kit/archive'

import {buildReport, type DiffReport, type FileTree} from './compare.js'

export {
  applyLayer,
  type ImageSource,
  type LayerCache,
  type LayerEntry,
  normalizePath,
  type OpenedImage,
  openImage,
  readLayer,
} from '@transship/kit/archive'

/** What an argument of `rootfs diff` names (see the kit's resolveImageSource); a bad one is ROOTFS_DIFF_INPUT. */
export async function resolveImageSource(input: string): Promise<ImageSource> {
  return resolveKitImageSource(input, {code: 'ROOTFS_DIFF_INPUT'})
}

/**
 * Compares two images: their configs always, their files when their layers differ (a layer both have is
 * read once). `engine` is needed when a source is an image on an engine.
 */
export async function diffImages(
  a: ImageSource,
  b: ImageSource,
  options: {engine?: EngineClient; limit: number; signal?: AbortSignal},
): Promise<DiffReport> {
  const {signal} = options
  const imageA = await openImage(a, {...options, code: 'ROOTFS_DIFF_INPUT'})
  const imageB = await openImage(b, {...options, code: 'ROOTFS_DIFF_INPUT'})
  const idsA = imageA.summary.diffIDs
  const idsB = imageB.summary.diffIDs
  const sameLayers = idsA.length === idsB.length && idsA.every((id, position) => id === idsB[position])
  let files: undefined | {a: FileTree; b: FileTree}
  if (!sameLayers) {
    const shared = new Set(idsA.filter((id) => idsB.includes(id)))
    const cache: LayerCache = {keep: shared, layers: new Map()}
    const filesA = await imageA.files({cache, signal})
    const filesB = await imageB.files({cache, signal})
    files = {a: filesA, b: filesB}
  }

  return buildReport({
    a: imageA.summary,
    b: imageB.summary,
    configA: imageA.config,
    configB: imageB.config,
    ...(files ? {files} : {}),
    limit: options.limit,
  })
}
