import {Readable} from 'node:stream'
import zlib from 'node:zlib'
import {describe, expect, it} from 'vitest'

import {
  configFor,
  fixture,
  json,
  layerBytes,
  makeTar,
  readAll,
  type TarEntry,
} from '../../../../../test/helpers/archive-fixtures.js'
import {hex, sha256} from '../../../../../test/helpers/digests.js'
import {failure} from '../../../../../test/helpers/failure.js'
import {archiveEntries, ArchiveError, archiveLayers, indexArchive} from '../../../src/archive/index.js'

const TEST_IMAGE_1 = {
  config: 'sha256:6e0b05049ed9c17d02e1a55e80d6599dbfcce7f4f4b022e3c673e685789c470e',
  diffID: 'sha256:8897395fd26dc44ad0e2a834335b33198cb41ac4d98dfddf58eced3853fa7b17',
  path: '555b1001d54ed229f56990845856f080b0707348b26b3aa85aaf58d5570cdee0/layer.tar',
}

describe('indexArchive: archives written by other tools', () => {
  it('reads a Docker 25 archive (OCI layout + manifest.json, no RepoTags, index.json manifests null)', async () => {
    const index = await indexArchive(fixture('hello-world-v25.tar'))
    expect(index.format).toBe('docker+oci')
    expect(index.images).toHaveLength(1)
    const [image] = index.images
    expect(image!.repoTags).toEqual([])
    expect(image!.configDigest).toBe('sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44')
    expect(image!.manifestDigest).toBeUndefined()
    expect(image!.platform).toBe('linux/arm64')
    expect(image!.layers).toEqual([
      {
        diffID: 'sha256:12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43',
        digest: 'sha256:12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43',
        // from LayerSources, which describe this very blob
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        path: 'blobs/sha256/12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43',
        size: 10_752,
      },
    ])
    expect(sha256(image!.config)).toBe(image!.configDigest)
  })

  it('reads a legacy docker-archive', async () => {
    const index = await indexArchive(fixture('test_image_1.tar'))
    expect(index.format).toBe('docker')
    expect(index.images).toHaveLength(1)
    expect(index.images[0]).toMatchObject({
      configDigest: TEST_IMAGE_1.config,
      layers: [
        {
          diffID: TEST_IMAGE_1.diffID,
          digest: TEST_IMAGE_1.diffID,
          mediaType: 'application/vnd.docker.image.rootfs.diff.tar',
          path: TEST_IMAGE_1.path,
          size: 10_240,
        },
      ],
      platform: 'linux/amd64',
      repoTags: ['bazel/v1/tarball:test_image_1'],
    })
  })

  it('reads every image of a multi-image archive, tags as written (even one without a repository)', async () => {
    const index = await indexArchive(fixture('test_bundle.tar'))
    expect(index.format).toBe('docker')
    expect(index.images.map((image) => image.repoTags)).toEqual([['test_image_2'], ['test_image_1']])
    expect(index.images.map((image) => image.configDigest)).toEqual([
      'sha256:930705ce23e3b6ed4c08746b6fe880089c864fbaf62482702ae3fdd66b8c7fe9',
      TEST_IMAGE_1.config,
    ])
    // LayerSources describe a gzip blob elsewhere; the layer stored here is the uncompressed tar
    expect(index.images[0]!.layers).toEqual([
      {
        diffID: 'sha256:3610aa5267a210147ba6ca02cdd87610dfc08522de9c5f5015edd8ee14853fd8',
        digest: 'sha256:3610aa5267a210147ba6ca02cdd87610dfc08522de9c5f5015edd8ee14853fd8',
        mediaType: 'application/vnd.docker.image.rootfs.diff.tar',
        path: '8e17bd53a9cb6d38a0c7d21e8a0f943449f494aa0c3de2425a3dd9be8844a19b/layer.tar',
        size: 10_240,
      },
    ])
  })

  it('reads an image with whiteout layers, in order', async () => {
    const index = await indexArchive(fixture('whiteout_image.tar'))
    expect(index.images).toHaveLength(1)
    expect(index.images[0]!.repoTags).toEqual(['bazel/pkg/v1/mutate:whiteout_image'])
    expect(index.images[0]!.configDigest).toBe(
      'sha256:decb630649c3e1256345d416b228d6c3ceb387a55120ad44dc3ec992976d28b9',
    )
    expect(index.images[0]!.layers.map((layer) => layer.diffID)).toEqual([
      'sha256:891f36a008624b6450292efb6ff06b633a179c7cc08456fefcc08c2b34f3b31c',
      'sha256:88d2a7b2ae6dddeb3490c9370cfc070aaa1aab9c22a6fb03523787d8b21c17db',
      'sha256:84ff92691f909a05b224e1c56abb4864f01b4f8e3c854e4bb4c7baf1d3f6d652',
    ])
  })

  it('follows a layer given as a symbolic link, and reports the link as an alias', async () => {
    const index = await indexArchive(fixture('test_link.tar'))
    expect(index.images.map((image) => image.repoTags)).toEqual([
      ['bazel/v1/tarball:test_image_1'],
      ['bazel/v1/tarball:test_image_3'],
    ])
    const second = index.images[1]!
    expect(second.configDigest).toBe('sha256:d4c9adacde69c3d92446e0484cea29493e9fd573cf0c8febfc700d80c46697a4')
    expect(second.layers).toEqual([
      {
        aliases: ['b159278ac0c8813245b6c3b22cbbe7abefe3b2ec3fac6c7e87138811e1ef2a88/layer.tar'],
        diffID: TEST_IMAGE_1.diffID,
        digest: TEST_IMAGE_1.diffID,
        mediaType: 'application/vnd.docker.image.rootfs.diff.tar',
        path: '6e77476643c3155b1e9ae07dd5a4c8288bdb6590c131c222b7a3f277dec1e266/layer.tar',
        size: 10_240,
      },
      {
        diffID: 'sha256:6b617a2706576ed038acdc3aa668cac62010386a5a3d227d83aada32085c9f29',
        digest: 'sha256:6b617a2706576ed038acdc3aa668cac62010386a5a3d227d83aada32085c9f29',
        mediaType: 'application/vnd.docker.image.rootfs.diff.tar',
        path: '3fe17a762ab6ad87de78c88326e1667b3e6a8924a0eb92a34a2bfeb40f49824d/layer.tar',
        size: 2048,
      },
    ])
    // the shared layer once
    expect(archiveLayers(index).map((layer) => layer.diffID)).toEqual([
      TEST_IMAGE_1.diffID,
      'sha256:6b617a2706576ed038acdc3aa668cac62010386a5a3d227d83aada32085c9f29',
    ])
  })

  it('refuses a legacy v1 archive (only `repositories`) as unsupported, saying what it is', async () => {
    const error = await failure(indexArchive(fixture('no_manifest.tar'), {source: 'no_manifest.tar'}), ArchiveError)
    expect(error.code).toBe('ARCHIVE_UNSUPPORTED')
    expect(error.exit).toBe(2)
    expect(error.message).toContain('no_manifest.tar is a legacy (v1) Docker image archive')
  })

  it('refuses a manifest.json that is `null`', async () => {
    const error = await failure(indexArchive(fixture('null_manifest.tar'), {source: 'null_manifest.tar'}), ArchiveError)
    expect(error.code).toBe('ARCHIVE_CORRUPT')
    expect(error.exit).toBe(2)
    expect(error.message).toMatch(/null_manifest\.tar .*manifest\.json is empty/)
  })

  it('reads a compressed archive the same as the plain one', async () => {
    const plain = await readAll(fixture('test_image_1.tar'))
    const index = await indexArchive(Readable.from([zlib.gzipSync(plain)]))
    expect(index).toEqual(await indexArchive(fixture('test_image_1.tar')))
  })
})

