/**
 * A built image as an OCI image layout: a directory (`oci:DIR`, what `skopeo copy oci:DIR …` and
 * `transship image push` read) or the same layout in a tar (`oci-archive:FILE`, written with the kit's
 * archive writer from a layout made beside it). The index names the image by its tag
 * (`org.opencontainers.image.ref.name`) and full name (`io.containerd.image.name`), as the kit's archives
 * do; an existing layout keeps its other images.
 */
import {fullName, ImageArchiveWriter, ociManifest, type OutputImage, sha256, tagOf} from '@transship/kit/archive'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, mkdtemp, readFile, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {type LayerBlob, type LayerCompression, writeLayerBlob} from './layer-blob.js'

const INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json'
const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json'

export interface OciImageSpec {
  compression: LayerCompression
  /** the config for the layer's diffID */
  config(diffID: string): Buffer
  tags: string[]
}

export interface OciResult {
  config: Buffer
  configDigest: string
  layer: LayerBlob
  manifestDigest: string
}

interface IndexDescriptor {
  annotations?: Record<string, string>
  digest: string
  mediaType: string
  size: number
}

async function readIndex(dir: string): Promise<IndexDescriptor[]> {
  try {
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as {manifests?: IndexDescriptor[]}
    return index.manifests ?? []
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
}

function outputImage(spec: OciImageSpec, layer: LayerBlob): OutputImage {
  const config = spec.config(layer.diffID)
  return {
    config,
    configDigest: sha256(config),
    layers: [{diffID: layer.diffID, digest: layer.digest, mediaType: layer.mediaType, size: layer.size}],
    tags: spec.tags,
  }
}

/** Writes the image into the layout at `dir` (created when missing). */
export async function writeOciLayout(
  dir: string,
  layer: Readable,
  spec: OciImageSpec,
  signal?: AbortSignal,
): Promise<OciResult> {
  const blobs = path.join(dir, 'blobs', 'sha256')
  await mkdir(blobs, {recursive: true})
  const blob = await writeLayerBlob(layer, blobs, spec.compression, signal)
  const image = outputImage(spec, blob)
  const manifest = ociManifest(image)
  const manifestDigest = sha256(manifest)
  await writeFile(path.join(blobs, image.configDigest.slice('sha256:'.length)), image.config)
  await writeFile(path.join(blobs, manifestDigest.slice('sha256:'.length)), manifest)

  const names = new Set(spec.tags.map((tag) => fullName(tag)))
  const kept = (await readIndex(dir)).filter(
    (descriptor) => !names.has(descriptor.annotations?.['io.containerd.image.name'] ?? ''),
  )
  const added = spec.tags.map((tag) => {
    const annotations: Record<string, string> = {'io.containerd.image.name': fullName(tag)}
    const ref = tagOf(tag)
    if (ref) annotations['org.opencontainers.image.ref.name'] = ref
    return {digest: manifestDigest, mediaType: MANIFEST_MEDIA_TYPE, size: manifest.length, annotations}
  })
  const index = {schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: [...kept, ...added]}
  // index.json last, through a temporary name: a layout is never left pointing at missing blobs
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  await writeFile(path.join(dir, 'index.json.tmp'), JSON.stringify(index))
  await rename(path.join(dir, 'index.json.tmp'), path.join(dir, 'index.json'))
  return {config: image.config, configDigest: image.configDigest, layer: blob, manifestDigest}
}

/** Writes the image as an OCI layout in a tar file, via a layout in a directory beside it (removed after). */
export async function writeOciArchive(
  file: string,
  layer: Readable,
  spec: OciImageSpec & {epoch: number},
  signal?: AbortSignal,
): Promise<OciResult> {
  await mkdir(path.dirname(file), {recursive: true})
  const scratch = await mkdtemp(path.join(path.dirname(file), `.${path.basename(file)}.`))
  const temporary = `${scratch}.tar`
  try {
    const result = await writeOciLayout(scratch, layer, spec, signal)
    const image: OutputImage = {
      config: result.config,
      configDigest: result.configDigest,
      layers: [
        {
          diffID: result.layer.diffID,
          digest: result.layer.digest,
          mediaType: result.layer.mediaType,
          size: result.layer.size,
        },
      ],
      tags: spec.tags,
    }
    const writer = new ImageArchiveWriter('oci', [image], {mtime: new Date(spec.epoch * 1000)})
    const written = pipeline(writer.stream, createWriteStream(temporary), {signal})
    const blobFile = path.join(scratch, 'blobs', 'sha256', result.layer.digest.slice('sha256:'.length))
    await writer.writeLayer(result.layer, createReadStream(blobFile), signal)
    await writer.finish()
    await written
    await rename(temporary, file)
    return result
  } finally {
    await rm(scratch, {force: true, recursive: true})
    await rm(temporary, {force: true})
  }
}
