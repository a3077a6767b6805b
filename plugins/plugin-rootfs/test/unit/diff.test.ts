import type {IncomingMessage} from 'node:http'

import {type EngineClient, EngineError, isTransshipError} from '@transship/kit'
import {ImageArchiveWriter, type OutputImage} from '@transship/kit/archive'
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import zlib from 'node:zlib'
import tar from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {sha256} from '../../../../test/helpers/digests.js'
import {failure} from '../../../../test/helpers/failure.js'
import {
  buildReport,
  compareConfigs,
  compareFiles,
  type FileInfo,
  formatReport,
  type ImageSummary,
} from '../../src/diff/compare.js'
import {
  applyLayer,
  diffImages,
  type ImageSource,
  type LayerEntry,
  normalizePath,
  readLayer,
  resolveImageSource,
} from '../../src/diff/image-files.js'

const MTIME = 1_700_000_000
const TAR = 'application/vnd.docker.image.rootfs.diff.tar'
const TAR_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'

interface PackEntry extends Partial<tar.Header> {
  content?: string
  name: string
}

/** A layer tar of `entries` (files by default, mtime MTIME, mode 0644 / 0755 for directories). */
async function layerTar(entries: PackEntry[]): Promise<Buffer> {
  const pack = tar.pack()
  const done = buffer(pack as unknown as Readable)
  for (const {content, ...header} of entries) {
    const type = header.type ?? 'file'
    await new Promise<void>((resolve, reject) => {
      const full = {
        mode: type === 'directory' ? 0o755 : 0o644,
        mtime: new Date(MTIME * 1000),
        ...header,
        type,
      }
      const callback = (error?: Error | null) => (error ? reject(error) : resolve())
      if (type === 'file') pack.entry(full, content ?? '', callback)
      else pack.entry(full, callback)
    })
  }

  pack.finalize()
  return done
}

interface Layer {
  /** the blob as stored */
  blob: Buffer
  diffID: string
  mediaType: string
}

function plainLayer(tarBytes: Buffer): Layer {
  return {blob: tarBytes, diffID: sha256(tarBytes), mediaType: TAR}
}

function gzipLayer(tarBytes: Buffer): Layer {
  return {blob: zlib.gzipSync(tarBytes), diffID: sha256(tarBytes), mediaType: TAR_GZIP}
}

function configOf(layers: Layer[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      config: {Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin']},
      created: '2024-01-01T00:00:00Z',
      // eslint-disable-next-line camelcase
      history: layers.map((_, position) => ({created: '2024-01-01T00:00:00Z', created_by: `step ${position}`})),
      os: 'linux',
      // eslint-disable-next-line camelcase
      rootfs: {diff_ids: layers.map((layer) => layer.diffID), type: 'layers'},
      ...extra,
    }),
  )
}

async function dockerArchive(file: string, layers: Layer[], extra: Record<string, unknown> = {}, tags = ['app:1']) {
  const config = configOf(layers, extra)
  const image: OutputImage = {
    config,
    configDigest: sha256(config),
    layers: layers.map((layer) => ({
      diffID: layer.diffID,
      digest: sha256(layer.blob),
      mediaType: layer.mediaType,
      size: layer.blob.length,
    })),
    tags,
  }
  const writer = new ImageArchiveWriter('docker', [image])
  const out = buffer(writer.stream)
  const written = new Set<string>()
  for (const [position, layer] of layers.entries()) {
    if (written.has(layer.diffID)) continue
    written.add(layer.diffID)
    await writer.writeLayer(image.layers[position]!, Readable.from([layer.blob]))
  }

  await writer.finish()
  await writeFile(file, await out)
  return file
}