describe('indexArchive: broken input', () => {
  it('a truncated archive: ARCHIVE_TRUNCATED naming the entry it ends in', async () => {
    const error = await failure(indexArchive(fixture('truncated.tar'), {source: 'truncated.tar'}), ArchiveError)
    expect(error.code).toBe('ARCHIVE_TRUNCATED')
    expect(error.exit).toBe(2)
    expect(error.message).toBe(
      `truncated.tar is truncated: it ends in the middle of entry "${TEST_IMAGE_1.path}" (3440 of its 10240 bytes)`,
    )
  })

  it('a layer with garbage bytes: ARCHIVE_CORRUPT, it does not match its diff_id', async () => {
    const error = await failure(indexArchive(fixture('corrupt-layer.tar'), {source: 'corrupt-layer.tar'}), ArchiveError)
    expect(error.code).toBe('ARCHIVE_CORRUPT')
    expect(error.message).toContain(`(${TEST_IMAGE_1.path}) does not match its diff_id`)
  })

  it('a damaged tar header: ARCHIVE_CORRUPT naming the entry before it', async () => {
    const error = await failure(
      indexArchive(fixture('corrupt-header.tar'), {source: 'corrupt-header.tar'}),
      ArchiveError,
    )
    expect(error.code).toBe('ARCHIVE_CORRUPT')
    expect(error.message).toBe(
      `corrupt-header.tar is damaged: the tar header after entry "${TEST_IMAGE_1.path}" has a bad checksum`,
    )
  })

  it('a text file: ARCHIVE_NOT_IMAGE', async () => {
    const error = await failure(indexArchive(fixture('not-an-archive.txt'), {source: 'notes.txt'}), ArchiveError)
    expect(error.code).toBe('ARCHIVE_NOT_IMAGE')
    expect(error.exit).toBe(2)
    expect(error.message).toContain('notes.txt is not an image archive')
  })

  it('a few bytes of text: ARCHIVE_NOT_IMAGE', async () => {
    const error = await failure(
      indexArchive(Readable.from([Buffer.from('hello\n')]), {source: 'hello.txt'}),
      ArchiveError,
    )
    expect(error.code).toBe('ARCHIVE_NOT_IMAGE')
    expect(error.message).toBe('hello.txt is not an image archive: it is shorter than the header of a tar archive')
  })

  it('an empty input, and a tar of other files: ARCHIVE_NOT_IMAGE', async () => {
    expect((await failure(indexArchive(Readable.from([])), ArchiveError)).message).toContain('empty')
    const other = await makeTar([{content: 'hello', name: 'README'}])
    const error = await failure(indexArchive(Readable.from([other])), ArchiveError)
    expect(error.code).toBe('ARCHIVE_NOT_IMAGE')
    expect(error.message).toContain('without manifest.json or index.json')
  })

  it('a truncated gzip stream: ARCHIVE_TRUNCATED', async () => {
    const gz = zlib.gzipSync(await readAll(fixture('test_image_1.tar')))
    const error = await failure(indexArchive(Readable.from([gz.subarray(0, -100)]), {source: 'x.tar.gz'}), ArchiveError)
    expect(error.code).toBe('ARCHIVE_TRUNCATED')
    expect(error.message).toMatch(/^x\.tar\.gz: /)
  })
})

