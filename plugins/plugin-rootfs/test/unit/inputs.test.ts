import type {AddressInfo} from 'node:net'

import {isTransshipError} from '@transship/kit'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import zlib from 'node:zlib'
import tar from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {BuildRequest} from '../../src/build.js'

import {imageConfig} from '../../src/image/config.js'
import {sourceDigest} from '../../src/inputs/content.js'
import {mirrorReleaseDate} from '../../src/inputs/mirror-release.js'
import {
  formatRecord,
  inputChanges,
  INPUTS_LABEL,
  inputsRecord,
  parseRecord,
  withRecord,
} from '../../src/inputs/record.js'
import {wantedInputs} from '../../src/inputs/wanted.js'
import {writeOciLayout} from '../../src/output/oci-layout.js'
import {outputState} from '../../src/output/recorded.js'

const RELEASE = 'Sat, 11 Jan 2025 10:56:43 UTC'
const RELEASE_SECONDS = Date.parse(RELEASE) / 1000
const never = new AbortController().signal

let work: string
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'rootfs-inputs-test-'))
})
afterAll(async () => {
  await rm(work, {force: true, recursive: true})
})

function debootstrap(overrides: Partial<Extract<BuildRequest['input'], {kind: 'bootstrap'}>['bootstrap']> = {}) {
  return {
    config: {cmd: ['bash']},
    image: 'base/debian:bookworm',
    input: {
      bootstrap: {
        include: ['iputils-ping'],
        suite: 'bookworm',
        tool: 'debootstrap' as const,
        variant: 'minbase',
        ...overrides,
      },
      kind: 'bootstrap' as const,
    },
    outputs: [{host: 'local', kind: 'engine' as const}],
  } satisfies BuildRequest
}

async function tarball(files: Record<string, string>, mtime = 1_700_000_000): Promise<Buffer> {
  const packer = tar.pack()
  const out = buffer(packer as unknown as Readable)
  for (const [name, content] of Object.entries(files)) {
    await new Promise<void>((resolve, reject) => {
      packer.entry({mode: 0o644, mtime: new Date(mtime * 1000), name}, content, (error) =>
        error ? reject(error) : resolve(),
      )
    })
  }

  packer.finalize()
  return out
}

describe('the inputs record', () => {
  it('is the same text for the same inputs, and reads back', () => {
    const record = inputsRecord(debootstrap(), {release: RELEASE_SECONDS})
    expect(record).toMatchObject({
      epoch: null,
      include: ['iputils-ping'],
      mirror: 'http://deb.debian.org/debian',
      release: '2025-01-11T10:56:43.000Z',
      source: 'debootstrap',
      suite: 'bookworm',
      variant: 'minbase',
    })
    // the mirror's spelling with a trailing slash is the same mirror
    const again = inputsRecord(debootstrap({mirror: 'http://deb.debian.org/debian/'}), {release: RELEASE_SECONDS})
    expect(formatRecord(again)).toBe(formatRecord(record))
    expect(parseRecord(formatRecord(record))).toEqual(JSON.parse(formatRecord(record)))
    expect(parseRecord('not json')).toBeUndefined()
    expect(parseRecord('[1]')).toBeUndefined()
  })

  it('says what changed: the Release date, a package list, the config, the epoch', () => {
    const before = inputsRecord(debootstrap(), {release: RELEASE_SECONDS})
    expect(inputChanges(before, inputsRecord(debootstrap(), {release: RELEASE_SECONDS}))).toEqual([])
    expect(inputChanges(before, inputsRecord(debootstrap(), {release: RELEASE_SECONDS + 86_400}))).toEqual([
      "the mirror's Release date changed (2025-01-11T10:56:43.000Z → 2025-01-12T10:56:43.000Z)",
    ])
    expect(
      inputChanges(before, inputsRecord(debootstrap({include: ['iputils-ping', 'curl']}), {release: RELEASE_SECONDS})),
    ).toEqual(['include changed (iputils-ping → iputils-ping, curl)'])
    const changed = {...debootstrap(), config: {cmd: ['sh']}, epoch: 1_700_000_000}
    expect(inputChanges(before, inputsRecord(changed, {release: RELEASE_SECONDS}))).toEqual([
      'epoch changed (none → 1700000000)',
      'the image config changed',
    ])
    const tar = inputsRecord({...debootstrap(), input: {kind: 'tarball', path: '/r/rootfs.tar'}}, {content: 'sha256:1'})
    expect(inputChanges(before, tar)).toEqual(['the source changed (debootstrap → tarball)'])
    expect(inputChanges(tar, {...tar, content: 'sha256:2'})).toEqual(["the tarball's content changed"])
    expect(inputChanges({...tar, version: 0}, tar)).toEqual([
      'its inputs were recorded by another version of transship',
    ])
  })

  it('goes into the image config as a label, beside the labels of the recipe', () => {
    const record = inputsRecord(debootstrap(), {release: RELEASE_SECONDS})
    const spec = withRecord({labels: {team: 'base'}}, record)
    const config = JSON.parse(
      imageConfig({architecture: 'amd64', createdBy: 'x', diffIDs: ['sha256:0'], epoch: 1, spec}).toString(),
    ) as {config: {Labels: Record<string, string>}}
    expect(config.config.Labels).toEqual({[INPUTS_LABEL]: formatRecord(record), team: 'base'})
  })
})

