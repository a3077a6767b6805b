/**
 * The digest of what a tarball or directory source holds, for the inputs record: sha256 of its tree as
 * transship reads it (every path, type, mode, owner, time, link, device number, xattr and content), before
 * cleanup and clamping. A tarball written again with the same files (another gzip header, another tar
 * program) keeps its digest; a changed file changes it. Streamed: nothing is kept, no size is trusted.
 */
import {UsageError} from '@transship/kit'
import {stat} from 'node:fs/promises'
import {Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {RootfsSource} from '../source/entry.js'

import {Digester} from '../output/layer-blob.js'
import {writeLayer} from '../pack/layer-tar.js'
import {DirectorySource} from '../source/directory.js'
import {openTarballSource} from '../source/tarball.js'

export async function contentDigest(source: RootfsSource, signal: AbortSignal): Promise<string> {
  const digester = new Digester()
  const discard = new Writable({
    write(_chunk, _encoding, callback) {
      callback()
    },
  })
  await pipeline(writeLayer(source.entries(signal), signal), digester, discard, {signal})
  return digester.digest()
}

/** Whether the tarball can be read only once (stdin, a pipe): it cannot be compared before a build. */
export async function readOnce(file: string): Promise<boolean> {
  if (file === '-') return true
  const info = await stat(file).catch((error: unknown) => {
    throw missing(file, error)
  })
  return !info.isFile()
}

/** The digest of a tarball or directory named by a recipe, read at plan time; undefined for stdin or a pipe. */
export async function sourceDigest(
  input: {kind: 'directory' | 'tarball'; path: string},
  signal: AbortSignal,
): Promise<string | undefined> {
  if (input.kind === 'tarball') {
    if (await readOnce(input.path)) return undefined
    await using source = await openTarballSource(input.path, {signal})
    return contentDigest(source, signal)
  }

  const info = await stat(input.path).catch((error: unknown) => {
    throw missing(input.path, error)
  })
  if (!info.isDirectory()) throw new UsageError(`${input.path} is not a directory`, {code: 'FILE_WRONG_TYPE'})
  return contentDigest(new DirectorySource(input.path), signal)
}

function missing(file: string, error: unknown): UsageError {
  const {code} = error as NodeJS.ErrnoException
  return new UsageError(
    code === 'ENOENT' ? `${file} does not exist` : `${file} cannot be read: ${(error as Error).message}`,
    {cause: error, code: code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE'},
  )
}
