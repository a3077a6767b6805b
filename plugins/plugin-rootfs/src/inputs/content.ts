/**
 * Digests of what a tarball or directory source holds, for the inputs record: a changed tarball or a changed
 * file in the directory makes the image out of date. Both are streamed (no size is trusted, nothing is kept).
 */
import {UsageError} from '@transship/kit'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {Digester} from '../output/layer-blob.js'
import {writeLayer} from '../pack/layer-tar.js'
import {DirectorySource} from '../source/directory.js'

/** sha256 of the tarball's bytes as stored; undefined for what cannot be read twice (stdin, a pipe). */
export async function tarballDigest(file: string, signal: AbortSignal): Promise<string | undefined> {
  if (file === '-') return undefined
  const info = await stat(file).catch((error: unknown) => {
    throw missing(file, error)
  })
  if (!info.isFile()) return undefined
  const hash = createHash('sha256')
  await pipeline(createReadStream(file), hash, {signal})
  return `sha256:${hash.digest('hex')}`
}

/**
 * sha256 of the directory's tree as transship packs it, before cleanup and clamping: every path, type, mode,
 * owner, time, link, device number, xattr and content.
 */
export async function directoryDigest(dir: string, signal: AbortSignal): Promise<string> {
  const info = await stat(dir).catch((error: unknown) => {
    throw missing(dir, error)
  })
  if (!info.isDirectory()) {
    throw new UsageError(`${dir} is not a directory`, {code: 'FILE_NOT_FOUND'})
  }

  const source = new DirectorySource(dir)
  const digester = new Digester()
  const sink = new Writable({
    write(_chunk, _encoding, callback) {
      callback()
    },
  })
  await pipeline(writeLayer(source.entries(signal), signal), digester, sink, {signal})
  return digester.digest()
}

function missing(file: string, error: unknown): UsageError {
  const {code} = error as NodeJS.ErrnoException
  return new UsageError(
    code === 'ENOENT' ? `${file} does not exist` : `${file} cannot be read: ${(error as Error).message}`,
    {cause: error, code: code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_NOT_READABLE'},
  )
}
