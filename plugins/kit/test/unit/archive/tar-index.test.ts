import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {archive, entry, file, gnuLong} from '../../../../../test/helpers/raw-tar.js'
import {indexTarFile} from '../../../src/archive/tar-index.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tar-index-test-'))
})
afterAll(async () => {
  await rm(dir, {force: true, recursive: true})
})

describe('indexTarFile', () => {
  it('says where each entry content is, by normalised name, reading headers only', async () => {
    const big = Buffer.alloc(200_000, 'b')
    const tar = path.join(dir, 'a.tar')
    await writeFile(
      tar,
      archive(
        file('./blobs/sha256/big', big),
        gnuLong('L', `blobs/${'l'.repeat(150)}`),
        file('short', 'long named'),
        entry({name: 'x'}, Buffer.from('pax named'), {path: 'manifest.json'}),
        entry({linkname: 'blobs/sha256/big', name: 'link', type: '1'}),
      ),
    )
    const index = await indexTarFile(tar)
    expect([...index.keys()]).toEqual(['blobs/sha256/big', `blobs/${'l'.repeat(150)}`, 'manifest.json', 'link'])
    const bytes = await readFile(tar)
    for (const [name, content] of [
      ['blobs/sha256/big', big],
      [`blobs/${'l'.repeat(150)}`, Buffer.from('long named')],
      ['manifest.json', Buffer.from('pax named')],
    ] as const) {
      const {offset, size, type} = index.get(name)!
      expect(type).toBe('0')
      expect(bytes.subarray(offset, offset + size)).toEqual(content)
    }

    expect(index.get('link')).toMatchObject({linkname: 'blobs/sha256/big', size: 0, type: '1'})
  })

  it('refuses a file cut in the middle of an entry, naming it', async () => {
    const tar = path.join(dir, 'cut.tar')
    await writeFile(tar, archive(file('a', Buffer.alloc(100_000))).subarray(0, 70_000))
    await expect(indexTarFile(tar)).rejects.toMatchObject({
      code: 'ARCHIVE_TRUNCATED',
      message: `${tar} is truncated: it ends in the middle of entry "a" (69488 of its 100000 bytes)`,
    })
  })
})
