import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {configFor, json, makeTar, readAll} from '../../../../../test/helpers/archive-fixtures.js'
import {sha256} from '../../../../../test/helpers/digests.js'
import {openImage, resolveImageSource} from '../../../src/archive/index.js'
import {
  blobName,
  type Descriptor,
  IMAGE_NAME_ANNOTATION,
  isNamed,
  MEDIA_TYPES,
  METADATA_LIMIT,
  nameAnnotations,
  OciLayout,
  REF_NAME_ANNOTATION,
} from '../../../src/oci/index.js'

let work: string
beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'transship-oci-layout-'))
})
afterEach(async () => {
  await rm(work, {force: true, recursive: true})
})

async function failure(promise: Promise<unknown>): Promise<Error & {code?: string}> {
  try {
    await promise
  } catch (error) {
    return error as Error & {code?: string}
  }

  throw new Error('expected a failure')
}

/** An image (one layer holding `files`) written into `layout` and named `names`; its manifest's descriptor. */
async function addImage(layout: OciLayout, files: Record<string, string>, names: string[]): Promise<Descriptor> {
  const layer = await makeTar(Object.entries(files).map(([name, content]) => ({content, name})))
  const diffID = sha256(layer)
  const config = configFor([diffID])
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: {digest: sha256(config), mediaType: MEDIA_TYPES.ociConfig, size: config.length},
    layers: [{digest: diffID, mediaType: MEDIA_TYPES.ociLayer, size: layer.length}],
  })
  // the layer as a stream, the rest as bytes: both are checked against their digests
  await layout.writeBlob(diffID, Readable.from([layer.subarray(0, 100), layer.subarray(100)]))
  await layout.writeBlob(sha256(config), config)
  await layout.writeBlob(sha256(manifest), manifest)
  const descriptor = {digest: sha256(manifest), mediaType: MEDIA_TYPES.ociManifest, size: manifest.length}
  await layout.addToIndex(names.map((name) => ({...descriptor, annotations: nameAnnotations(name)})))
  return descriptor
}

describe('OciLayout writer', () => {
  it('writes blobs, oci-layout and an index that names each image by full name and tag', async () => {
    const dir = path.join(work, 'new', 'layout')
    const layout = new OciLayout(dir)
    const descriptor = await addImage(layout, {'etc/hello': 'hi\n'}, ['app:1', 'localhost:5000/team/app:2'])
    expect(JSON.parse(await readFile(path.join(dir, 'oci-layout'), 'utf8'))).toEqual({imageLayoutVersion: '1.0.0'})
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as {manifests: Descriptor[]}
    expect(index).toMatchObject({mediaType: MEDIA_TYPES.ociIndex, schemaVersion: 2})
    expect(index.manifests).toEqual([
      {...descriptor, annotations: {[IMAGE_NAME_ANNOTATION]: 'docker.io/library/app:1', [REF_NAME_ANNOTATION]: '1'}},
      {
        ...descriptor,
        annotations: {[IMAGE_NAME_ANNOTATION]: 'localhost:5000/team/app:2', [REF_NAME_ANNOTATION]: '2'},
      },
    ])
    // no temporary file is left behind
    expect((await readdir(dir)).sort()).toEqual(['blobs', 'index.json', 'oci-layout'])
    expect((await readdir(path.join(dir, 'blobs', 'sha256'))).every((name) => /^[\da-f]{64}$/.test(name))).toBe(true)
  })

  it('replaces the entry of the same name and keeps the others', async () => {
    const layout = new OciLayout(work)
    const first = await addImage(layout, {a: '1'}, ['app:1', 'app:2'])
    const second = await addImage(layout, {a: '2'}, ['app:2'])
    const index = await layout.index()
    expect(index?.manifests?.map((item) => [item.digest, item.annotations?.[REF_NAME_ANNOTATION]])).toEqual([
      [first.digest, '1'],
      [second.digest, '2'],
    ])
  })

  it('refuses a blob whose content has another digest, and leaves nothing behind', async () => {
    const layout = new OciLayout(work)
    const claimed = sha256(Buffer.from('something else'))
    const streamed = await failure(layout.writeBlob(claimed, Readable.from([Buffer.from('content')])))
    expect(streamed).toMatchObject({code: 'ARCHIVE_CORRUPT'})
    expect(streamed.message).toContain(claimed)
    await expect(layout.writeBlob(claimed, Buffer.from('content'))).rejects.toThrow(/another digest/)
    expect(await readdir(layout.blobsDir)).toEqual([])
    expect(await layout.hasBlob(claimed)).toBe(false)
  })

  it('keeps a blob that is already there', async () => {
    const layout = new OciLayout(work)
    const bytes = Buffer.from('once')
    expect(await layout.writeBlob(sha256(bytes), bytes)).toBe(true)
    expect(await layout.writeBlob(sha256(bytes), bytes)).toBe(false)
    expect(await layout.hasBlob(sha256(bytes), bytes.length)).toBe(true)
    expect(await layout.hasBlob(sha256(bytes), bytes.length + 1)).toBe(false)
  })
})

