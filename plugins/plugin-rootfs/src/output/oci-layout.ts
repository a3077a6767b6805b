/**
 * A built image as an OCI image layout: a directory (`oci:DIR`, what `skopeo copy oci:DIR …` and
 * `transship image push` read) or the same layout in a tar (`oci-archive:FILE`, written with the kit's
 * archive writer from a layout made beside it). The index names the image by its tag
 * (`org.opencontainers.image.ref.name`) and full name (`io.containerd.image.name`), as the kit's archives
 * do; an existing layout keeps its other images.
 */
import {ImageArchiveWriter, ociManifest, type OutputImage} from '@transship/kit/archive'
import {MEDIA_TYPES, nameAnnotations, OciLayout, sha256} from '@transship/kit/oci'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, mkdtemp, rename, rm} from 'node:fs/promises'
import path from 'node:path'
import {type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {type LayerBlob, type LayerCompression, writeLayerBlob} from './layer-blob.js'

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
  const layout = new OciLayout(dir, {signal})
  await mkdir(layout.blobsDir, {recursive: true})
  const blob = await writeLayerBlob(layer, layout.blobsDir, spec.compression, signal)
  const image = outputImage(spec, blob)
  const manifest = ociManifest(image)
  const manifestDigest = sha256(manifest)
  await layout.writeBlob(image.configDigest, image.config)
  await layout.writeBlob(manifestDigest, manifest)
  // the index last: a layout is never left pointing at missing blobs
  await layout.addToIndex(
    spec.tags.map((tag) => ({
      annotations: nameAnnotations(tag),
      digest: manifestDigest,
      mediaType: MEDIA_TYPES.ociManifest,
      size: manifest.length,
    })),
  )
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
    const blobFile = new OciLayout(scratch).blobFile(result.layer.digest)
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
