/**
 * The only module that loads the native addon (native/, built by `node native/build.mjs` on npm install).
 * It gives transship the POSIX calls Node lacks: extended attributes (file capabilities, POSIX ACLs,
 * user.* attributes), device nodes and FIFOs with exact modes, and SEEK_DATA/SEEK_HOLE for sparse files.
 * Without it those are lost; callers that need one ask for it with `requireNative(feature)`.
 */
import {existsSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {ExitCode, TransshipError} from '../errors.js'

/** A path given as a string (UTF-8) or as raw bytes, for file names that are not valid UTF-8. */
export type NativePath = Buffer | string

/** The addon's exports (native/src/transship_native.c). Failures throw Errors shaped like Node's fs errors. */
export interface NativeAddon {
  /** lsetxattr flag: fail with EEXIST if the attribute exists */
  readonly XATTR_CREATE: number
  /** lsetxattr flag: fail with ENODATA if the attribute does not exist */
  readonly XATTR_REPLACE: number
  /** lgetxattr(2): the value of one attribute of `path` itself (never follows a symlink) */
  lgetxattr(path: NativePath, name: string): Buffer
  /** llistxattr(2): the attribute names of `path` itself; [] where the filesystem has no xattrs (ENOTSUP) */
  llistxattr(path: NativePath): string[]
  /** lremovexattr(2) */
  lremovexattr(path: NativePath, name: string): void
  /** lsetxattr(2); flags 0 (create or replace), XATTR_CREATE or XATTR_REPLACE */
  lsetxattr(path: NativePath, name: string, value: Uint8Array, flags?: number): void
  /** the major number of a device number (fs.Stats#rdev) */
  major(dev: bigint | number): number
  /** makedev(3): the device number of (major, minor), as fs.Stats#rdev reports it */
  makedev(major: number, minor: number): number
  /** mkfifo(3) with exactly `mode` (the umask does not apply) */
  mkfifo(path: NativePath, mode: number): void
  /** mknod(2): `mode` carries the type (S_IFCHR, S_IFBLK, ...) and exact permissions (the umask does not apply) */
  mknod(path: NativePath, mode: number, major: number, minor: number): void
  /** the minor number of a device number (fs.Stats#rdev) */
  minor(dev: bigint | number): number
  /** lseek(fd, offset, SEEK_DATA): the start of the next data at or after offset, -1 if none (ENXIO). Leaves fd's position alone. */
  seekData(fd: number, offset: number): number
  /** lseek(fd, offset, SEEK_HOLE): the start of the next hole at or after offset (EOF counts as one), -1 past EOF. Leaves fd's position alone. */
  seekHole(fd: number, offset: number): number
  /** the addon's interface version */
  readonly version: number
}

/** An Error thrown by the addon: like Node's fs errors, classify it by `code`. */
interface NativeError extends Error {
  /** the xattr name, for the xattr calls */
  attribute?: string
  /** errno name: ENOENT, ENOTSUP, EPERM, ENODATA, ... */
  code: string
  /** negative errno number, as in Node */
  errno: number
  path?: string
  syscall: string
}

interface NativeStatus {
  available: boolean
  /** why it is not available */
  reason?: string
}

/** The interface version this code was written against (TRANSSHIP_NATIVE_VERSION in the C source). */
export const NATIVE_VERSION = 1

/** Where the addon is built, under the transship package's root. */
function nativeAddonPath(root: string): string {
  return path.join(root, 'native', 'build', 'Release', 'transship_native.node')
}

/**
 * The transship package's root: the nearest directory above this module that holds `native/binding.gyp`
 * (the kit is a workspace of that package). The CLI also names it, with configureNative(config.root).
 */
function findRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(path.join(dir, 'native', 'binding.gyp'))) return dir
    const parent = path.dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

/** Loads the addon at `file`; never throws. Exported for tests. */
export function loadNativeAddon(file: string): {addon?: NativeAddon; reason?: string} {
  if (!existsSync(file)) return {reason: notBuiltReason(file)}
  let addon: NativeAddon
  try {
    addon = createRequire(import.meta.url)(file) as NativeAddon
  } catch (error) {
    return {reason: `the native addon could not be loaded (${(error as Error).message.split('\n')[0]})`}
  }

  if (addon?.version !== NATIVE_VERSION || typeof addon.llistxattr !== 'function') {
    return {reason: `the native addon is out of date (version ${String(addon?.version)}, expected ${NATIVE_VERSION})`}
  }

  return {addon}
}

function notBuiltReason(file: string): string {
  try {
    // native/build.mjs records why the build failed in the first line of native/build/build-error.log
    const why = readFileSync(path.join(path.dirname(file), '..', 'build-error.log'), 'utf8')
      .split('\n')[0]
      ?.trim()
    if (why) return `the native addon could not be built (${why})`
  } catch {
    // no record: it was never built
  }

  return 'the native addon was not built'
}

interface Loaded {
  addon?: NativeAddon
  file: string
  reason?: string
}

let loaded: Loaded | undefined

/** Loads the addon of the transship package at `root` (the CLI's root), unless one is loaded already. */
export function configureNative(root: string): void {
  if (loaded?.addon) return
  const file = nativeAddonPath(root)
  loaded = {file, ...loadNativeAddon(file)}
}

function current(): Loaded {
  if (!loaded) {
    const root = findRoot()
    if (root) configureNative(root)
    loaded ??= {file: nativeAddonPath('.'), reason: 'the transship package root was not found'}
  }

  return loaded
}

/** The file the addon is loaded from. */
export function nativeAddonFile(): string {
  return current().file
}

export function nativeStatus(): NativeStatus {
  const {addon, reason} = current()
  return addon ? {available: true} : {available: false, reason}
}

/**
 * The addon, or a NATIVE_UNAVAILABLE error saying what is lost without it. `feature` says what cannot be
 * done, e.g. 'xattrs and file capabilities cannot be read'.
 */
export function requireNative(feature: string): NativeAddon {
  const {addon, reason} = current()
  if (addon) return addon
  throw nativeUnavailable(feature, reason)
}

/** The error requireNative throws; exported for tests. */
export function nativeUnavailable(feature: string, reason = 'the native addon was not built'): TransshipError {
  return new TransshipError(
    'NATIVE_UNAVAILABLE',
    ExitCode.Failed,
    `${feature}: ${reason} (npm rebuild / see native/README.md)`,
    {
      details: {addon: current().file, feature, reason},
      suggestions: [
        'run `npm rebuild` (or `node native/build.mjs --verbose`) in the transship directory; it needs python3, make and a C compiler',
        'see native/README.md for what the addon provides and how it is built',
      ],
    },
  )
}

/** True for an Error the addon (or fs) threw with this errno name. */
export function isErrno(error: unknown, ...codes: string[]): error is NativeError {
  return error instanceof Error && codes.includes((error as NativeError).code)
}
