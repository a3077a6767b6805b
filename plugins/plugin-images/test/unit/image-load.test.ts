import type {Progress} from '@transship/kit'

import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {fixtures} from '../../../../test/helpers/archive-fixtures.js'
import {checkArchiveFile} from '../../src/image-load.js'

const progress: Progress = {task: () => ({done() {}, tick() {}, total() {}})}

describe('checking an archive file before any host is contacted', () => {
  let work: string
  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'image-load-test-'))
  })
  afterAll(async () => {
    await rm(work, {force: true, recursive: true})
  })

  it('refuses a missing file (FILE_NOT_FOUND), a directory (FILE_WRONG_TYPE) and a file that is no archive', async () => {
    const {signal} = new AbortController()
    await expect(checkArchiveFile(path.join(work, 'none.tar'), progress, signal)).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      exit: 2,
    })
    await expect(checkArchiveFile(work, progress, signal)).rejects.toMatchObject({code: 'FILE_WRONG_TYPE', exit: 2})
    const text = path.join(work, 'notes.txt')
    await writeFile(text, 'not an archive at all, but long enough to be looked at as one. '.repeat(20))
    await expect(checkArchiveFile(text, progress, signal)).rejects.toMatchObject({code: 'ARCHIVE_NOT_IMAGE', exit: 2})
  })

  it('reads a sound archive whole: its compression, layout and images', async () => {
    const file = path.join(fixtures, 'hello-world-v25.tar')
    const checked = await checkArchiveFile(file, progress, new AbortController().signal)
    expect(checked).toMatchObject({compression: 'none', file})
    expect(checked.index.images.length).toBeGreaterThan(0)
  })
})
