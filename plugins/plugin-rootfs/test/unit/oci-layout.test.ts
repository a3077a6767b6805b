import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import zlib from 'node:zlib'
import tar from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {RootfsEntry} from '../../src/source/entry.js'

import {sha256} from '../../../../test/helpers/digests.js'
import {imageConfig} from '../../src/image/config.js'
import {dockerArchive} from '../../src/output/docker-archive.js'
import {DeterministicGzip, Digester, LAYER_MEDIA_TYPES, writeLayerBlob} from '../../src/output/layer-blob.js'
import {type OciImageSpec, writeOciArchive, writeOciLayout} from '../../src/output/oci-layout.js'
import {measureLayer, writeLayer} from '../../src/pack/layer-tar.js'

const EPOCH = 1_700_000_000

let work: string
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'oci-layout-test-'))
})
afterAll(async () => {
  await rm(work, {force: true, recursive: true})
})

/** Half compressible, half noise: enough for several deflate blocks. */
function sample(size: number): Buffer {
  const data = Buffer.alloc(size)
  let state = 12_345
  for (let index = 0; index < size; index++) {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31
    data[index] = index % 2048 < 1024 ? index % 7 : Math.floor(state / 2 ** 23)
  }

  return data
}

function entries(content: string): RootfsEntry[] {
  const common = {gid: 0, mtime: EPOCH, uid: 0, xattrs: new Map<string, Buffer>()}
  const body = Buffer.from(content)
  return [
    {...common, mode: 0o755, path: 'etc', size: 0, type: 'directory'},
    {...common, mode: 0o644, open: () => Readable.from([body]), path: 'etc/motd', size: body.length, type: 'file'},
    {...common, mode: 0o644, open: () => Readable.from([sample(40_000)]), path: 'blob', size: 40_000, type: 'file'},
  ]
}

async function* iterate(items: RootfsEntry[]): AsyncIterable<RootfsEntry> {
  yield* items
}

async function layerTar(content = 'hello\n'): Promise<Buffer> {
  return buffer(writeLayer(iterate(entries(content))))
}

async function gzip(chunks: Buffer[]): Promise<Buffer> {
  return buffer(Readable.from(chunks).pipe(new DeterministicGzip()))
}

function spec(tags: string[], compression: OciImageSpec['compression'] = 'gzip'): OciImageSpec {
  return {
    compression,
    config: (diffID) => imageConfig({architecture: 'amd64', createdBy: 'test', diffIDs: [diffID], epoch: EPOCH}),
    tags,
  }
}

interface Descriptor {
  annotations?: Record<string, string>
  digest: string
  mediaType: string
  size: number
}

interface Manifest {
  config: Descriptor
  layers: Descriptor[]
  mediaType: string
  schemaVersion: number
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T
}