/** An OCI image layout directory with one image per entry of `images`, named by its ref. */
async function ociLayout(dir: string, images: Array<{extra?: Record<string, unknown>; layers: Layer[]; ref: string}>) {
  await mkdir(path.join(dir, 'blobs/sha256'), {recursive: true})
  const put = async (bytes: Buffer) => {
    const digest = sha256(bytes)
    await writeFile(path.join(dir, 'blobs/sha256', digest.slice(7)), bytes)
    return {digest, size: bytes.length}
  }

  const manifests = []
  for (const {extra, layers, ref} of images) {
    const config = configOf(layers, extra)
    const manifest = Buffer.from(
      JSON.stringify({
        config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(config))},
        layers: await Promise.all(
          layers.map(async (layer) => ({
            mediaType:
              layer.mediaType === TAR
                ? 'application/vnd.oci.image.layer.v1.tar'
                : 'application/vnd.oci.image.layer.v1.tar+gzip',
            ...(await put(layer.blob)),
          })),
        ),
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        schemaVersion: 2,
      }),
    )
    manifests.push({
      annotations: {'org.opencontainers.image.ref.name': ref},
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...(await put(manifest)),
    })
  }

  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({manifests, schemaVersion: 2}))
  return dir
}

const base: PackEntry[] = [
  {name: 'etc/', type: 'directory'},
  {content: 'same\n', name: 'etc/same'},
  {content: 'root:x:0:0\n', name: 'etc/passwd'},
]

/** A's top layer; B's differs in one attribute per path, and has no etc/only-a. */
const topA: PackEntry[] = [
  {content: 'hello\n', name: 'etc/content'},
  {content: 'x', mode: 0o644, name: 'etc/mode'},
  {content: 'x', mtime: new Date(MTIME * 1000), name: 'etc/mtime'},
  {content: 'x', name: 'etc/xattr', pax: {'SCHILY.xattr.user.x': 'one'}},
  {linkname: '../usr/lib/one', name: 'etc/link', type: 'symlink'},
  {content: 'gone', name: 'etc/only-a'},
]
const topB: PackEntry[] = [
  {content: 'hallo\n', name: 'etc/content'},
  {content: 'x', mode: 0o600, name: 'etc/mode'},
  {content: 'x', mtime: new Date((MTIME + 60) * 1000), name: 'etc/mtime'},
  {content: 'x', name: 'etc/xattr', pax: {'SCHILY.xattr.user.x': 'two'}},
  {linkname: '../usr/lib/two', name: 'etc/link', type: 'symlink'},
]

let work: string
let baseLayer: Layer
let layerA: Layer
let layerB: Layer
let archiveA: string
let archiveB: string

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'rootfs-diff-test-'))
  baseLayer = plainLayer(await layerTar(base))
  layerA = plainLayer(await layerTar(topA))
  layerB = gzipLayer(await layerTar(topB))
  archiveA = await dockerArchive(path.join(work, 'a.tar'), [baseLayer, layerA])
  archiveB = await dockerArchive(path.join(work, 'b.tar'), [baseLayer, layerB], {created: '2024-02-02T00:00:00Z'})
})
afterAll(async () => {
  await rm(work, {force: true, recursive: true})
})

async function source(input: string): Promise<ImageSource> {
  return resolveImageSource(input)
}

/** The error `promise` rejects with. */
function changedAttributes(report: Awaited<ReturnType<typeof diffImages>>) {
  return report.files.map((difference) =>
    difference.kind === 'changed'
      ? [difference.path, difference.changes.map((change) => change.attribute)]
      : [difference.path, difference.kind],
  )
}

const EXPECTED = [
  ['etc/content', ['sha256']],
  ['etc/link', ['linkname']],
  ['etc/mode', ['mode']],
  ['etc/mtime', ['mtime']],
  ['etc/only-a', 'only-in-a'],
  ['etc/xattr', ['xattrs']],
]

