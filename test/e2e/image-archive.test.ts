// `image save` and `image load` against real engines: every layout and compression saved from Docker 20.10
// and loaded into 20.10 (local and over SSH) and 26.1 (containerd store); archives written by other tools;
// broken files refused before the engine is touched; an interrupted save leaves no file.
import {archiveEntries, detectCompression} from '@transship/kit/archive'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {configFor, json, makeTar, readAll, type TarEntry} from '../helpers/archive-fixtures.js'
import {repoRoot, transship} from '../helpers/cli.js'
import {hex, sha256} from '../helpers/digests.js'
import {exists, head} from '../helpers/files.js'
import {imageId, layers, removeImages} from '../helpers/images.js'
import {describeE2E, dockerCli, type EngineName, run, tempHome, type TempHome} from '../helpers/testbed.js'

const fixtures = fileURLToPath(new URL('../fixtures/archives/', import.meta.url))
const bin = path.join(repoRoot, 'bin', 'run.js')

interface LoadedImage {
  id: string
  layers: string[]
  tags: string[]
}

interface LoadJson {
  archive: {compression: string; format: string}
  images: LoadedImage[]
  sent: {compression: string; format: string; reencoded: boolean}
}

interface ErrorJson {
  error: {code: string; exit: number; message: string}
}

const TEST_IMAGE_1 = {
  diffID: 'sha256:8897395fd26dc44ad0e2a834335b33198cb41ac4d98dfddf58eced3853fa7b17',
  id: 'sha256:6e0b05049ed9c17d02e1a55e80d6599dbfcce7f4f4b022e3c673e685789c470e',
  tag: 'bazel/v1/tarball:test_image_1',
}

/** What loading each archive of ../fixtures/archives must do, on either kind of engine. */
const FIXTURES: Record<string, {error: {code: string; message: string}} | {images: Array<Omit<LoadedImage, 'id'>>}> = {
  'hello-world-v25.tar': {
    images: [{layers: ['sha256:12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43'], tags: []}],
  },
  'no_manifest.tar': {error: {code: 'ARCHIVE_UNSUPPORTED', message: 'is a legacy (v1) Docker image archive'}},
  'null_manifest.tar': {error: {code: 'ARCHIVE_CORRUPT', message: 'manifest.json is empty'}},
  'test_bundle.tar': {
    error: {code: 'ARCHIVE_CORRUPT', message: 'is tagged "test_image_2", which is not a repository:tag'},
  },
  'test_image_1.tar': {images: [{layers: [TEST_IMAGE_1.diffID], tags: [TEST_IMAGE_1.tag]}]},
  'test_link.tar': {
    images: [
      {layers: [TEST_IMAGE_1.diffID], tags: [TEST_IMAGE_1.tag]},
      {
        layers: [TEST_IMAGE_1.diffID, 'sha256:6b617a2706576ed038acdc3aa668cac62010386a5a3d227d83aada32085c9f29'],
        tags: ['bazel/v1/tarball:test_image_3'],
      },
    ],
  },
  'whiteout_image.tar': {
    images: [
      {
        layers: [
          'sha256:891f36a008624b6450292efb6ff06b633a179c7cc08456fefcc08c2b34f3b31c',
          'sha256:88d2a7b2ae6dddeb3490c9370cfc070aaa1aab9c22a6fb03523787d8b21c17db',
          'sha256:84ff92691f909a05b224e1c56abb4864f01b4f8e3c854e4bb4c7baf1d3f6d652',
        ],
        tags: ['bazel/pkg/v1/mutate:whiteout_image'],
      },
    ],
  },
}

/** The fixtures' images, children first (on 20.10 test_image_3 is a child of test_image_1). */
const FIXTURE_IMAGES = [
  'bazel/v1/tarball:test_image_3',
  'sha256:d4c9adacde69c3d92446e0484cea29493e9fd573cf0c8febfc700d80c46697a4',
  'bazel/pkg/v1/mutate:whiteout_image',
  TEST_IMAGE_1.tag,
  TEST_IMAGE_1.id,
]

/**
 * Writes `target`: the single-image OCI archive `source` turned into a two-platform image named `name` (its
 * amd64 manifest plus an arm64 one with the same layers), behind a nested image index. Returns the index digest.
 */
