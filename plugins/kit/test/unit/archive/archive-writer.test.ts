import {createHash} from 'node:crypto'
import {Readable, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import zlib from 'node:zlib'
import {describe, expect, it} from 'vitest'

import {configFor, layerBytes, readAll} from '../../../../../test/helpers/archive-fixtures.js'
import {hex, sha256} from '../../../../../test/helpers/digests.js'
import {
  archiveEntries,
  ArchiveError,
  type ArchiveFormat,
  ImageArchiveWriter,
  indexArchive,
  ociManifest,
  type OutputImage,
} from '../../../src/archive/index.js'

const base = layerBytes('base', 4096)
const top = layerBytes('top', 2048)
const raw = layerBytes('gzip me', 3000)
const gz = zlib.gzipSync(raw)

const TAR = 'application/vnd.docker.image.rootfs.diff.tar'
const layer = (bytes: Buffer) => ({diffID: sha256(bytes), digest: sha256(bytes), mediaType: TAR, size: bytes.length})
const gzLayer = {
  diffID: sha256(raw),
  digest: sha256(gz),
  mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  size: gz.length,
}

function image(tags: string[], layers: OutputImage['layers'], extra: Record<string, unknown> = {}): OutputImage {
  const config = configFor(
    layers.map((item) => item.diffID),
    extra,
  )
  return {config, configDigest: sha256(config), layers, tags}
}

const app = image(['app:1', 'corp.example/team/app:1'], [layer(base), layer(top)])
const tool = image(['tool:2'], [layer(base), gzLayer], {created: 'tool'})
const bodies = new Map([
  [sha256(base), base],
  [sha256(gz), gz],
  [sha256(top), top],
])

/** Writes the archive (leaving out the layers in `skip`) and returns its bytes. */
async function write(format: ArchiveFormat, images: OutputImage[], skip: string[] = []): Promise<Buffer> {
  const writer = new ImageArchiveWriter(format, images)
  const out = readAll(writer.stream)
  const written = new Set<string>()
  for (const item of images.flatMap((each) => each.layers)) {
    if (skip.includes(item.digest) || written.has(item.digest)) continue
    written.add(item.digest)
    await writer.writeLayer(item, Readable.from([bodies.get(item.digest)!]))
  }

  await writer.finish()
  return out
}

async function entryNames(archive: Buffer): Promise<string[]> {
  const names: string[] = []
  for await (const {header} of archiveEntries(Readable.from([archive]))) names.push(header.name)
  return names
}

describe('ImageArchiveWriter', () => {
  for (const format of ['docker', 'docker+oci', 'oci'] as const) {
    it(`writes a ${format} archive that indexArchive reads back`, async () => {
      const archive = await write(format, [app, tool])
      const index = await indexArchive(Readable.from([archive]))
      expect(index.format).toBe(format)
      expect(index.images.map((each) => each.repoTags)).toEqual([app.tags, tool.tags])
      expect(index.images.map((each) => each.configDigest)).toEqual([app.configDigest, tool.configDigest])
      expect(index.images.map((each) => each.config)).toEqual([app.config, tool.config])
      for (const [position, source] of [app, tool].entries()) {
        const read = index.images[position]!
        expect(read.layers.map(({diffID, digest, size}) => ({diffID, digest, size}))).toEqual(
          source.layers.map(({diffID, digest, size}) => ({diffID, digest, size})),
        )
        if (format === 'docker') expect(read.manifestDigest).toBeUndefined()
        else expect(read.manifestDigest).toBe(sha256(ociManifest(source)))
      }

      const names = await entryNames(archive)
      const layerNames =
        format === 'docker'
          ? [`${hex(sha256(base))}/layer.tar`, `${hex(sha256(top))}/layer.tar`, `${hex(sha256(raw))}/layer.tar`]
          : [`blobs/sha256/${hex(sha256(base))}`, `blobs/sha256/${hex(sha256(top))}`, `blobs/sha256/${hex(sha256(gz))}`]
      // each layer once, although two images share one
      expect(names.filter((name) => layerNames.includes(name))).toEqual(layerNames)
      expect(names.includes('manifest.json')).toBe(format !== 'oci')
      expect(names.includes('index.json')).toBe(format !== 'docker')
      expect(names.includes('oci-layout')).toBe(format !== 'docker')
    })
  }

  it('maps Docker media types to OCI ones in OCI manifests', () => {
    const manifest = JSON.parse(ociManifest(tool).toString()) as {
      config: {mediaType: string}
      layers: Array<{mediaType: string}>
      mediaType: string
    }
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
    expect(manifest.config.mediaType).toBe('application/vnd.oci.image.config.v1+json')
    expect(manifest.layers.map((item) => item.mediaType)).toEqual([
      'application/vnd.oci.image.layer.v1.tar',
      'application/vnd.oci.image.layer.v1.tar+gzip',
    ])
  })

  it('names images in index.json as Docker and containerd do', async () => {
    const archive = await write('oci', [app])
    let indexJson: unknown
    for await (const {header, stream} of archiveEntries(Readable.from([archive]))) {
      if (header.name === 'index.json') indexJson = JSON.parse((await readAll(stream)).toString())
    }

    expect(indexJson).toEqual({
      manifests: [
        {
          annotations: {
            'io.containerd.image.name': 'docker.io/library/app:1',
            'org.opencontainers.image.ref.name': '1',
          },
          digest: sha256(ociManifest(app)),
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          size: ociManifest(app).length,
        },
        {
          annotations: {
            'io.containerd.image.name': 'corp.example/team/app:1',
            'org.opencontainers.image.ref.name': '1',
          },
          digest: sha256(ociManifest(app)),
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          size: ociManifest(app).length,
        },
      ],
      mediaType: 'application/vnd.oci.image.index.v1+json',
      schemaVersion: 2,
    })
  })

  for (const format of ['docker', 'docker+oci', 'oci'] as const) {
    it(`writes a partial ${format} archive: layers never written are listed but left out`, async () => {
      const archive = await write(format, [app], [sha256(base)])
      const names = await entryNames(archive)
      expect(names.some((name) => name.includes(hex(sha256(base))))).toBe(false)
      await expect(indexArchive(Readable.from([archive]))).rejects.toMatchObject({code: 'ARCHIVE_CORRUPT'})
      const index = await indexArchive(Readable.from([archive]), {partial: true})
      expect(index.images[0]!.layers.map((item) => [item.diffID, Boolean(item.missing)])).toEqual([
        [sha256(base), true],
        [sha256(top), false],
      ])
    })
  }

  it('refuses a body that is not the layer (digest or size), and fails the whole archive', async () => {
    const writer = new ImageArchiveWriter('oci', [app])
    const out = readAll(writer.stream)
    const wrong = Buffer.from(base)
    wrong[100] = 0x21
    const error = await writer
      .writeLayer(layer(base), Readable.from([wrong]))
      .then(() => {})
      .catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(ArchiveError)
    expect((error as ArchiveError).message).toContain(
      `layer ${sha256(base)} has content that hashes to ${sha256(wrong)}`,
    )
    await expect(out).rejects.toBe(error)

    const short = new ImageArchiveWriter('docker', [app])
    const shortOut = readAll(short.stream).catch((error_: unknown) => error_)
    await expect(short.writeLayer(layer(top), Readable.from([top.subarray(0, 100)]))).rejects.toThrow(
      'has 100 bytes, not the 2048 its manifest says',
    )
    expect(await shortOut).toBeInstanceOf(ArchiveError)
  })

  it('refuses a layer of no image, and a size that differs from the image', async () => {
    const writer = new ImageArchiveWriter('docker', [app])
    await expect(writer.writeLayer(layer(raw), Readable.from([raw]))).rejects.toThrow('belongs to none')
    await expect(writer.writeLayer({digest: sha256(base), size: 1}, Readable.from([base]))).rejects.toThrow(
      'has 4096 bytes in the image, not 1',
    )
    writer.abort(new Error('done'))
  })

  it('abort() fails the output stream with the error', async () => {
    const writer = new ImageArchiveWriter('docker', [app])
    const out = readAll(writer.stream)
    const reason = new Error('stop')
    writer.abort(reason)
    await expect(out).rejects.toBe(reason)
  })

  it('keeps backpressure: a slow consumer holds the producer to a few MiB ahead', async () => {
    const chunk = 64 * 1024
    const chunks = 512 // 32 MiB
    const piece = (i: number) => Buffer.alloc(chunk, i % 251)
    const hash = createHash('sha256')
    for (let i = 0; i < chunks; i++) hash.update(piece(i))
    const big = {diffID: `sha256:${hash.digest('hex')}`, mediaType: TAR, size: chunk * chunks}
    const bigImage = image(['big:1'], [{...big, digest: big.diffID}])
    let produced = 0
    let consumed = 0
    let maxAhead = 0
    let next = 0
    const body = new Readable({
      read() {
        if (next === chunks) {
          this.push(null)
          return
        }

        produced += chunk
        this.push(piece(next++))
      },
    })
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(data: Buffer, _encoding, callback) {
        consumed += data.length
        maxAhead = Math.max(maxAhead, produced - consumed)
        setImmediate(callback)
      },
    })
    const writer = new ImageArchiveWriter('docker', [bigImage])
    const consuming = pipeline(writer.stream, slow)
    await writer.writeLayer({digest: big.diffID, size: big.size}, body)
    await writer.finish()
    await consuming
    expect(consumed).toBeGreaterThan(big.size)
    expect(maxAhead).toBeLessThan(4 * 1024 * 1024)
  })
})