describe('OciLayout reader', () => {
  it('says there is no index in a missing or empty directory, or a file', async () => {
    expect(await new OciLayout(path.join(work, 'missing')).index()).toBeUndefined()
    expect(await new OciLayout(work).index()).toBeUndefined()
    await writeFile(path.join(work, 'file'), 'x')
    expect(await new OciLayout(path.join(work, 'file')).index()).toBeUndefined()
  })

  it('refuses an index that is not a JSON object, naming the layout', async () => {
    for (const content of ['{"manifests": [', '[]', '3']) {
      await writeFile(path.join(work, 'index.json'), content)
      const error = await failure(new OciLayout(work, {source: 'oci:here'}).index())
      expect(error, content).toMatchObject({code: 'ARCHIVE_CORRUPT'})
      expect(error.message).toMatch(
        /^oci:here is not a valid OCI image layout: index\.json is not (valid JSON|a JSON object)$/,
      )
    }
  })

  it('checks every blob it reads against its digest', async () => {
    const layout = new OciLayout(work)
    const bytes = Buffer.from('{"config": {}}')
    await layout.writeBlob(sha256(bytes), bytes)
    expect(await layout.readBlob(sha256(bytes))).toEqual(bytes)
    expect(await readAll(layout.openBlob(sha256(bytes), 2))).toEqual(bytes.subarray(2))

    await writeFile(path.join(work, blobName(sha256(bytes))), 'tampered')
    expect((await failure(layout.readBlob(sha256(bytes), 'the config'))).message).toContain('does not hash to its name')
    const missing = sha256(Buffer.from('missing'))
    expect((await failure(layout.readBlob(missing, 'the config'))).message).toContain(
      `the config is ${missing}, but there is no ${blobName(missing)}`,
    )
    for (const digest of ['sha256:abc', 'md5:00', '../../etc/passwd', 42]) {
      const error = await failure(layout.readBlob(digest, 'a manifest'))
      expect(error, String(digest)).toMatchObject({code: 'ARCHIVE_CORRUPT'})
      expect(error.message).toContain('a manifest has no valid sha256 digest')
    }
  })

  it('refuses a blob larger than asked, before reading it', async () => {
    const layout = new OciLayout(work)
    const bytes = Buffer.alloc(2048, 1)
    await layout.writeBlob(sha256(bytes), bytes)
    expect((await failure(layout.readBlob(sha256(bytes), 'a blob', {limit: 1024}))).message).toContain(
      'is larger than 1024 bytes',
    )
  })

  it('reads no metadata blob larger than an archive’s metadata may be, whatever its size', async () => {
    const layout = new OciLayout(work)
    const bytes = Buffer.alloc(METADATA_LIMIT + 1, 0x20)
    await layout.writeBlob(sha256(bytes), bytes)
    const error = await failure(layout.readManifest(sha256(bytes)))
    expect(error).toMatchObject({code: 'ARCHIVE_UNSUPPORTED'})
    expect(error.message).toContain(`is larger than ${METADATA_LIMIT} bytes`)
  })

  it('follows nested indexes to the image manifests, skipping platforms left out', async () => {
    const layout = new OciLayout(work)
    const amd64 = await addImage(layout, {arch: 'amd64'}, [])
    const absent = sha256(Buffer.from('an arm64 manifest that was not pulled'))
    const list = json({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [
        {...amd64, platform: {architecture: 'amd64', os: 'linux'}},
        {digest: absent, mediaType: MEDIA_TYPES.ociManifest, platform: {architecture: 'arm64', os: 'linux'}, size: 9},
      ],
    })
    await layout.writeBlob(sha256(list), list)
    const top = {
      annotations: nameAnnotations('multi:1'),
      digest: sha256(list),
      mediaType: MEDIA_TYPES.ociIndex,
      size: list.length,
    }
    const images = await layout.images([top])
    expect(images.map((image) => image.descriptor.digest)).toEqual([amd64.digest])
    expect(images[0]!.chain.map((item) => item.digest)).toEqual([top.digest, amd64.digest])
    expect(images[0]!.manifest.layers).toHaveLength(1)

    // a top-level entry whose manifest is missing is an error, not an empty layout
    expect((await failure(layout.images([{...top, digest: absent}]))).message).toContain(
      `is ${absent}, but there is no`,
    )
  })

  it('refuses indexes nested without end', async () => {
    const layout = new OciLayout(work)
    // an index whose only child is itself cannot be written (its digest would change): a chain does as well
    let child: Descriptor | undefined
    for (let depth = 0; depth < 12; depth++) {
      const bytes = json({schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: child ? [child] : []})
      await layout.writeBlob(sha256(bytes), bytes)
      child = {digest: sha256(bytes), mediaType: MEDIA_TYPES.ociIndex, size: bytes.length}
    }

    expect((await failure(layout.images([child!]))).message).toContain('indexes nested too deeply')
  })
})