describe('diffImages', () => {
  it('names exactly the paths and attributes that differ between two docker-archives', async () => {
    const report = await diffImages(await source(archiveA), await source(`docker-archive:${archiveB}`), {limit: 20})
    expect(report.identical).toBe(false)
    expect(report.filesCompared).toBe(true)
    expect(changedAttributes(report)).toEqual(EXPECTED)
    expect(report.counts).toEqual({changed: 5, config: 2, onlyInA: 1, onlyInB: 0, total: 6})
    expect(report.config.map((difference) => difference.key)).toEqual(['created', 'rootfs.diff_ids'])
    expect(report.config.find((difference) => difference.key === 'rootfs.diff_ids')?.index).toBe(1)
    const link = report.files.find((difference) => difference.path === 'etc/link')
    expect(link).toEqual({
      changes: [{a: '../usr/lib/one', attribute: 'linkname', b: '../usr/lib/two'}],
      kind: 'changed',
      path: 'etc/link',
    })
    const xattr = report.files.find((difference) => difference.path === 'etc/xattr')
    expect(xattr).toMatchObject({changes: [{a: {'user.x': 'one'}, b: {'user.x': 'two'}}]})
    const mtime = report.files.find((difference) => difference.path === 'etc/mtime')
    expect(mtime).toMatchObject({changes: [{a: MTIME, b: MTIME + 60}]})
    expect(report.a.files).toBe(9)
    expect(report.b.files).toBe(8)

    const text = formatReport(report)
    expect(text).toContain('only in A  etc/only-a')
    expect(text).toContain('mode: 0644 → 0600')
    expect(text).toContain('xattrs: {user.x="one"} → {user.x="two"}')
    expect(text).toContain('files: 6 differences (1 only in A, 0 only in B, 5 changed):')
  })

  it('reads OCI layouts (selected by ref) and compares them with archives', async () => {
    const layout = await ociLayout(path.join(work, 'layout'), [
      {layers: [baseLayer, layerA], ref: 'one'},
      {extra: {created: '2024-02-02T00:00:00Z'}, layers: [baseLayer, layerB], ref: 'two'},
    ])
    const ambiguous = await failure(diffImages(await source(layout), await source(archiveB), {limit: 20}))
    expect(isTransshipError(ambiguous) && [ambiguous.code, ambiguous.exit]).toEqual(['ROOTFS_DIFF_INPUT', 2])

    const report = await diffImages(await source(`oci:${layout}:one`), await source(`oci:${layout}:two`), {limit: 20})
    expect(changedAttributes(report)).toEqual(EXPECTED)
    expect(report.a.platform).toBe('linux/amd64')

    // the same image as a layout and as an archive
    const same = await diffImages(await source(`oci:${layout}:two`), await source(archiveB), {limit: 20})
    expect(same.identical).toBe(true)
    expect(same.filesCompared).toBe(false)
    expect(formatReport(same)).toContain('identical: same config and same files')
  })

  it('limits the list, not the counts', async () => {
    const report = await diffImages(await source(archiveA), await source(archiveB), {limit: 2})
    expect(report.files.map((difference) => difference.path)).toEqual(['etc/content', 'etc/link'])
    expect(report.counts.total).toBe(6)
    expect(formatReport(report)).toContain('… 4 more (--limit 0 lists all)')
  })

  it('reports identical images without reading their layers', async () => {
    const report = await diffImages(await source(archiveA), await source(`docker-archive:${archiveA}`), {limit: 20})
    expect(report).toMatchObject({counts: {config: 0, total: 0}, filesCompared: false, identical: true})
    expect(report.a.configDigest).toBe(report.b.configDigest)
  })

  it('applies whiteouts across layers', async () => {
    const lower = plainLayer(
      await layerTar([
        {name: 'd/', type: 'directory'},
        {content: 'x', name: 'd/x'},
        {content: 'y', name: 'd/y'},
        {name: 'opq/', type: 'directory'},
        {content: 'old', name: 'opq/old'},
        {name: 'opq/sub/', type: 'directory'},
        {content: 'deep', name: 'opq/sub/deep'},
        {name: 'tree/', type: 'directory'},
        {content: 'leaf', name: 'tree/leaf'},
        {content: 'keep', name: 'keep'},
      ]),
    )
    const upper = plainLayer(
      await layerTar([
        {content: '', name: 'd/.wh.x'},
        {content: '', name: 'opq/.wh..wh..opq'},
        {content: 'new', name: 'opq/new'},
        {content: '', name: '.wh.tree'},
      ]),
    )
    const flat = plainLayer(
      await layerTar([
        {content: 'keep', name: 'keep'},
        {name: 'd/', type: 'directory'},
        {content: 'y', name: 'd/y'},
        {name: 'opq/', type: 'directory'},
        {content: 'new', name: 'opq/new'},
      ]),
    )
    const layered = await dockerArchive(path.join(work, 'layered.tar'), [lower, upper])
    const single = await dockerArchive(path.join(work, 'single.tar'), [flat])
    const report = await diffImages(await source(layered), await source(single), {limit: 20})
    expect(report.files).toEqual([])
    expect(report.counts.total).toBe(0)
    expect(report.config.map((difference) => difference.key)).toEqual(['history', 'rootfs.diff_ids'])
    expect(formatReport(report)).toContain('files: identical in every compared attribute')
  })

  it('reads an image from an engine by ID (GET /images/{id}/get)', async () => {
    const requests: string[] = []
    const archive = await readFile(archiveA)
    const config = configOf([baseLayer, layerA])
    const engine = fakeEngine(requests, {Id: sha256(config)}, archive)
    const report = await diffImages(await source('app:1'), await source(archiveB), {engine, limit: 20})
    expect(changedAttributes(report)).toEqual(EXPECTED)
    // indexed once, then read once for its layers
    expect(requests).toEqual([
      '/images/app%3A1/json',
      `/images/${encodeURIComponent(sha256(config))}/get`,
      `/images/${encodeURIComponent(sha256(config))}/get`,
    ])
    expect(report.a.input).toBe('app:1')
  })

  it('says when an engine does not have the image', async () => {
    const engine = fakeEngine([], undefined, Buffer.alloc(0))
    const error = await failure(diffImages(await source('nope:1'), await source(archiveB), {engine, limit: 20}))
    expect(isTransshipError(error) && [error.code, error.exit]).toEqual(['IMAGE_NOT_FOUND', 2])
  })

  it('fails on a truncated archive with ARCHIVE_TRUNCATED', async () => {
    const whole = await readFile(archiveB)
    const cut = path.join(work, 'cut.tar')
    // cut inside an entry: tar-stream cannot tell a cut at an entry boundary from the end of the archive
    await writeFile(cut, whole.subarray(0, Math.floor(whole.length / 2) + 100))
    const error = await failure(diffImages(await source(cut), await source(archiveA), {limit: 20}))
    expect(isTransshipError(error) && [error.code, error.exit]).toEqual(['ARCHIVE_TRUNCATED', 2])
  })

  it('fails on a file that is not an archive with ARCHIVE_NOT_IMAGE', async () => {
    const text = path.join(work, 'notes.txt')
    await writeFile(text, 'not an archive at all, just some words that are long enough '.repeat(20))
    const error = await failure(diffImages(await source(text), await source(archiveA), {limit: 20}))
    expect(isTransshipError(error) && [error.code, error.exit]).toEqual(['ARCHIVE_NOT_IMAGE', 2])
  })
})

