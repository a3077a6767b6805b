// The proof of a copy against two directories of this machine, each listed and hashed by this machine's own
// tools as a host's would be: equal trees pass, any difference fails naming the file, and the differences that a
// source written to during the copy explains are told apart from those it does not.
import {localShell, TransshipError} from '@transship/kit'
import {mkdir, mkdtemp, rm, utimes, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import type {VolumeEnd} from '../../src/access/volume-end.js'

import {failure} from '../../../../test/helpers/failure.js'
import {proveEqual} from '../../src/volume-proof.js'

let base: string
beforeEach(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'transship-proof-'))
})
afterEach(async () => {
  await rm(base, {force: true, recursive: true})
})

function end(root: string, tools: Partial<VolumeEnd['tools']> = {}): VolumeEnd {
  return {
    access: 'root',
    async close() {},
    describe: 'root on this machine',
    host: 'here',
    limits: [],
    root,
    shell: localShell(''),
    tools: {
      findPrintf: true,
      getfattr: true,
      gnuTar: true,
      openssl: true,
      rsync: false,
      sha256sum: true,
      zstd: false,
      ...tools,
    },
  }
}

/** two equal trees: a/, b.txt, a/c.bin, all with the same times */
async function twins(): Promise<[string, string]> {
  const roots: string[] = []
  for (const name of ['source', 'destination']) {
    const root = path.join(base, name)
    await mkdir(path.join(root, 'a'), {recursive: true})
    await writeFile(path.join(root, 'b.txt'), 'bee\n')
    await writeFile(path.join(root, 'a', 'c.bin'), Buffer.alloc(70_000, 7))
    for (const item of ['a/c.bin', 'b.txt', 'a', '.']) await utimes(path.join(root, item), 1_600_000_000, 1_600_000_000)
    roots.push(root)
  }

  return [roots[0]!, roots[1]!]
}

const {signal} = new AbortController()
const prove = (source: VolumeEnd, destination: VolumeEnd, options: {hash: 'all' | 'none' | string[]; since?: string}) =>
  proveEqual(
    {end: source, name: 'src'},
    {end: destination, name: 'dst'},
    {hash: options.hash, signal, sourceChangingSince: options.since},
  )

describe('proveEqual', () => {
  it('passes equal trees, every file hashed on both sides', async () => {
    const [source, destination] = await twins()
    const proof = await prove(end(source), end(destination), {hash: 'all'})
    expect(proof.comparison.equal).toBe(true)
    expect(proof.hashed).toBe(2)
    expect(proof.changedDuringCopy).toEqual([])
  })

  it('fails on a content difference that size and mtime do not show, naming the file (exit 5)', async () => {
    const [source, destination] = await twins()
    await writeFile(path.join(destination, 'b.txt'), 'BEE\n')
    await utimes(path.join(destination, 'b.txt'), 1_600_000_000, 1_600_000_000)
    const error = await failure(prove(end(source), end(destination), {hash: 'all'}), TransshipError)
    expect(error).toMatchObject({code: 'VOLUME_VERIFY_FAILED', exit: 5})
    expect(error.message).toContain('b.txt: digest')
    // the files sent only: b.txt was not sent, so its content is not compared
    await expect(prove(end(source), end(destination), {hash: ['a/c.bin']})).resolves.toMatchObject({hashed: 1})
  })

  it('fails on metadata alone, hashing nothing', async () => {
    const [source, destination] = await twins()
    await utimes(path.join(destination, 'a'), 1_600_000_001, 1_600_000_001)
    const error = await failure(prove(end(source), end(destination), {hash: 'none'}), TransshipError)
    expect(error.message).toMatch(
      /^dst on here differs from src on here:\na: mtime 1600000000\.000000000 → 1600000001\.000000000$/,
    )
  })

  it('tells apart what a source written to during the copy changed; fails on anything else', async () => {
    const [source, destination] = await twins()
    await writeFile(path.join(source, 'b.txt'), 'bee, and more\n') // written after the copy started (now)
    const since = String(1_700_000_000)
    const proof = await prove(end(source), end(destination), {hash: 'all', since})
    expect(proof.changedDuringCopy).toEqual(['b.txt'])
    // a difference the source's writes do not explain: an old file changed at the destination
    await writeFile(path.join(destination, 'a', 'c.bin'), Buffer.alloc(70_000, 8))
    await utimes(path.join(destination, 'a', 'c.bin'), 1_600_000_000, 1_600_000_000)
    const error = await failure(prove(end(source), end(destination), {hash: 'all', since}), TransshipError)
    expect(error.code).toBe('VOLUME_VERIFY_FAILED')
  })

  it('hashes with sha256sum where openssl is missing, and compares no contents where neither is', async () => {
    const [source, destination] = await twins()
    await expect(prove(end(source, {openssl: false}), end(destination), {hash: 'all'})).resolves.toMatchObject({
      hashed: 2,
    })
    await writeFile(path.join(destination, 'b.txt'), 'BEE\n')
    await utimes(path.join(destination, 'b.txt'), 1_600_000_000, 1_600_000_000)
    const blind = end(destination, {openssl: false, sha256sum: false})
    await expect(prove(end(source), blind, {hash: 'all'})).resolves.toMatchObject({hashed: 0})
  })
})
