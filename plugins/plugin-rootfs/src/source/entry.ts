import type {Readable} from 'node:stream'

/** The kinds of file a rootfs layer holds (tar-stream's type names). */
export type EntryType = 'block-device' | 'character-device' | 'directory' | 'fifo' | 'file' | 'link' | 'symlink'

/**
 * One file of a rootfs, as it goes into the layer tar. Every source (a directory, a tarball, a debootstrap
 * run) yields these in the order they are written; the normaliser and the layer writer only see entries.
 */
export interface RootfsEntry {
  /**
   * Path inside the rootfs: relative, `/`-separated, no leading `./` or `/`, no trailing `/`, no `.` or `..`
   * components (e.g. `usr/bin/ping`). The root directory itself is never an entry.
   */
  path: string
  type: EntryType
  /** permission bits including setuid, setgid and sticky (mode & 0o7777) */
  mode: number
  uid: number
  gid: number
  /** modification time, whole seconds since the Unix epoch */
  mtime: number
  /** bytes of content: regular files only, 0 for everything else */
  size: number
  /** symlink: its target as stored; link (hardlink): the path of the entry it repeats, written earlier */
  linkname?: string
  /** character and block devices */
  devmajor?: number
  devminor?: number
  /** extended attributes by name (e.g. `security.capability`), in name order */
  xattrs: ReadonlyMap<string, Buffer>
  /** regular files: opens the content, exactly `size` bytes (a source may be read once per pass) */
  open?: () => Readable
  /**
   * regular files, optionally: the whole content at once, for small files a source can read cheaply (a
   * stream per small file costs more than the read itself)
   */
  readAll?: () => Buffer
}

/**
 * Where a rootfs comes from. `entries()` can be iterated more than once (the layer is measured before it is
 * written), each time yielding the same entries in the same order.
 */
export interface RootfsSource {
  /** for messages and the image history, e.g. `debootstrap bookworm (minbase)` or `tarball rootfs.tar.gz` */
  readonly description: string
  entries(signal?: AbortSignal): AsyncIterable<RootfsEntry>
  /**
   * The epoch to use when none is given, decided by the source (e.g. the `Date:` of the newest apt Release
   * file a debootstrap run fetched), or undefined to use the newest mtime of the entries.
   */
  epochHint?(signal?: AbortSignal): Promise<number | undefined>
}