function fakeEngine(requests: string[], image: undefined | {Id: string}, archive: Buffer): EngineClient {
  return {
    apiVersion: '1.44',
    async facts() {
      throw new Error('not used')
    },
    host: 'local',
    async json<T>(request: {path: string}): Promise<T> {
      requests.push(request.path)
      if (!image) throw new EngineError('No such image', {host: 'local', status: 404})
      return image as T
    },
    async upgrade() {
      throw new Error('not supported')
    },
    messages() {
      throw new Error('not used')
    },
    async stream(request: {path: string}) {
      requests.push(request.path)
      return Readable.from([archive]) as unknown as IncomingMessage
    },
  }
}

describe('readLayer', () => {
  it('reads metadata, hashes content and checks the diffID', async () => {
    const bytes = await layerTar([
      {name: './usr/', type: 'directory'},
      {content: 'abc', gid: 5, mode: 0o4755, name: './usr/su', uid: 0},
      {devmajor: 1, devminor: 3, name: 'dev/null', type: 'character-device'},
      {linkname: './usr/su', name: 'usr/su2', type: 'link'},
      {content: 'x', name: 'f', pax: {mtime: `${MTIME}.5`}},
    ])
    const entries = await readLayer(Readable.from([zlib.gzipSync(bytes)]), {diffID: sha256(bytes), source: 'layer'})
    expect(entries.map((entry) => (entry.kind === 'file' ? entry.path : entry.kind))).toEqual([
      'usr',
      'usr/su',
      'dev/null',
      'usr/su2',
      'f',
    ])
    const info = (name: string) =>
      entries.find((entry) => entry.kind === 'file' && entry.path === name) as {info: FileInfo}
    expect(info('usr/su').info).toEqual({
      gid: 5,
      mode: 0o4755,
      mtime: MTIME,
      sha256: createHash('sha256').update('abc').digest('hex'),
      size: 3,
      type: 'file',
      uid: 0,
    })
    expect(info('dev/null').info).toMatchObject({devmajor: 1, devminor: 3, size: 0, type: 'character-device'})
    expect(info('usr/su2').info).toMatchObject({linkname: 'usr/su', type: 'link'})
    expect(info('f').info.mtime).toBe(MTIME + 0.5)

    const wrong = await failure(
      readLayer(Readable.from([bytes]), {diffID: sha256(Buffer.from('other')), source: 'layer'}),
    )
    expect(isTransshipError(wrong) && wrong.code).toBe('ARCHIVE_CORRUPT')
    const cut = await failure(readLayer(Readable.from([bytes.subarray(0, 700)]), {source: 'layer'}))
    expect(isTransshipError(cut) && cut.code).toBe('ARCHIVE_TRUNCATED')
  })
})