describe('indexArchive: what it checks', () => {
  const a = layerBytes('a')
  const b = layerBytes('b')
  const config = configFor([sha256(a), sha256(b)])
  const manifest = (layers: string[]) =>
    json([{Config: `${hex(sha256(config))}.json`, Layers: layers, RepoTags: ['app:1']}])

  it('a layer that manifest.json names but the archive lacks: ARCHIVE_CORRUPT, or missing with `partial`', async () => {
    const archive = await makeTar([
      {content: config, name: `${hex(sha256(config))}.json`},
      {content: a, name: 'a/layer.tar'},
      {content: manifest(['a/layer.tar', 'b/layer.tar']), name: 'manifest.json'},
    ])
    const error = await failure(indexArchive(Readable.from([archive])), ArchiveError)
    expect(error.code).toBe('ARCHIVE_CORRUPT')
    expect(error.message).toContain('layer 2 is b/layer.tar, but the archive has no such entry')
    const index = await indexArchive(Readable.from([archive]), {partial: true})
    expect(index.images[0]!.layers[1]).toMatchObject({diffID: sha256(b), missing: true, path: 'b/layer.tar'})
  })

  it('layers and diff_ids that do not pair up, a missing config, a blob under the wrong name', async () => {
    const short = await makeTar([
      {content: config, name: `${hex(sha256(config))}.json`},
      {content: a, name: 'a/layer.tar'},
      {content: manifest(['a/layer.tar']), name: 'manifest.json'},
    ])
    expect((await failure(indexArchive(Readable.from([short])), ArchiveError)).message).toContain(
      'lists 1 layers, but its config',
    )
    const noConfig = await makeTar([{content: manifest([]), name: 'manifest.json'}])
    expect((await failure(indexArchive(Readable.from([noConfig])), ArchiveError)).message).toContain(
      'but the archive has no such entry',
    )
    const wrongBlob = await makeTar([
      {content: a, name: `blobs/sha256/${hex(sha256(b))}`},
      {content: json({manifests: [], schemaVersion: 2}), name: 'index.json'},
    ])
    expect((await failure(indexArchive(Readable.from([wrongBlob])), ArchiveError)).message).toContain(
      'does not hash to its name',
    )
  })

  it('follows nested OCI indexes, skips children left out, and takes names from the annotations', async () => {
    const layerA = a
    const cfg = configFor([sha256(layerA)])
    const imageManifest = json({
      config: {digest: sha256(cfg), mediaType: 'application/vnd.oci.image.config.v1+json', size: cfg.length},
      layers: [{digest: sha256(layerA), mediaType: 'application/vnd.oci.image.layer.v1.tar', size: layerA.length}],
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      schemaVersion: 2,
    })
    const absent = sha256('another platform')
    const nested = json({
      manifests: [
        {
          digest: sha256(imageManifest),
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          size: imageManifest.length,
        },
        {digest: absent, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10},
      ],
      mediaType: 'application/vnd.oci.image.index.v1+json',
      schemaVersion: 2,
    })
    const top = json({
      manifests: [
        {
          annotations: {
            'io.containerd.image.name': 'docker.io/library/app:1',
            'org.opencontainers.image.ref.name': '1',
          },
          digest: sha256(nested),
          mediaType: 'application/vnd.oci.image.index.v1+json',
          size: nested.length,
        },
        {
          annotations: {'org.opencontainers.image.ref.name': 'corp/app:2'},
          digest: sha256(nested),
          mediaType: 'application/vnd.oci.image.index.v1+json',
          size: nested.length,
        },
      ],
      schemaVersion: 2,
    })
    const archive = await makeTar([
      {content: '{"imageLayoutVersion":"1.0.0"}', name: 'oci-layout'},
      {content: layerA, name: `blobs/sha256/${hex(sha256(layerA))}`},
      {content: cfg, name: `blobs/sha256/${hex(sha256(cfg))}`},
      {content: imageManifest, name: `blobs/sha256/${hex(sha256(imageManifest))}`},
      {content: nested, name: `blobs/sha256/${hex(sha256(nested))}`},
      {content: top, name: 'index.json'},
    ])
    const index = await indexArchive(Readable.from([archive]))
    expect(index.format).toBe('oci')
    expect(index.images).toHaveLength(1)
    expect(index.images[0]).toMatchObject({
      configDigest: sha256(cfg),
      layers: [{diffID: sha256(layerA), digest: sha256(layerA), mediaType: 'application/vnd.oci.image.layer.v1.tar'}],
      // a containerd-store engine names the image by the index that index.json lists
      indexDigest: sha256(nested),
      manifestDigest: sha256(imageManifest),
      repoTags: ['app:1', 'corp/app:2'],
    })
  })
})