function blobName(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`
}

function blobPath(dir: string, digest: string): string {
  return path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length))
}

/** Every file of a tar, by name. */
async function untar(data: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  const extract = tar.extract()
  const done = (async () => {
    for await (const item of extract) {
      files.set(item.header.name, await buffer(item as unknown as Readable))
    }
  })()
  extract.end(data)
  await done
  return files
}

describe('DeterministicGzip', () => {
  it('gives the same bytes on every run and however the input is cut, with mtime 0', async () => {
    const input = sample(300_000)
    const first = await gzip([input])
    expect((await gzip([input])).equals(first)).toBe(true)
    const pieces = [input.subarray(0, 1), input.subarray(1, 70_001), input.subarray(70_001)]
    expect((await gzip(pieces)).equals(first)).toBe(true)
    expect(zlib.gunzipSync(first).equals(input)).toBe(true)
    expect(first.subarray(0, 3)).toEqual(Buffer.from([0x1f, 0x8b, 0x08]))
    expect(first[3]).toBe(0) // no name, comment or extra field
    expect(first.readUInt32LE(4)).toBe(0) // mtime
    expect(first[9]).toBe(3) // Unix
    expect(first.length).toBeLessThan(input.length)
  })

  it('compresses empty input to a valid gzip', async () => {
    expect(zlib.gunzipSync(await gzip([]))).toEqual(Buffer.alloc(0))
  })
})

describe('Digester', () => {
  it('passes bytes through while counting and hashing them', async () => {
    const digester = new Digester()
    const out = await buffer(Readable.from([Buffer.from('ab'), Buffer.from('c')]).pipe(digester))
    expect(out.toString()).toBe('abc')
    expect(digester.bytes).toBe(3)
    expect(digester.digest()).toBe(sha256(Buffer.from('abc')))
  })
})

describe('writeLayerBlob', () => {
  it('removes the temporary file when the layer fails', async () => {
    const dir = await mkdtemp(path.join(work, 'blob-fail-'))
    const broken = entries('x')
    broken[1] = {...broken[1]!, size: 5}
    await expect(writeLayerBlob(writeLayer(iterate(broken)), dir, 'gzip')).rejects.toMatchObject({
      code: 'ROOTFS_CHANGED',
    })
    expect(await readdir(dir)).toEqual([])
  })
})

describe('writeOciLayout', () => {
  it('writes a layout whose blobs match their digests, with the tags in index.json', async () => {
    const dir = path.join(work, 'layout')
    const tarBytes = await layerTar()
    const result = await writeOciLayout(dir, Readable.from([tarBytes]), spec(['base/debian:bookworm']))
    expect(await readJson(path.join(dir, 'oci-layout'))).toEqual({imageLayoutVersion: '1.0.0'})
    const index = await readJson<{manifests: Descriptor[]; mediaType: string; schemaVersion: number}>(
      path.join(dir, 'index.json'),
    )
    expect(index).toMatchObject({mediaType: 'application/vnd.oci.image.index.v1+json', schemaVersion: 2})
    expect(index.manifests).toEqual([
      {
        annotations: {
          'io.containerd.image.name': 'docker.io/base/debian:bookworm',
          'org.opencontainers.image.ref.name': 'bookworm',
        },
        digest: result.manifestDigest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: (await readFile(blobPath(dir, result.manifestDigest))).length,
      },
    ])

    const blobs = await readdir(path.join(dir, 'blobs', 'sha256'))
    expect(blobs).toHaveLength(3)
    for (const name of blobs) {
      expect(sha256(await readFile(path.join(dir, 'blobs', 'sha256', name)))).toBe(`sha256:${name}`)
    }

    const manifest = await readJson<Manifest>(blobPath(dir, result.manifestDigest))
    const config = await readFile(blobPath(dir, manifest.config.digest))
    const layer = await readFile(blobPath(dir, manifest.layers[0]!.digest))
    expect(manifest).toMatchObject({
      config: {digest: result.configDigest, size: config.length},
      layers: [{digest: result.layer.digest, mediaType: LAYER_MEDIA_TYPES.gzip, size: layer.length}],
      schemaVersion: 2,
    })
    expect(manifest.layers).toHaveLength(1)
    expect(config.equals(result.config)).toBe(true)
    expect(zlib.gunzipSync(layer).equals(tarBytes)).toBe(true)
    expect(result.layer).toEqual({
      diffID: sha256(tarBytes),
      digest: sha256(layer),
      mediaType: LAYER_MEDIA_TYPES.gzip,
      size: layer.length,
      tarSize: tarBytes.length,
    })
    const parsedConfig = JSON.parse(config.toString()) as {rootfs: {diff_ids: string[]}}
    expect(parsedConfig.rootfs.diff_ids).toEqual([sha256(tarBytes)])
  })

  it('keeps the other images of an existing layout and replaces a tag written again', async () => {
    const dir = path.join(work, 'two-tags')
    const first = await writeOciLayout(dir, Readable.from([await layerTar('one')]), spec(['app:1']))
    const second = await writeOciLayout(dir, Readable.from([await layerTar('two')]), spec(['app:2', 'app']))
    expect(second.manifestDigest).not.toBe(first.manifestDigest)
    const names = async () => {
      const index = await readJson<{manifests: Descriptor[]}>(path.join(dir, 'index.json'))
      return index.manifests.map((item) => [item.annotations?.['io.containerd.image.name'], item.digest])
    }

    expect(await names()).toEqual([
      ['docker.io/library/app:1', first.manifestDigest],
      ['docker.io/library/app:2', second.manifestDigest],
      ['docker.io/library/app:latest', second.manifestDigest],
    ])
    const third = await writeOciLayout(dir, Readable.from([await layerTar('three')]), spec(['app:1']))
    expect(await names()).toEqual([
      ['docker.io/library/app:2', second.manifestDigest],
      ['docker.io/library/app:latest', second.manifestDigest],
      ['docker.io/library/app:1', third.manifestDigest],
    ])
    expect((await readdir(dir)).sort()).toEqual(['blobs', 'index.json', 'oci-layout'])
  })

  it('writes the same layout twice for the same layer', async () => {
    const a = await writeOciLayout(path.join(work, 'same-a'), Readable.from([await layerTar()]), spec(['x:1']))
    const b = await writeOciLayout(path.join(work, 'same-b'), Readable.from([await layerTar()]), spec(['x:1']))
    expect(b).toEqual(a)
  })

  it('writes an uncompressed layer whose digest is its diffID', async () => {
    const dir = path.join(work, 'uncompressed')
    const tarBytes = await layerTar()
    const result = await writeOciLayout(dir, Readable.from([tarBytes]), spec(['plain:1'], 'none'))
    expect(result.layer).toEqual({
      diffID: sha256(tarBytes),
      digest: sha256(tarBytes),
      mediaType: LAYER_MEDIA_TYPES.none,
      size: tarBytes.length,
      tarSize: tarBytes.length,
    })
    expect((await readFile(blobPath(dir, result.layer.digest))).equals(tarBytes)).toBe(true)
    const manifest = await readJson<Manifest>(blobPath(dir, result.manifestDigest))
    expect(manifest.layers[0]).toMatchObject({mediaType: LAYER_MEDIA_TYPES.none, size: tarBytes.length})
  })
})

describe('writeOciArchive', () => {
  it('writes the layout as a tar and leaves nothing beside it', async () => {
    const dir = await mkdtemp(path.join(work, 'archive-'))
    const file = path.join(dir, 'image.tar')
    const tarBytes = await layerTar()
    const result = await writeOciArchive(file, Readable.from([tarBytes]), {...spec(['app:1']), epoch: EPOCH})
    expect(await readdir(dir)).toEqual(['image.tar'])
    const files = await untar(await readFile(file))
    expect(files.get(blobName(result.configDigest))).toEqual(result.config)
    expect(zlib.gunzipSync(files.get(blobName(result.layer.digest))!).equals(tarBytes)).toBe(true)
    const manifest = JSON.parse(files.get(blobName(result.manifestDigest))!.toString()) as Manifest
    expect(manifest.layers[0]).toMatchObject({digest: result.layer.digest, size: result.layer.size})
    const index = JSON.parse(files.get('index.json')!.toString()) as {manifests: Descriptor[]}
    expect(index.manifests[0]).toMatchObject({
      annotations: {'org.opencontainers.image.ref.name': '1'},
      digest: result.manifestDigest,
    })
    expect(files.has('oci-layout')).toBe(true)
  })
})

describe('dockerArchive', () => {
  it('streams a tar with layer.tar, the config and manifest.json', async () => {
    const layer = iterate(entries('docker\n'))
    const {size} = await measureLayer(iterate(entries('docker\n')))
    const tarBytes = await layerTar('docker\n')
    const {done, stream} = dockerArchive(
      {size, stream: writeLayer(layer)},
      {...spec(['base/debian:bookworm', 'base/debian:latest']), epoch: EPOCH},
    )
    const [archive, result] = await Promise.all([buffer(stream), done])
    const files = await untar(archive)
    const configName = `${result.configDigest.slice('sha256:'.length)}.json`
    expect([...files.keys()]).toEqual(['layer.tar', configName, 'manifest.json'])
    expect(files.get('layer.tar')!.equals(tarBytes)).toBe(true)
    expect(result.diffID).toBe(sha256(tarBytes))
    expect(files.get(configName)).toEqual(result.config)
    expect(sha256(result.config)).toBe(result.configDigest)
    expect(JSON.parse(files.get('manifest.json')!.toString())).toEqual([
      {Config: configName, Layers: ['layer.tar'], RepoTags: ['base/debian:bookworm', 'base/debian:latest']},
    ])
    const config = JSON.parse(result.config.toString()) as {rootfs: {diff_ids: string[]}}
    expect(config.rootfs.diff_ids).toEqual([result.diffID])
  })

  it('fails the stream and the result with the layer error', async () => {
    const broken = entries('x')
    broken[1] = {...broken[1]!, size: 5}
    const {size} = await measureLayer(iterate(broken))
    const {done, stream} = dockerArchive({size, stream: writeLayer(iterate(broken))}, {...spec([]), epoch: EPOCH})
    await expect(done).rejects.toMatchObject({code: 'ROOTFS_CHANGED'})
    await expect(buffer(stream)).rejects.toMatchObject({code: 'ROOTFS_CHANGED'})
  })
})
