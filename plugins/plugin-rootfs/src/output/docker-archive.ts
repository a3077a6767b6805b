/**
 * A one-image docker-archive (what `docker load` reads) streamed straight from the layer tar: the layer
 * first (its size is measured beforehand), then the config (which names the layer's diffID, known once the
 * layer has streamed through), then manifest.json. Engines read manifest.json after the whole archive, so
 * this order works for both image stores, and nothing is written to disk on the way.
 */
import {sha256} from '@transship/kit/oci'
import {PassThrough, type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import tar from 'tar-stream'

import {Digester} from './layer-blob.js'

export interface DockerArchiveImage {
  /** the config for the layer's diffID */
  config(diffID: string): Buffer
  /** mtime of the archive's own entries (seconds) */
  epoch: number
  /** names to give the image, e.g. base/debian:bookworm */
  tags: string[]
}

export interface DockerArchiveResult {
  config: Buffer
  configDigest: string
  diffID: string
}

function entry(pack: tar.Pack, header: {mtime: Date; name: string}, content: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({mode: 0o644, size: content.length, type: 'file', ...header} as tar.Header, content, (error) =>
      error ? reject(error) : resolve(),
    )
  })
}

/**
 * The archive stream and a promise of what went into it. The stream fails with the layer's error; the
 * promise rejects with it too. Given only the layer's diffID, the archive leaves the layer out: a partial
 * archive, for an engine that already holds that layer.
 */
export function dockerArchive(
  layer: {diffID: string} | {size: number; stream: Readable},
  image: DockerArchiveImage,
  signal?: AbortSignal,
): {done: Promise<DockerArchiveResult>; stream: Readable} {
  const pack = tar.pack()
  const mtime = new Date(image.epoch * 1000)
  const done = (async () => {
    let diffID: string
    if ('diffID' in layer) {
      diffID = layer.diffID
    } else {
      const tarDigest = new Digester()
      const sink = pack.entry({mode: 0o644, mtime, name: 'layer.tar', size: layer.size, type: 'file'})
      await pipeline(layer.stream, tarDigest, sink as unknown as NodeJS.WritableStream, {signal})
      diffID = tarDigest.digest()
    }

    const config = image.config(diffID)
    const digest = sha256(config)
    const configName = `${digest.slice('sha256:'.length)}.json`
    await entry(pack, {mtime, name: configName}, config)
    const manifest = [{Config: configName, Layers: ['layer.tar'], RepoTags: image.tags}]
    await entry(pack, {mtime, name: 'manifest.json'}, Buffer.from(JSON.stringify(manifest)))
    pack.finalize()
    return {config, configDigest: digest, diffID}
  })()
  // tar-stream's pack is a streamx stream: hand out a Node stream, which the engine client recognises
  const stream = new PassThrough()
  pipeline(pack as unknown as NodeJS.ReadableStream, stream).catch(() => {
    // the error reaches the reader through `stream`
  })
  done.catch((error: unknown) => {
    pack.destroy(error as Error)
    stream.destroy(error as Error)
  })
  return {done, stream}
}