describe('isNamed', () => {
  it('matches the ref name, or the full name in any spelling', () => {
    const descriptor = {annotations: nameAnnotations('base/debian:bookworm')}
    expect(isNamed(descriptor, 'bookworm')).toBe(true)
    expect(isNamed(descriptor, 'base/debian:bookworm')).toBe(true)
    expect(isNamed(descriptor, 'docker.io/base/debian:bookworm')).toBe(true)
    expect(isNamed(descriptor, 'debian:bookworm')).toBe(false)
    expect(isNamed(descriptor, '12')).toBe(false)
    expect(isNamed({}, 'bookworm')).toBe(false)
  })

  it('names an image by another ref name when asked (skopeo oci:DIR:REF)', () => {
    expect(nameAnnotations('app:1', 'stable')).toEqual({
      [IMAGE_NAME_ANNOTATION]: 'docker.io/library/app:1',
      [REF_NAME_ANNOTATION]: 'stable',
    })
    expect(nameAnnotations('app@sha256:' + '0'.repeat(64))).toEqual({
      [IMAGE_NAME_ANNOTATION]: 'docker.io/library/app@sha256:' + '0'.repeat(64),
    })
  })
})

describe('a layout written here, read by the image reader', () => {
  it('gives the files of the image a ref name selects', async () => {
    const dir = path.join(work, 'layout')
    const layout = new OciLayout(dir)
    await addImage(layout, {'etc/os': 'one\n'}, ['base:one'])
    await addImage(layout, {'etc/os': 'two\n'}, ['base:two'])
    await mkdir(path.join(work, 'cwd'))
    const source = await resolveImageSource(`oci:${dir}:two`)
    expect(source).toEqual({dir, input: `oci:${dir}:two`, kind: 'oci', ref: 'two'})
    const files = await (await openImage(source)).files({contents: new Set(['etc/os'])})
    expect(files.get('etc/os')?.content?.toString()).toBe('two\n')

    const both = await failure(openImage(await resolveImageSource(`oci:${dir}`)))
    expect(both.message).toContain('the layout holds 2 images')
    const byFullName = await openImage(await resolveImageSource(`oci:${dir}:docker.io/library/base:one`))
    expect(byFullName.summary.names).toEqual(['docker.io/library/base:one'])
  })
})
