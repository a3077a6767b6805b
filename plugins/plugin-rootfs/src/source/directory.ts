/**
 * A rootfs directory on this machine (an existing one, or what debootstrap just made) as layer entries, in
 * GNU tar's `--sort=name` order: each directory, then its entries sorted by the bytes of their names,
 * depth first. Owners are the numeric ids on disk; xattrs (file capabilities) are read with the native
 * addon; a file with several names is written once and then as hardlinks, the first name in that order
 * holding the content.
 */
import type {Logger} from '@transship/kit'

import {UsageError} from '@transship/kit'
import {nativeStatus, readXattrs, requireNative} from '@transship/kit/native'
import {createReadStream, readFileSync, type Stats} from 'node:fs'
import {lstat, readdir, readlink} from 'node:fs/promises'
import path from 'node:path'

import type {EntryType, RootfsEntry, RootfsSource} from './entry.js'

const NAME_DECODER = new TextDecoder('utf8', {fatal: true})

/**
 * Files up to this size are read in one synchronous call: most of a rootfs is small files from the page
 * cache, where a stream (or an async read through the thread pool) each costs more than the read itself.
 */
const SMALL_FILE = 64 * 1024

/** The metadata of one file; the content is read when the layer is written. */
type Listed = Omit<RootfsEntry, 'open'>

function entryType(stats: Stats): EntryType | undefined {
  if (stats.isFile()) return 'file'
  if (stats.isDirectory()) return 'directory'
  if (stats.isSymbolicLink()) return 'symlink'
  if (stats.isCharacterDevice()) return 'character-device'
  if (stats.isBlockDevice()) return 'block-device'
  if (stats.isFIFO()) return 'fifo'
  // sockets: GNU tar skips them too; they are meaningless in an image
  return undefined
}

function deviceNumbers(rdev: number): {devmajor: number; devminor: number} {
  const addon = requireNative('device nodes cannot be packed')
  return {devmajor: addon.major(rdev), devminor: addon.minor(rdev)}
}

export interface DirectorySourceOptions {
  /** for messages and the image history; defaults to `directory PATH` */
  description?: string
  log?: Logger
}

export class DirectorySource implements RootfsSource {
  readonly description: string
  private listed: Listed[] | undefined
  private xattrsLost: string | undefined

  constructor(
    readonly root: string,
    private readonly options: DirectorySourceOptions = {},
  ) {
    this.description = options.description ?? `directory ${root}`
    const native = nativeStatus()
    if (!native.available) this.xattrsLost = native.reason
  }

  async *entries(signal?: AbortSignal): AsyncIterable<RootfsEntry> {
    this.listed ??= await this.list(signal)
    for (const entry of this.listed) {
      const file = path.join(this.root, entry.path)
      if (entry.type !== 'file') {
        yield entry
        continue
      }

      const content: Pick<RootfsEntry, 'open' | 'readAll'> = {
        open: () => createReadStream(file, {highWaterMark: 1024 * 1024, signal}),
      }
      if (entry.size <= SMALL_FILE) content.readAll = () => readFileSync(file)
      yield {...entry, ...content}
    }
  }

  private async list(signal?: AbortSignal): Promise<Listed[]> {
    let rootStats: Stats
    try {
      rootStats = await lstat(this.root)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new UsageError(`the rootfs directory ${this.root} does not exist`, {code: 'ROOTFS_NOT_FOUND'})
      }

      throw error
    }

    if (!rootStats.isDirectory()) {
      throw new UsageError(`${this.root} is not a directory`, {
        code: 'ROOTFS_NOT_A_DIRECTORY',
        suggestions: ['give a rootfs tarball with --tarball, or the directory that holds the rootfs'],
      })
    }

    if (this.xattrsLost) {
      this.options.log?.warn(
        `xattrs are not read, so file capabilities (e.g. cap_net_raw on ping) are lost: ${this.xattrsLost}`,
      )
    }

    const listed: Listed[] = []
    const firstNames = new Map<string, string>()
    await this.walk('', listed, firstNames, signal)
    return listed
  }

  private async walk(
    dir: string,
    listed: Listed[],
    firstNames: Map<string, string>,
    signal?: AbortSignal,
  ): Promise<void> {
    signal?.throwIfAborted()
    const names = (await readdir(path.join(this.root, dir), {encoding: 'buffer'})).sort(Buffer.compare)
    // the lstat calls of a directory run together: the walk is bound by their latency, not by the disk
    const allStats = await Promise.all(
      names.map((raw) => lstat(Buffer.concat([Buffer.from(`${this.root}/${dir}/`), raw]))),
    )
    for (const [index, raw] of names.entries()) {
      let name: string
      try {
        name = NAME_DECODER.decode(raw)
      } catch {
        throw new UsageError(
          `${path.join(this.root, dir)} holds a file name that is not UTF-8 (${raw.toString('hex')})`,
          {
            code: 'ROOTFS_NAME_NOT_UTF8',
            suggestions: ['rename or remove that file: image layers name files in UTF-8'],
          },
        )
      }

      const relative = dir ? `${dir}/${name}` : name
      const file = path.join(this.root, relative)
      const stats = allStats[index]!
      const type = entryType(stats)
      if (!type) {
        this.options.log?.debug(`skipped socket ${relative}`)
        continue
      }

      const entry: Listed = {
        gid: stats.gid,
        mode: stats.mode % 0o1_0000,
        mtime: Math.floor(stats.mtimeMs / 1000),
        path: relative,
        size: type === 'file' ? stats.size : 0,
        type,
        uid: stats.uid,
        xattrs: this.xattrsLost ? new Map() : readXattrs(file),
      }
      if (type === 'file' && stats.nlink > 1) {
        const inode = `${stats.dev}:${stats.ino}`
        const first = firstNames.get(inode)
        if (first === undefined) firstNames.set(inode, relative)
        else Object.assign(entry, {linkname: first, size: 0, type: 'link'})
      } else if (type === 'symlink') {
        entry.linkname = await readlink(file)
      } else if (type === 'character-device' || type === 'block-device') {
        Object.assign(entry, deviceNumbers(stats.rdev))
      }

      listed.push(entry)
      if (type === 'directory') await this.walk(relative, listed, firstNames, signal)
    }
  }
}