describe('the digest of a tarball or directory', () => {
  it('follows the files, not how the tarball was written', async () => {
    const files = {'etc/motd': 'hello\n', 'etc/version': '1\n'}
    const plain = path.join(work, 'plain.tar')
    const gzipped = path.join(work, 'gzipped.tar.gz')
    const changed = path.join(work, 'changed.tar')
    const touched = path.join(work, 'touched.tar')
    await writeFile(plain, await tarball(files))
    await writeFile(gzipped, zlib.gzipSync(await tarball(files), {level: 1}))
    await writeFile(changed, await tarball({...files, 'etc/version': '2\n'}))
    await writeFile(touched, await tarball(files, 1_700_000_001))
    const digest = await sourceDigest({kind: 'tarball', path: plain}, never)
    expect(digest).toMatch(/^sha256:[\da-f]{64}$/)
    expect(await sourceDigest({kind: 'tarball', path: gzipped}, never)).toBe(digest)
    expect(await sourceDigest({kind: 'tarball', path: changed}, never)).not.toBe(digest)
    expect(await sourceDigest({kind: 'tarball', path: touched}, never)).not.toBe(digest)
    // stdin can be read once: no digest, so no comparison
    expect(await sourceDigest({kind: 'tarball', path: '-'}, never)).toBeUndefined()
  })

  it('follows the files of a directory', async () => {
    const dir = path.join(work, 'tree')
    await mkdir(path.join(dir, 'etc'), {recursive: true})
    await writeFile(path.join(dir, 'etc', 'motd'), 'hello\n')
    const first = await sourceDigest({kind: 'directory', path: dir}, never)
    expect(await sourceDigest({kind: 'directory', path: dir}, never)).toBe(first)
    await writeFile(path.join(dir, 'etc', 'motd'), 'hullo\n')
    expect(await sourceDigest({kind: 'directory', path: dir}, never)).not.toBe(first)
  })

  it('is a usage error for a missing source', async () => {
    const error = await sourceDigest({kind: 'tarball', path: path.join(work, 'nope.tar')}, never).catch(
      (error_: unknown) => error_,
    )
    expect(isTransshipError(error) && error.code).toBe('FILE_NOT_FOUND')
  })

  it('is a usage error for a directory source that is a file', async () => {
    const file = path.join(work, 'not-a-directory')
    await writeFile(file, 'x')
    const error = await sourceDigest({kind: 'directory', path: file}, never).catch((error_: unknown) => error_)
    expect(isTransshipError(error) && [error.code, error.exit]).toEqual(['FILE_WRONG_TYPE', 2])
  })
})