describe('applyLayer', () => {
  const file = (mtime = MTIME): FileInfo => ({gid: 0, mode: 0o644, mtime, size: 0, type: 'file', uid: 0})
  const dir: FileInfo = {gid: 0, mode: 0o755, mtime: MTIME, size: 0, type: 'directory', uid: 0}
  const put = (entryPath: string, info: FileInfo): LayerEntry => ({info, kind: 'file', path: entryPath})

  it('removes whited-out paths with what is under them, and clears opaque directories of lower content', () => {
    const tree = new Map<string, FileInfo>()
    applyLayer(tree, [
      put('a', dir),
      put('a/b', file()),
      put('a/c', file()),
      put('o', dir),
      put('o/x', file()),
      put('ab', file()),
    ])
    applyLayer(tree, [{kind: 'whiteout', path: 'a'}, {dir: 'o', kind: 'opaque'}, put('o/y', file())])
    expect([...tree.keys()].sort()).toEqual(['ab', 'o', 'o/y'])
  })

  it('drops what was under a directory that a file replaces, and clears the root for an opaque root', () => {
    const tree = new Map<string, FileInfo>([
      ['d', dir],
      ['d/x', file()],
    ])
    applyLayer(tree, [put('d', file(MTIME + 1))])
    expect([...tree.keys()]).toEqual(['d'])
    applyLayer(tree, [{dir: '', kind: 'opaque'}, put('n', file())])
    expect([...tree.keys()]).toEqual(['n'])
  })
})