describe('archiveEntries', () => {
  it('yields every entry with its header; entries left unread are drained', async () => {
    const names: string[] = []
    for await (const {header} of archiveEntries(fixture('test_image_1.tar'))) names.push(header.name)
    expect(names).toEqual([
      `${hex(TEST_IMAGE_1.config)}.json`,
      '555b1001d54ed229f56990845856f080b0707348b26b3aa85aaf58d5570cdee0/VERSION',
      TEST_IMAGE_1.path,
      '555b1001d54ed229f56990845856f080b0707348b26b3aa85aaf58d5570cdee0/json',
      'repositories',
      'manifest.json',
    ])
  })

  it('gives each body in full', async () => {
    for await (const {header, stream} of archiveEntries(fixture('test_image_1.tar'))) {
      const body = await readAll(stream)
      expect(body.length).toBe(header.size)
      if (header.name === TEST_IMAGE_1.path) expect(sha256(body)).toBe(TEST_IMAGE_1.diffID)
    }
  })

  it('a body cut short fails with ARCHIVE_TRUNCATED naming the entry', async () => {
    const error = await (async () => {
      for await (const {stream} of archiveEntries(fixture('truncated.tar'), {source: 't.tar'})) await readAll(stream)
    })().catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(ArchiveError)
    expect((error as ArchiveError).code).toBe('ARCHIVE_TRUNCATED')
    expect((error as ArchiveError).message).toContain(TEST_IMAGE_1.path)
  })
})

