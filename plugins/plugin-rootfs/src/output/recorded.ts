/**
 * What an output holds now under the image's name, for `plan`: nothing, or an image with its inputs record
 * (the label org.transship.rootfs.inputs of its config). Only reads: an engine's inspect, an OCI layout's
 * index, manifest and config, an archive's index (read whole and checked, as `image load` would).
 */
import type {Hosts} from '@transship/kit'

import {EngineError} from '@transship/kit'
import {familiarName, fullName, indexArchive, isArchiveError, METADATA_LIMIT} from '@transship/kit/archive'
import {IMAGE_NAME_ANNOTATION, type ImageConfig, isDigest, OciLayout, type ParsedManifest} from '@transship/kit/oci'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import path from 'node:path'

import {INPUTS_LABEL} from '../inputs/record.js'
import {LAYER_MEDIA_TYPES, type LayerCompression} from './layer-blob.js'
import {type OutputTarget} from './targets.js'

export type OutputState =
  | {
      /** the engine's image ID (engines only) */
      id?: string
      /** the inputs record's text; undefined when the image has none */
      label?: string
      state: 'present'
    }
  | {reason: string; state: 'absent'}

/**
 * The image named `tag` at `output`. `compression` is what an OCI output's layer should be compressed with: an
 * image compressed otherwise counts as absent.
 */
export async function outputState(
  output: OutputTarget,
  tag: string,
  options: {compression: LayerCompression; hosts: Hosts; signal: AbortSignal},
): Promise<OutputState> {
  switch (output.kind) {
    case 'engine': {
      const engine = await options.hosts.engine(output.host, options.signal)
      try {
        const image = await engine.json<{Config?: {Labels?: null | Record<string, string>}; Id: string}>({
          path: `/images/${encodeURIComponent(tag)}/json`,
          signal: options.signal,
        })
        return {id: image.Id, label: image.Config?.Labels?.[INPUTS_LABEL], state: 'present'}
      } catch (error) {
        if (error instanceof EngineError && error.status === 404) return {reason: 'not built yet', state: 'absent'}
        throw error
      }
    }

    case 'oci': {
      return ociLayoutState(output.path, tag, options.compression)
    }

    default: {
      return archiveState(output.path, tag, output.kind === 'oci-archive' ? options.compression : undefined, options)
    }
  }
}

async function archiveState(
  file: string,
  tag: string,
  compression: LayerCompression | undefined,
  options: {signal: AbortSignal},
): Promise<OutputState> {
  if (!(await stat(file).catch(() => {}))?.isFile()) return {reason: 'not built yet', state: 'absent'}
  let index
  try {
    index = await indexArchive(createReadStream(file), {signal: options.signal, source: file})
  } catch (error) {
    if (!isArchiveError(error)) throw error
    return {reason: `${path.basename(file)} cannot be read (${error.message})`, state: 'absent'}
  }

  const name = familiarName(tag)
  const image = index.images.find((item) => item.repoTags.includes(name))
  if (!image) return {reason: `${path.basename(file)} does not hold ${name}`, state: 'absent'}
  if (compression && image.layers.some((layer) => layer.mediaType !== LAYER_MEDIA_TYPES[compression])) {
    return {reason: `its layer is not compressed with ${compression}`, state: 'absent'}
  }

  return {label: labelOf(image.config), state: 'present'}
}

/** The image of an OCI layout directory as rootfs build writes it: the index names it, its blobs are there. */
async function ociLayoutState(dir: string, tag: string, compression: LayerCompression): Promise<OutputState> {
  const absent = (reason: string): OutputState => ({reason, state: 'absent'})
  const layout = new OciLayout(dir)
  let index
  try {
    index = await layout.index()
  } catch (error) {
    if (isArchiveError(error)) return absent(`${dir}/index.json is not JSON`)
    throw error
  }

  if (!index) return absent('not built yet')
  const name = fullName(tag)
  const descriptor = index.manifests?.find((item) => item.annotations?.[IMAGE_NAME_ANNOTATION] === name)
  if (!isDigest(descriptor?.digest)) return absent(`the layout does not hold ${familiarName(tag)}`)
  const manifestBytes = await readBlob(layout, descriptor.digest)
  if (!manifestBytes) return absent(`the layout lacks the manifest ${descriptor.digest}`)
  const manifest = parse<ParsedManifest>(manifestBytes)
  if (!isDigest(manifest?.config?.digest) || !Array.isArray(manifest.layers)) {
    return absent(`the manifest ${descriptor.digest} is not an image manifest`)
  }

  const config = await readBlob(layout, manifest.config.digest)
  if (!config) return absent(`the layout lacks the config ${manifest.config.digest}`)
  for (const layer of manifest.layers) {
    if (layer.mediaType !== LAYER_MEDIA_TYPES[compression]) {
      return absent(`its layer is not compressed with ${compression}`)
    }

    if (typeof layer.size !== 'number' || !(await layout.hasBlob(layer.digest, layer.size))) {
      return absent(`the layout lacks the layer ${String(layer.digest)}`)
    }
  }

  return {label: labelOf(config), state: 'present'}
}

/** A small blob whose content matches its digest; undefined when it is missing, too large or damaged. */
async function readBlob(layout: OciLayout, digest: string): Promise<Buffer | undefined> {
  try {
    return await layout.readBlob(digest, 'a blob', {limit: METADATA_LIMIT})
  } catch (error) {
    if (isArchiveError(error)) return undefined
    throw error
  }
}

function labelOf(config: Buffer): string | undefined {
  return parse<ImageConfig>(config)?.config?.Labels?.[INPUTS_LABEL]
}

function parse<T>(bytes: Buffer): T | undefined {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch {
    return undefined
  }
}