describe('resolveImageSource', () => {
  it('tells archives, layouts and engine images apart', async () => {
    expect(await resolveImageSource(archiveA)).toEqual({file: archiveA, input: archiveA, kind: 'docker-archive'})
    expect(await resolveImageSource(`oci-archive:${archiveA}:app:1`)).toMatchObject({
      file: archiveA,
      kind: 'oci-archive',
      ref: 'app:1',
    })
    expect(await resolveImageSource(work)).toMatchObject({dir: work, kind: 'oci'})
    expect(await resolveImageSource(`oci:${work}:base`)).toMatchObject({dir: work, kind: 'oci', ref: 'base'})
    expect(await resolveImageSource('debian:bookworm')).toEqual({
      input: 'debian:bookworm',
      kind: 'engine',
      ref: 'debian:bookworm',
    })
    expect(await resolveImageSource('docker-daemon:app:1')).toMatchObject({kind: 'engine', ref: 'app:1'})
  })

  it('refuses missing files and directories with a usage error', async () => {
    for (const input of [
      path.join(work, 'missing.tar'),
      `docker-archive:${work}/missing.tar`,
      `oci:${work}/missing`,
      `oci:${archiveA}`,
    ]) {
      const error = await failure(resolveImageSource(input))
      expect(isTransshipError(error) && [error.code, error.exit]).toEqual(['ROOTFS_DIFF_INPUT', 2])
    }
  })

  it('normalises paths', () => {
    expect(['./a/b/', '/a/b', 'a/b', '././a/b//'].map((name) => normalizePath(name))).toEqual([
      'a/b',
      'a/b',
      'a/b',
      'a/b',
    ])
    expect(normalizePath('./')).toBe('')
  })
})

/** A regular file's metadata, with `extra` changed. */
function fileInfo(extra: Partial<FileInfo> = {}): FileInfo {
  return {
    gid: 0,
    mode: 0o644,
    mtime: MTIME,
    size: 1,
    type: 'file',
    uid: 0,
    ...extra,
  }
}

describe('compare', () => {
  it('lists config differences by key, in reading order, with the first differing position of arrays', () => {
    const a = {
      architecture: 'amd64',
      config: {Cmd: ['a'], Env: ['A=1', 'B=2'], Labels: {x: '1'}},
      created: '1',
      history: [1, 2],
    }
    const b = {
      architecture: 'arm64',
      config: {Cmd: ['a'], Env: ['A=1', 'B=3'], Labels: {x: '1'}},
      created: '2',
      history: [1, 2],
      os: 'linux',
    }
    expect(compareConfigs(a, b)).toEqual([
      {a: '1', b: '2', key: 'created'},
      {a: 'amd64', b: 'arm64', key: 'architecture'},
      {a: undefined, b: 'linux', key: 'os'},
      {a: ['A=1', 'B=2'], b: ['A=1', 'B=3'], index: 1, key: 'config.Env'},
    ])
    // key order inside objects does not matter
    expect(compareConfigs({config: {Labels: {a: '1', b: '2'}}}, {config: {Labels: {b: '2', a: '1'}}})).toEqual([])
  })

  it('compares files in path order and counts all differences', () => {
    // in no order: the comparison sorts
    const a = new Map<string, FileInfo>()
    a.set('b', fileInfo())
    a.set('a', fileInfo({mode: 0o600, uid: 1}))
    a.set('c', fileInfo())
    const b = new Map([
      ['a', fileInfo()],
      ['b', fileInfo()],
      ['d', fileInfo()],
    ])
    const {counts, files} = compareFiles(a, b, 2)
    expect(counts).toEqual({changed: 1, onlyInA: 1, onlyInB: 1, total: 3})
    expect(files).toEqual([
      {
        changes: [
          {a: 0o600, attribute: 'mode', b: 0o644},
          {a: 1, attribute: 'uid', b: 0},
        ],
        kind: 'changed',
        path: 'a',
      },
      {a: fileInfo(), kind: 'only-in-a', path: 'c'},
    ])
  })

  it('is identical only when configs and files are', () => {
    const summary: ImageSummary = {configDigest: 'sha256:1', diffIDs: ['sha256:2'], input: 'x', names: []}
    const same = buildReport({a: summary, b: summary, configA: {a: 1}, configB: {a: 1}, limit: 20})
    expect(same.identical).toBe(true)
    const files = {a: new Map([['x', fileInfo()]]), b: new Map([['x', fileInfo({size: 2})]])}
    expect(buildReport({a: summary, b: summary, configA: {}, configB: {}, files, limit: 20}).identical).toBe(false)
  })
})