describe('indexArchive: paths that leave the archive', () => {
  const a = layerBytes('a')
  const config = configFor([sha256(a)])
  const configName = `${hex(sha256(config))}.json`
  const valid = (layer = 'a/layer.tar', configPath = configName): TarEntry[] => [
    {content: config, name: configName},
    {content: a, name: 'a/layer.tar'},
    {content: json([{Config: configPath, Layers: [layer], RepoTags: ['app:1']}]), name: 'manifest.json'},
  ]

  it.each([
    [[{content: 'x', name: '../x'}], '"../x" climbs out of the archive (..)'],
    [[{content: 'x', name: 'a/../../x'}], '"a/../../x" climbs out of the archive (..)'],
    [[{content: 'x', name: '/x'}], '"/x" has an absolute path'],
    [[{linkname: '/etc/passwd', name: 's', type: 'symlink'}], '"s" is a symbolic link to /etc/passwd, outside'],
    [[{linkname: '../x', name: 's', type: 'symlink'}], '"s" is a symbolic link to ../x, outside'],
    [[{linkname: '../../x', name: 'a/s', type: 'symlink'}], '"a/s" is a symbolic link to ../../x, outside'],
    [[{linkname: '../x', name: 'a/h', type: 'link'}], '"a/h" is a hard link to ../x, outside'],
    [[{linkname: '/etc/passwd', name: 'h', type: 'link'}], '"h" is a hard link to /etc/passwd, outside'],
    [
      [
        {linkname: 'a', name: 'd', type: 'symlink'},
        {content: 'x', name: 'd/x'},
      ],
      '"d/x" is reached through the symbolic link d',
    ],
    [
      [
        {content: 'x', name: 'd/x'},
        {linkname: 'a', name: 'd', type: 'symlink'},
      ],
      '"d/x" is reached through the symbolic link d',
    ],
    [
      [
        {linkname: 'a', name: 'd', type: 'symlink'},
        {linkname: 'd/../../x', name: 's', type: 'symlink'},
      ],
      '"s" leads to d/../../x through the symbolic link d',
    ],
  ] as Array<[TarEntry[], string]>)('refuses %j: ARCHIVE_UNSAFE naming the entry', async (extra, message) => {
    const error = await failure(
      indexArchive(Readable.from([await makeTar([...valid(), ...extra])]), {source: 'f.tar'}),
      ArchiveError,
    )
    expect(error.code).toBe('ARCHIVE_UNSAFE')
    expect(error.exit).toBe(2)
    expect(error.message).toContain(`f.tar: entry ${message}`)
  })

  it.each([
    ['../a/layer.tar', 'a/layer.tar', 'manifest.json (image 1) layer 1 names "../a/layer.tar", outside the archive'],
    ['/a/layer.tar', 'a/layer.tar', 'manifest.json (image 1) layer 1 names "/a/layer.tar", outside the archive'],
    ['a/layer.tar', `/${configName}`, `manifest.json (image 1) Config names "/${configName}", outside the archive`],
  ])('refuses manifest.json naming %s / %s outside', async (layer, configPath, message) => {
    const error = await failure(
      indexArchive(Readable.from([await makeTar(valid(layer, configPath))]), {source: 'f.tar'}),
      ArchiveError,
    )
    expect(error.code).toBe('ARCHIVE_UNSAFE')
    expect(error.message).toBe(`f.tar: ${message}`)
  })

  it('keeps symbolic links that stay inside, as Docker 20.10 writes them between layers', async () => {
    const index = await indexArchive(
      Readable.from([
        await makeTar([
          ...valid('b/layer.tar'),
          {name: 'b/', type: 'directory'},
          {linkname: '../a/layer.tar', name: 'b/layer.tar', type: 'symlink'},
          {linkname: 'a/layer.tar', name: 'c', type: 'link'},
        ]),
      ]),
    )
    expect(index.images[0]!.layers[0]).toMatchObject({aliases: ['b/layer.tar', 'c'], path: 'a/layer.tar'})
  })
})