async function multiPlatform(source: string, target: string, name: string): Promise<string> {
  const files = new Map<string, Buffer>()
  for await (const {header, stream} of archiveEntries(createReadStream(source))) {
    files.set(header.name, await readAll(stream))
  }

  const blob = (digest: string) => files.get(`blobs/sha256/${hex(digest)}`)!
  const top = JSON.parse(files.get('index.json')!.toString()) as {manifests: Array<{digest: string; size: number}>}
  const amd64 = top.manifests[0]!
  const manifest = JSON.parse(blob(amd64.digest).toString()) as {config: {digest: string; size: number}}
  const config = JSON.parse(blob(manifest.config.digest).toString()) as Record<string, unknown>
  const armConfig = json({...config, architecture: 'arm64', variant: 'v8'})
  const armManifest = json({
    ...manifest,
    config: {...manifest.config, digest: sha256(armConfig), size: armConfig.length},
  })
  const ociManifest = 'application/vnd.oci.image.manifest.v1+json'
  const nested = json({
    manifests: [
      {
        digest: sha256(armManifest),
        mediaType: ociManifest,
        platform: {architecture: 'arm64', os: 'linux', variant: 'v8'},
        size: armManifest.length,
      },
      {digest: amd64.digest, mediaType: ociManifest, platform: {architecture: 'amd64', os: 'linux'}, size: amd64.size},
    ],
    mediaType: 'application/vnd.oci.image.index.v1+json',
    schemaVersion: 2,
  })
  const index = json({
    manifests: [
      {
        annotations: {'io.containerd.image.name': `docker.io/${name}`, 'org.opencontainers.image.ref.name': '1'},
        digest: sha256(nested),
        mediaType: 'application/vnd.oci.image.index.v1+json',
        size: nested.length,
      },
    ],
    mediaType: 'application/vnd.oci.image.index.v1+json',
    schemaVersion: 2,
  })
  const entries = [...files].filter(([entry]) => entry.startsWith('blobs/sha256/'))
  for (const bytes of [armConfig, armManifest, nested]) entries.push([`blobs/sha256/${hex(sha256(bytes))}`, bytes])
  entries.push(['index.json', index], ['oci-layout', json({imageLayoutVersion: '1.0.0'})])
  await writeFile(target, await makeTar(entries.map(([entry, content]) => ({content, name: entry}))))
  return sha256(nested)
}

/** A valid one-layer docker-archive tagged `tag`, with `extra` entries and manifest.json paths changed by `paths`. */
async function hostile(
  tag: string,
  options: {config?: string; extra?: TarEntry[]; layer?: string; manifest?: string} = {},
): Promise<Buffer> {
  const layer = await makeTar([{content: `hostile ${tag}\n`, name: 'hostile.txt'}])
  const config = configFor([sha256(layer)])
  const configPath = options.config ?? `${hex(sha256(config))}.json`
  const layerPath = options.layer ?? 'layer/layer.tar'
  const manifest = json([{Config: configPath, Layers: [layerPath], RepoTags: [tag]}])
  return makeTar([
    {content: config, name: configPath.replace(/^\/+/, '')},
    {name: 'layer/', type: 'directory'},
    {content: layer, name: layerPath.replace(/^\/+/, '')},
    ...(options.extra ?? []),
    {content: manifest, name: options.manifest ?? 'manifest.json'},
  ])
}

