// The static checks on an image archive, without an engine: layers applied in order with their whiteouts,
// symlinks resolved inside the image, hard links, and the usage errors for what needs an engine.
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import tar from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {VerifyConfig} from '../../src/config/types.js'

import {sha256} from '../../../../test/helpers/digests.js'
import {runArchiveVerification} from '../../src/run/archive-driver.js'

type Entry = Partial<tar.Header> & {content?: string; name: string}

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  pack.on('data', (chunk) => chunks.push(chunk as Buffer))
  const done = new Promise<void>((resolve) => {
    pack.on('end', () => resolve())
  })
  for (const {content, ...header} of entries) {
    await new Promise<void>((resolve, reject) => {
      const callback = (error?: Error | null) => (error ? reject(error) : resolve())
      if (content === undefined) pack.entry({mtime: new Date(0), ...header}, callback)
      else pack.entry({mtime: new Date(0), ...header}, content, callback)
    })
  }

  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

describe('verify on an image archive', () => {
  let dir: string
  let archive: string

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'transship-verify-archive-'))
    const lower = await tarOf([
      {mode: 0o755, name: 'etc/', type: 'directory'},
      {content: 'root:x:0:0:root:/root:/bin/sh\n', mode: 0o644, name: 'etc/passwd'},
      {content: 'gone\n', name: 'etc/removed'},
      {mode: 0o755, name: 'opt/', type: 'directory'},
      {mode: 0o755, name: 'opt/old/', type: 'directory'},
      {content: 'old\n', name: 'opt/old/file'},
      {mode: 0o755, name: 'usr/share/doc/bad/', type: 'directory'},
      {content: 'License: WTFPL\n', name: 'usr/share/doc/bad/copyright'},
    ])
    const upper = await tarOf([
      {content: '', name: 'etc/.wh.removed'},
      {content: '', name: 'opt/old/.wh..wh..opq'},
      {content: 'new\n', gid: 1001, mode: 0o750, name: 'opt/old/new', uid: 1000},
      {linkname: '/opt/old', name: 'app', type: 'symlink'},
      {linkname: '../etc/passwd', name: 'opt/passwd', type: 'symlink'},
      {linkname: 'opt/old/new', name: 'hard', type: 'link'},
      {content: '', name: 'usr/share/doc/.wh.bad'},
      {mode: 0o755, name: 'usr/share/doc/good/', type: 'directory'},
      {content: 'License: MIT\n', name: 'usr/share/doc/good/copyright'},
    ])
    const config = JSON.stringify({
      architecture: 'amd64',
      config: {Cmd: ['sh'], Env: ['APP=/opt/old'], ExposedPorts: {'80/tcp': {}}, User: '1000'},
      os: 'linux',
      // eslint-disable-next-line camelcase -- the image config's field
      rootfs: {diff_ids: [sha256(lower), sha256(upper)], type: 'layers'},
    })
    const manifest = JSON.stringify([{Config: 'config.json', Layers: ['lower.tar', 'upper.tar'], RepoTags: ['t:1']}])
    archive = path.join(dir, 'image.tar')
    await writeFile(
      archive,
      await tarOf([
        {content: config, name: 'config.json'},
        {content: lower.toString('latin1'), name: 'lower.tar'},
        {content: upper.toString('latin1'), name: 'upper.tar'},
        {content: manifest, name: 'manifest.json'},
      ]),
    )
  })

  afterAll(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  it('applies the layers in order, with whiteouts, symlinks and hard links', async () => {
    const config: VerifyConfig = {
      fileContentTests: [
        {expectedContents: ['^root:'], name: 'through a relative symlink', path: '/opt/passwd'},
        {expectedContents: ['^new\n$'], name: 'through a symlinked directory', path: '/app/new'},
        {expectedContents: ['^new\n$'], name: 'a hard link', path: '/hard'},
      ],
      fileExistenceTests: [
        {name: 'whited out', path: '/etc/removed', shouldExist: false},
        {name: 'opaque directory', path: '/opt/old/file', shouldExist: false},
        {gid: 1001, name: 'upper file', path: '$APP/new', permissions: '-rwxr-x---', uid: 1000},
        {name: 'symlink itself', path: '/app', permissions: 'Lrwxrwxrwx'},
        {name: 'root', path: '/', permissions: 'drwxr-xr-x', uid: 0},
        {name: 'fails: absent', path: '/etc/removed'},
      ],
      licenseTests: [{debian: true}],
      metadataTest: {cmd: ['sh'], exposedPorts: ['80'], user: '1000'},
      schemaVersion: '2.0.0',
    }
    const report = await runArchiveVerification(`docker-archive:${archive}`, config, {
      signal: AbortSignal.timeout(10_000),
    })
    expect(report.results.map((result) => [result.name, result.status, result.diff?.[0]])).toEqual([
      ['Metadata Test', 'pass', undefined],
      ['whited out', 'pass', undefined],
      ['opaque directory', 'pass', undefined],
      ['upper file', 'pass', undefined],
      ['symlink itself', 'pass', undefined],
      ['root', 'pass', undefined],
      ['fails: absent', 'fail', 'expected /etc/removed to exist, got: no such file or directory'],
      ['through a relative symlink', 'pass', undefined],
      ['through a symlinked directory', 'pass', undefined],
      ['a hard link', 'pass', undefined],
      // the bad package was whited out
      ['License Test', 'pass', undefined],
    ])
    expect(report.imageId).toMatch(/^sha256:[\da-f]{64}$/)
  })

  it('refuses command tests, naming them, and bind mounts, as usage errors', async () => {
    const error = await runArchiveVerification(
      `docker-archive:${archive}`,
      {commandTests: [{command: 'true', name: 'runs'}], schemaVersion: '2.0.0'},
      {signal: AbortSignal.timeout(10_000)},
    ).catch((error_: unknown) => error_)
    expect(error).toMatchObject({code: 'VERIFY_NEEDS_ENGINE', exit: 2})
    expect((error as Error).message).toContain('commandTests "runs"')
    const binds = await runArchiveVerification(
      `docker-archive:${archive}`,
      {containerRunOptions: {bindMounts: ['/a:/b']}, schemaVersion: '2.0.0'},
      {signal: AbortSignal.timeout(10_000)},
    ).catch((error_: unknown) => error_)
    expect(binds).toMatchObject({code: 'VERIFY_NEEDS_ENGINE', exit: 2})
  })

  it('says what is missing', async () => {
    const error = await runArchiveVerification(
      `docker-archive:${path.join(dir, 'nope.tar')}`,
      {schemaVersion: '2.0.0'},
      {signal: AbortSignal.timeout(10_000)},
    ).catch((error_: unknown) => error_)
    expect(error).toMatchObject({code: 'VERIFY_INPUT', exit: 2})
  })
})
