/**
 * What makes two builds of the same rootfs differ, taken out on the way into the layer (the rootfs on disk
 * is never modified): logs and caches that carry build times or inode numbers, the build host's hostname and
 * resolv.conf, machine IDs, apt's downloaded lists, runtime directories' contents, and times after the epoch.
 * The list follows debuerreotype and mmdebstrap (see the README, "Reproducible base images").
 */
import {Readable} from 'node:stream'
import {text} from 'node:stream/consumers'

import type {RootfsEntry} from '../source/entry.js'

/** Files removed from the image: build logs and caches that differ on every run. */
const REMOVED_FILES = new Set([
  'etc/apt/apt.conf.d/01autoremove-kernels',
  'run/motd.dynamic',
  'run/mount/utab',
  'var/cache/ldconfig/aux-cache',
  'var/lib/dbus/machine-id',
  'var/lib/systemd/catalog/database',
  'var/log/alternatives.log',
  'var/log/apt/eipp.log.xz',
  'var/log/apt/history.log',
  'var/log/apt/term.log',
  'var/log/bootstrap.log',
  'var/log/dpkg.log',
])

/**
 * Directories whose contents are removed (the directory itself stays): apt's lists and package cache
 * (`partial/` stays, apt expects it), runtime and temporary files, and what the container engine mounts at
 * run time (/dev, /proc, /sys).
 */
const EMPTIED_DIRECTORIES = ['dev', 'proc', 'sys', 'tmp', 'var/cache/apt', 'var/lib/apt/lists', 'debootstrap']
const KEPT_IN_EMPTIED = new Set([
  'var/cache/apt/archives',
  'var/cache/apt/archives/partial',
  'var/lib/apt/lists/partial',
])

/** Files given fixed content: the build host's identity must not leak into the image. */
const FIXED_CONTENT: Record<string, string> = {
  'etc/hostname': 'localhost\n',
  'etc/machine-id': '',
  // the engine writes the real one into each container
  'etc/resolv.conf': '',
}

export interface CleanupOptions {
  /** remove logs and caches and fix host files (default true); times are clamped either way */
  cleanup?: boolean
  /** SOURCE_DATE_EPOCH: no time in the layer is later than this */
  epoch: number
}

/** Whether the cleanup drops `path` from the image. Exported for tests. */
export function isRemoved(path: string): boolean {
  if (REMOVED_FILES.has(path)) return true
  if (path === 'debootstrap') return true
  if (KEPT_IN_EMPTIED.has(path)) return false
  return EMPTIED_DIRECTORIES.some((dir) => path.startsWith(`${dir}/`))
}

/** /etc/shadow's third field (days since 1970 of the last password change) is the build day: clamp it. */
export function clampShadow(content: string, epoch: number): string {
  const day = Math.floor(epoch / 86_400)
  return content
    .split('\n')
    .map((line) => {
      const fields = line.split(':')
      if (fields.length < 3 || fields[2] === '') return line
      const changed = Number(fields[2])
      if (!Number.isInteger(changed) || changed <= day) return line
      fields[2] = String(day)
      return fields.join(':')
    })
    .join('\n')
}

function withContent(entry: RootfsEntry, content: Buffer): RootfsEntry {
  return {...entry, open: () => Readable.from([content]), readAll: () => content, size: content.length}
}

/**
 * The entries of a reproducible layer: cleanup applied (unless turned off), every mtime clamped to the
 * epoch, and hardlinks to removed files turned back into files. Content that is rewritten (/etc/shadow) is
 * read here: it is small.
 */
export async function* cleanEntries(
  entries: AsyncIterable<RootfsEntry>,
  options: CleanupOptions,
): AsyncIterable<RootfsEntry> {
  const cleanup = options.cleanup ?? true
  const removed = new Map<string, RootfsEntry>()
  const movedTo = new Map<string, string>()
  for await (const original of entries) {
    let entry: RootfsEntry = {...original, mtime: Math.min(original.mtime, options.epoch)}
    if (cleanup && isRemoved(entry.path)) {
      if (entry.type === 'file') removed.set(entry.path, entry)
      continue
    }

    if (entry.type === 'link' && entry.linkname !== undefined) {
      const moved = movedTo.get(entry.linkname)
      const target = removed.get(entry.linkname)
      if (moved !== undefined) {
        entry = {...entry, linkname: moved}
      } else if (target) {
        // its first name was removed: this name becomes the file, and later names link to it
        removed.delete(entry.linkname)
        movedTo.set(entry.linkname, entry.path)
        entry = {...target, path: entry.path}
      }
    }

    if (cleanup && entry.type === 'file') {
      const fixed = FIXED_CONTENT[entry.path]
      if (fixed !== undefined) {
        entry = {...withContent(entry, Buffer.from(fixed)), gid: 0, mode: 0o644, uid: 0}
      } else if ((entry.path === 'etc/shadow' || entry.path === 'etc/shadow-') && entry.open) {
        entry = withContent(entry, Buffer.from(clampShadow(await text(entry.open()), options.epoch)))
      }
    }

    yield entry
  }
}