describeE2E('transship image save and load', (bed) => {
  let home: TempHome
  let dir: string
  const ref = 'transship-test/archive:1'
  const remoteHost = `ssh://${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}${bed.engines.remote.socket}`
  let sourceLayers: string[]
  /** untagged images the fixtures left behind, to remove afterwards */
  const leftovers: Array<[EngineName, string]> = []

  beforeAll(async () => {
    home = await tempHome({identity: true})
    dir = await mkdtemp(path.join(os.tmpdir(), 'transship-archive-'))
    // the app image plus a layer that no engine holds yet
    if (!(await imageId('classic', ref))) {
      const dockerfile = `FROM ${bed.images.app}\nRUN echo ${randomBytes(8).toString('hex')} > /archive-test.txt\n`
      await dockerCli('classic', ['build', '--network', 'none', '-t', ref, '-'], {input: dockerfile})
    }

    sourceLayers = await layers('classic', ref)
  })

  afterAll(async () => {
    for (const engine of ['classic', 'remote', 'containerd'] as const) await removeImages(engine, ref)
    for (const engine of ['classic', 'containerd'] as const) await removeImages(engine, ...FIXTURE_IMAGES)
    for (const [engine, id] of leftovers) await removeImages(engine, id)
    await rm(dir, {force: true, recursive: true})
    await home.cleanup()
  })

  /** the CLI against `engine`: classic and containerd as the local engine, remote over SSH */
  const cli = (engine: EngineName, args: string[]) =>
    transship(engine === 'remote' ? [...args, '--host', remoteHost] : args, {
      dockerHost: bed.engines[engine === 'remote' ? 'classic' : engine].host,
      home: home.home,
    })

  const cases = [
    {args: [], file: 'app.tar', format: 'docker'},
    {args: [], file: 'app.tar.gz', format: 'docker'},
    {args: [], file: 'app.tar.zst', format: 'docker'},
    {args: [], file: 'app.tar.bz2', format: 'docker'},
    {args: [], file: 'app.oci.tar', format: 'oci'},
    {args: [], file: 'app.oci.tar.gz', format: 'oci'},
    {args: [], file: 'app.oci.tar.zst', format: 'oci'},
    {args: [], file: 'app.oci.tar.bz2', format: 'oci'},
    {args: ['--format', 'docker+oci'], file: 'both.tar', format: 'docker+oci'},
    {args: ['--format', 'docker+oci', '--compress', 'gzip', '--level', '1'], file: 'both.tgz', format: 'docker+oci'},
    {args: ['--format', 'docker+oci'], file: 'both.tar.zst', format: 'docker+oci'},
    {args: ['--format', 'docker+oci'], file: 'both.tar.bz2', format: 'docker+oci'},
  ]

  for (const {args, file, format} of cases) {
    it(`saves ${file} (${format}) from 20.10 and loads it into 20.10, 20.10 over SSH and 26.1`, async () => {
      const target = path.join(dir, file)
      const saved = await cli('classic', ['image', 'save', ref, '-o', target, ...args, '--json'])
      expect(saved.stderr).not.toMatch(/Error/)
      expect(saved.code).toBe(0)
      const result = JSON.parse(saved.stdout) as {compression: string; format: string; images: Array<{tags: string[]}>}
      expect(result.format).toBe(format)
      expect(result.images.map((image) => image.tags)).toEqual([[ref]])
      expect(await exists(`${target}.partial`)).toBe(false)
      const expectedCompression =
        file.endsWith('.gz') || file.endsWith('.tgz')
          ? 'gzip'
          : file.endsWith('.zst')
            ? 'zstd'
            : file.endsWith('.bz2')
              ? 'bzip2'
              : 'none'
      expect(result.compression).toBe(expectedCompression)
      expect(detectCompression(await head(target))).toBe(expectedCompression)

      for (const engine of ['classic', 'remote', 'containerd'] as const) {
        if (engine !== 'classic') await removeImages(engine, ref)
        const loaded = await cli(engine, ['image', 'load', target, '--json'])
        expect(loaded.stderr, `${engine}: ${loaded.stderr}`).not.toMatch(/Error/)
        expect(loaded.code).toBe(0)
        const report = JSON.parse(loaded.stdout) as LoadJson
        expect(report.archive).toEqual({compression: expectedCompression, format})
        expect(report.images).toHaveLength(1)
        expect(report.images[0]!.tags).toEqual([ref])
        expect(report.images[0]!.layers).toEqual(sourceLayers)
        expect(await layers(engine, ref)).toEqual(sourceLayers)
        expect(await imageId(engine, ref)).toBe(report.images[0]!.id)
        const output = await dockerCli(engine, ['run', '--rm', '--network', 'none', ref, 'cat', '/app/hello.txt'])
        expect(output.trim()).toBe('hello from app 1')
      }
    })
  }

  it('streams a save to stdout into a load from stdin (20.10 → 26.1)', async () => {
    await removeImages('containerd', ref)
    const env: NodeJS.ProcessEnv = {...process.env, HOME: home.home, NO_COLOR: '1'}
    delete env.SSH_AUTH_SOCK
    delete env.DEBUG
    const script = [
      `DOCKER_HOST=${bed.engines.classic.host} "${process.execPath}" "${bin}" image save ${ref} -o - --compress zstd`,
      `DOCKER_HOST=${bed.engines.containerd.host} "${process.execPath}" "${bin}" image load - --json`,
    ].join(' | ')
    const result = await run('bash', ['-o', 'pipefail', '-c', script], {env})
    expect(result.stderr).not.toMatch(/Error/)
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout) as LoadJson
    expect(report.archive.compression).toBe('zstd')
    expect(report.images[0]!.layers).toEqual(sourceLayers)
    expect(await layers('containerd', ref)).toEqual(sourceLayers)
  })

  it('loads a multi-platform OCI archive: 20.10 gets the image of its platform, 26.1 the whole index', async () => {
    const multi = 'transship-test/archive-multi:1'
    const saved = path.join(dir, 'single.oci.tar')
    expect((await cli('classic', ['image', 'save', ref, '-o', saved])).code).toBe(0)
    const archive = path.join(dir, 'multi.oci.tar')
    const indexDigest = await multiPlatform(saved, archive, multi)
    for (const engine of ['classic', 'containerd'] as const) {
      await removeImages(engine, multi)
      const result = await cli(engine, ['image', 'load', archive, '--json'])
      expect(result.stderr).not.toMatch(/Error/)
      expect(result.code).toBe(0)
      const report = JSON.parse(result.stdout) as LoadJson
      expect(report.sent).toEqual({
        compression: 'none',
        format: engine === 'classic' ? 'docker' : 'oci',
        reencoded: engine === 'classic',
      })
      expect(report.images.map((image) => image.tags)).toEqual([[multi]])
      expect(await layers(engine, multi)).toEqual(sourceLayers)
      const architecture = await dockerCli(engine, ['image', 'inspect', '--format', '{{.Architecture}}', multi])
      expect(architecture.trim()).toBe('amd64')
      if (engine === 'containerd') expect(await imageId(engine, multi)).toBe(indexDigest)
      else expect(await imageId(engine, multi)).toBe(await imageId('classic', ref))
      await removeImages(engine, multi)
    }
  })

  for (const [name, outcome] of Object.entries(FIXTURES)) {
    for (const engine of ['classic', 'containerd'] as const) {
      it(`loads ${name} into ${engine === 'classic' ? '20.10' : '26.1 (containerd store)'}: ${
        'error' in outcome ? outcome.error.code : 'loaded'
      }`, async () => {
        const result = await cli(engine, ['image', 'load', path.join(fixtures, name), '--json'])
        if ('error' in outcome) {
          expect(result.code).toBe(2)
          const {error} = JSON.parse(result.stdout) as ErrorJson
          expect(error.code).toBe(outcome.error.code)
          expect(error.message).toContain(name)
          expect(error.message).toContain(outcome.error.message)
          return
        }

        expect(result.stderr).not.toMatch(/Error/)
        expect(result.code).toBe(0)
        const report = JSON.parse(result.stdout) as LoadJson
        expect(report.images.map(({layers: diffIDs, tags}) => ({layers: diffIDs, tags}))).toEqual(outcome.images)
        for (const image of report.images) {
          if (image.tags.length === 0) leftovers.push([engine, image.id])
          expect(await layers(engine, image.tags[0] ?? image.id)).toEqual(image.layers)
        }
      })
    }
  }

  const broken = [
    {code: 'ARCHIVE_TRUNCATED', file: 'truncated.tar', message: 'is truncated: it ends in the middle of entry'},
    {code: 'ARCHIVE_CORRUPT', file: 'corrupt-layer.tar', message: 'does not match its diff_id'},
    {code: 'ARCHIVE_CORRUPT', file: 'corrupt-header.tar', message: 'the tar header after entry'},
    {code: 'ARCHIVE_NOT_IMAGE', file: 'not-an-archive.txt', message: 'is not an image archive'},
  ]
  for (const {code, file, message} of broken) {
    it(`refuses ${file} (${code}, exit 2) and loads nothing`, async () => {
      for (const engine of ['classic', 'containerd'] as const) {
        await removeImages(engine, ...FIXTURE_IMAGES)
        const result = await cli(engine, ['image', 'load', path.join(fixtures, file)])
        expect(result.code).toBe(2)
        expect(result.stderr).toContain(`Error: ${path.join(fixtures, file)}`)
        expect(result.stderr).toContain(message)
        expect(await imageId(engine, TEST_IMAGE_1.tag)).toBeUndefined()
        if (engine === 'classic') expect(await imageId(engine, TEST_IMAGE_1.id)).toBeUndefined()
      }
    })
  }

  describe('hostile archives', () => {
    const hostileCases: Array<{archive: (tag: string) => Promise<Buffer>; entry: string; name: string; why: string}> = [
      {
        archive: (tag) => hostile(tag, {extra: [{content: 'x', name: '../outside.txt'}]}),
        entry: '../outside.txt',
        name: 'an entry that climbs out (..)',
        why: 'climbs out of the archive',
      },
      {
        archive: (tag) => hostile(tag, {extra: [{content: 'x', name: '/etc/transship-hostile'}]}),
        entry: '/etc/transship-hostile',
        name: 'an absolute entry',
        why: 'has an absolute path',
      },
      {
        archive: (tag) => hostile(tag, {extra: [{linkname: '/etc/passwd', name: 'passwd', type: 'symlink'}]}),
        entry: 'passwd',
        name: 'a symbolic link to an absolute path',
        why: 'is a symbolic link to /etc/passwd, outside the archive',
      },
      {
        archive: (tag) => hostile(tag, {extra: [{linkname: '../../etc', name: 'layer/etc', type: 'symlink'}]}),
        entry: 'layer/etc',
        name: 'a symbolic link that climbs out',
        why: 'is a symbolic link to ../../etc, outside the archive',
      },
      {
        archive: (tag) => hostile(tag, {extra: [{linkname: '../etc/passwd', name: 'passwd', type: 'link'}]}),
        entry: 'passwd',
        name: 'a hard link that leaves',
        why: 'is a hard link to ../etc/passwd, outside the archive',
      },
      {
        archive: (tag) => hostile(tag, {extra: [{linkname: '/etc/passwd', name: 'passwd', type: 'link'}]}),
        entry: 'passwd',
        name: 'a hard link to an absolute path',
        why: 'is a hard link to /etc/passwd, outside the archive',
      },
      {
        archive: (tag) =>
          hostile(tag, {
            extra: [
              {linkname: 'layer', name: 'through', type: 'symlink'},
              {content: 'x', name: 'through/written.txt'},
            ],
          }),
        entry: 'through/written.txt',
        name: 'an entry reached through a symbolic link',
        why: 'is reached through the symbolic link through',
      },
      {
        archive: (tag) => hostile(tag, {layer: '../layer.tar'}),
        entry: '../layer.tar',
        name: 'manifest.json naming a layer outside (..)',
        why: 'climbs out of the archive',
      },
      {
        archive: (tag) => hostile(tag, {config: '../config.json'}),
        entry: '../config.json',
        name: 'manifest.json naming its config outside (..)',
        why: 'climbs out of the archive',
      },
      {
        archive: (tag) => hostile(tag, {layer: '/layer/layer.tar'}),
        entry: '/layer/layer.tar',
        name: 'manifest.json naming a layer by an absolute path',
        why: 'outside the archive',
      },
      {
        archive: (tag) => hostile(tag, {config: '/config.json'}),
        entry: '/config.json',
        name: 'manifest.json naming its config by an absolute path',
        why: 'outside the archive',
      },
      {
        async archive(tag) {
          const archive = await hostile(tag)
          // the same archive without its layer: manifest.json names an entry that is not there
          const files = new Map<string, Buffer>()
          for await (const {header, stream} of archiveEntries(Readable.from([archive]))) {
            if (header.type === 'file') files.set(header.name, await readAll(stream))
          }

          files.delete('layer/layer.tar')
          return makeTar([...files].map(([name, content]) => ({content, name})))
        },
        entry: 'layer/layer.tar',
        name: 'manifest.json naming a layer that is missing',
        why: 'but the archive has no such entry',
      },
    ]

    for (const [position, {archive, entry, name, why}] of hostileCases.entries()) {
      it(`refuses ${name} before anything is sent (exit 2), on both engine kinds`, async () => {
        const tag = `transship-test/hostile-${position}:1`
        const file = path.join(dir, `hostile-${position}.tar`)
        await writeFile(file, await archive(tag))
        for (const engine of ['classic', 'containerd'] as const) {
          await removeImages(engine, tag)
          const result = await cli(engine, ['image', 'load', file])
          expect(result.code, result.stderr).toBe(2)
          expect(result.stderr).toContain(`Error: ${file}`)
          expect(result.stderr).toContain(entry)
          expect(result.stderr).toContain(why)
          expect(await imageId(engine, tag)).toBeUndefined()
        }
      })
    }

    it('refuses an OCI archive whose index.json names a manifest it does not hold', async () => {
      const layer = await makeTar([{content: 'oci\n', name: 'oci.txt'}])
      const config = configFor([sha256(layer)])
      const missing = sha256('a manifest that is not there')
      const index = json({
        manifests: [
          {
            annotations: {'io.containerd.image.name': 'transship-test/hostile-oci:1'},
            digest: missing,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            size: 10,
          },
        ],
        schemaVersion: 2,
      })
      const file = path.join(dir, 'hostile-oci.tar')
      await writeFile(
        file,
        await makeTar([
          {content: '{"imageLayoutVersion":"1.0.0"}', name: 'oci-layout'},
          {content: config, name: `blobs/sha256/${hex(sha256(config))}`},
          {content: layer, name: `blobs/sha256/${hex(sha256(layer))}`},
          {content: index, name: 'index.json'},
        ]),
      )
      const result = await cli('containerd', ['image', 'load', file])
      expect(result.code, result.stderr).toBe(2)
      expect(result.stderr).toContain(`blobs/sha256/${hex(missing)}`)
    })
  })

  it('refuses a truncated archive on stdin before its end reaches the engine: nothing loaded', async () => {
    await removeImages('classic', ...FIXTURE_IMAGES)
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DOCKER_HOST: bed.engines.classic.host,
      HOME: home.home,
      NO_COLOR: '1',
    }
    const script = `"${process.execPath}" "${bin}" image load - < "${path.join(fixtures, 'truncated.tar')}"`
    const result = await run('bash', ['-c', script], {env})
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('the archive on stdin is truncated')
    expect(await imageId('classic', TEST_IMAGE_1.id)).toBeUndefined()
  })

  it('an interrupted save leaves no file behind', async () => {
    const big = 'transship-test/archive-big:1'
    if (!(await imageId('classic', big))) {
      const dockerfile = `FROM ${bed.images.busybox}\nRUN head -c 50331648 /dev/urandom > /big.bin\n`
      await dockerCli('classic', ['build', '--network', 'none', '-t', big, '-'], {input: dockerfile})
    }

    const target = path.join(dir, 'big.tar.xz')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DOCKER_HOST: bed.engines.classic.host,
      HOME: home.home,
      NO_COLOR: '1',
    }
    const child = spawn(process.execPath, [bin, 'image', 'save', big, '-o', target, '--level', '9'], {env})
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.stdout.resume()
    const exited = new Promise<null | number>((resolve) => {
      child.on('close', (code) => resolve(code))
    })
    // wait until the save is under way (its .partial file exists), then Ctrl-C
    for (let tries = 0; tries < 100 && !(await exists(`${target}.partial`)); tries++) {
      await new Promise((resolve) => {
        setTimeout(resolve, 100)
      })
    }

    expect(await exists(`${target}.partial`)).toBe(true)
    await new Promise((resolve) => {
      setTimeout(resolve, 500)
    })
    child.kill('SIGINT')
    expect(await exited).toBe(130)
    expect(stderr).toContain('interrupted')
    expect(await exists(target)).toBe(false)
    expect(await exists(`${target}.partial`)).toBe(false)
    await removeImages('classic', big)
  })
})
