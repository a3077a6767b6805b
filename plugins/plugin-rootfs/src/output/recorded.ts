/**
 * What an output holds now under the image's name, for `plan`: nothing, or an image with its inputs record
 * (the label org.transship.rootfs.inputs of its config). Only reads: an engine's inspect, an OCI layout's
 * index, manifest and config, an archive's index (read whole and checked, as `image load` would).
 */
import type {Hosts} from '@transship/kit'

import {EngineError} from '@transship/kit'
import {familiarName, fullName, indexArchive, isArchiveError, METADATA_LIMIT, sha256} from '@transship/kit/archive'
import {createReadStream} from 'node:fs'
import {open, readFile, stat} from 'node:fs/promises'
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

interface ImageConfigLabels {
  config?: {Labels?: null | Record<string, string>}
}

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

interface Descriptor {
  annotations?: Record<string, string>
  digest?: string
  mediaType?: string
  size?: number
}

/** The image of an OCI layout directory as rootfs build writes it: the index names it, its blobs are there. */
async function ociLayoutState(dir: string, tag: string, compression: LayerCompression): Promise<OutputState> {
  const absent = (reason: string): OutputState => ({reason, state: 'absent'})
  let index: {manifests?: Descriptor[]}
  try {
    index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as typeof index
  } catch (error) {
    const {code} = error as NodeJS.ErrnoException
    if (code === 'ENOENT' || code === 'ENOTDIR') return absent('not built yet')
    if (error instanceof SyntaxError) return absent(`${dir}/index.json is not JSON`)
    throw error
  }

  const name = fullName(tag)
  const descriptor = index.manifests?.find((item) => item.annotations?.['io.containerd.image.name'] === name)
  if (!descriptor?.digest) return absent(`the layout does not hold ${familiarName(tag)}`)
  const manifestBytes = await readBlob(dir, descriptor.digest)
  if (!manifestBytes) return absent(`the layout lacks the manifest ${descriptor.digest}`)
  const manifest = parse<{config?: Descriptor; layers?: Descriptor[]}>(manifestBytes)
  if (!manifest?.config?.digest || !Array.isArray(manifest.layers)) {
    return absent(`the manifest ${descriptor.digest} is not an image manifest`)
  }

  const config = await readBlob(dir, manifest.config.digest)
  if (!config) return absent(`the layout lacks the config ${manifest.config.digest}`)
  for (const layer of manifest.layers) {
    if (layer.mediaType !== LAYER_MEDIA_TYPES[compression]) {
      return absent(`its layer is not compressed with ${compression}`)
    }

    const info = layer.digest ? await stat(blobPath(dir, layer.digest)).catch(() => {}) : undefined
    if (!info || info.size !== layer.size) return absent(`the layout lacks the layer ${layer.digest}`)
  }

  return {label: labelOf(config), state: 'present'}
}

function blobPath(dir: string, digest: string): string {
  const [algorithm = '', hex = ''] = digest.split(':')
  return path.join(dir, 'blobs', algorithm, hex)
}

/** A small blob whose content matches its digest; undefined when it is missing, too large or damaged. */
async function readBlob(dir: string, digest: string): Promise<Buffer | undefined> {
  if (!/^sha256:[\da-f]{64}$/.test(digest)) return undefined
  let handle
  try {
    handle = await open(blobPath(dir, digest), 'r')
  } catch {
    return undefined
  }

  try {
    const {size} = await handle.stat()
    if (size > METADATA_LIMIT) return undefined
    const bytes = await handle.readFile()
    return sha256(bytes) === digest ? bytes : undefined
  } finally {
    await handle.close()
  }
}

function labelOf(config: Buffer): string | undefined {
  return parse<ImageConfigLabels>(config)?.config?.Labels?.[INPUTS_LABEL]
}

function parse<T>(bytes: Buffer): T | undefined {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch {
    return undefined
  }
}