describe("the mirror's Release date", () => {
  let server: Server
  let base: string
  const requests: string[] = []
  const served: Record<string, (response: import('node:http').ServerResponse) => void> = {}

  beforeAll(async () => {
    server = createServer((request, response) => {
      requests.push(`${request.url} ${request.headers.range ?? ''}`)
      const handler = served[request.url ?? '']
      if (handler) handler(response)
      else response.writeHead(404).end()
    })
    await new Promise<void>((resolve) => {
      server.listen(0, '127.0.0.1', resolve)
    })
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => {
      server.close(resolve)
    })
  })

  it('reads InRelease, else Release, asking for its head only', async () => {
    served['/debian/dists/bookworm/Release'] = (response) =>
      response.end(`Origin: Debian\nSuite: stable\nDate: ${RELEASE}\nSHA256:\n`)
    requests.length = 0
    expect(await mirrorReleaseDate(`${base}/debian`, 'bookworm', never)).toBe(RELEASE_SECONDS)
    expect(requests).toEqual([
      '/debian/dists/bookworm/InRelease bytes=0-16383',
      '/debian/dists/bookworm/Release bytes=0-16383',
    ])
  })

  it('stops reading a server that sends more than the head', async () => {
    served['/endless/dists/bookworm/InRelease'] = (response) => {
      response.write(`Date: ${RELEASE}\n`)
      // never ends: only the head is read, then the request is dropped
      const timer = setInterval(() => response.write(Buffer.alloc(64 * 1024, 0x61)), 5)
      response.on('close', () => clearInterval(timer))
    }

    expect(await mirrorReleaseDate(`${base}/endless/`, 'bookworm', never)).toBe(RELEASE_SECONDS)
  })

  it('says when it cannot be read', async () => {
    served['/broken/dists/bookworm/InRelease'] = (response) => response.writeHead(500).end()
    const error = await mirrorReleaseDate(`${base}/broken`, 'bookworm', never).catch((error_: unknown) => error_)
    expect(isTransshipError(error) && error.code).toBe('ROOTFS_MIRROR_UNREACHABLE')
    expect((error as Error).message).toContain('HTTP 500')
    const missing = await mirrorReleaseDate(`${base}/none`, 'bookworm', never).catch((error_: unknown) => error_)
    expect(isTransshipError(missing) && missing.code).toBe('ROOTFS_MIRROR_UNREACHABLE')
  })

  it('reads a file: mirror', async () => {
    const mirror = path.join(work, 'mirror')
    await mkdir(path.join(mirror, 'dists', 'bookworm'), {recursive: true})
    await writeFile(path.join(mirror, 'dists', 'bookworm', 'InRelease'), `Date: ${RELEASE}\n`)
    expect(await mirrorReleaseDate(`file://${mirror}`, 'bookworm', never)).toBe(RELEASE_SECONDS)
  })

  it('gives plan the record to compare, or why it cannot', async () => {
    served['/plan/dists/bookworm/InRelease'] = (response) => response.end(`Date: ${RELEASE}\n`)
    const wanted = await wantedInputs(debootstrap({mirror: `${base}/plan`}), never)
    expect(wanted).toEqual({
      record: inputsRecord(debootstrap({mirror: `${base}/plan`}), {release: RELEASE_SECONDS}),
    })
    const unknown = await wantedInputs(debootstrap({mirror: `${base}/gone`}), never)
    expect(unknown).toEqual({unknown: expect.stringContaining('cannot read the Release date')})
  })
})

describe('what an OCI layout output holds', () => {
  it('finds the image by its name with its record, and its compression', async () => {
    const dir = path.join(work, 'oci')
    const tag = 'base/debian:bookworm'
    const hosts = {} as Parameters<typeof outputState>[2]['hosts']
    expect(await outputState({kind: 'oci', path: dir}, tag, {compression: 'gzip', hosts, signal: never})).toEqual({
      reason: 'not built yet',
      state: 'absent',
    })

    const record = formatRecord(inputsRecord(debootstrap(), {release: RELEASE_SECONDS}))
    const layer = Readable.from([await tarball({'etc/motd': 'hi\n'})])
    await writeOciLayout(dir, layer, {
      compression: 'gzip',
      config: (diffID) =>
        imageConfig({
          architecture: 'amd64',
          createdBy: 'test',
          diffIDs: [diffID],
          epoch: 1,
          spec: {labels: {[INPUTS_LABEL]: record}},
        }),
      tags: [tag],
    })
    expect(await outputState({kind: 'oci', path: dir}, tag, {compression: 'gzip', hosts, signal: never})).toEqual({
      label: record,
      state: 'present',
    })
    expect(await outputState({kind: 'oci', path: dir}, tag, {compression: 'none', hosts, signal: never})).toEqual({
      reason: 'its layer is not compressed with none',
      state: 'absent',
    })
    expect(
      await outputState({kind: 'oci', path: dir}, 'base/debian:trixie', {compression: 'gzip', hosts, signal: never}),
    ).toEqual({reason: 'the layout does not hold base/debian:trixie', state: 'absent'})
  })
})
