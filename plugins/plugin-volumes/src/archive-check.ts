/**
 * The rules an archive from elsewhere must pass before a host's GNU tar extracts it into a volume, checked on the
 * entries as transship's own tar reader sees them (the reader that follows GNU tar: pax and GNU long names,
 * GNU.sparse.name, global headers). Anything that could put a file outside the volume, reach it through a link,
 * be read differently by another reader, or fail half-way through the extraction is refused, naming the entry:
 *
 * - every name an entry is given (header, long name, pax path, GNU.sparse.name) and every link target is
 *   relative, has no `..` and no NUL, and is shorter than PATH_MAX; two different names for one entry, names in
 *   a global header, sparse records on anything but a sparse file are ambiguous;
 * - the root (`.`) is a directory; no path appears twice (a second entry could replace a directory by a symbolic
 *   link, or change a file's type); nothing is under a symbolic link or under something that is not a directory;
 * - a hard link names an earlier regular file of the archive, reached without a symbolic link;
 * - only regular files carry data; nothing follows a lone zero block (GNU tar stops there);
 * - device nodes only when asked (`allowDevices`): in a volume, a device node gives every container that mounts
 *   it the device itself (block 8,0 is the host's first disk). FIFOs are created, as GNU tar and Docker do:
 *   a FIFO gives access to nothing.
 */
import {UsageError} from '@transship/kit'

import type {ManifestEntry, ManifestEntryType, RawEntry} from './manifest/tar-manifest.js'

/** Linux's PATH_MAX: a longer name cannot be extracted */
const MAX_NAME = 4096
/** the marker of an unfinished copy: an archive that holds it would be taken for an unfinished import */
const RESERVED = '.transship-incomplete'

export interface ArchiveCheckOptions {
  /** create character and block devices the archive holds */
  allowDevices?: boolean
  /** the archive, for messages */
  label: string
  /** what a refusal means for the volume (default: nothing was written) */
  outcome?: string
}

interface Node {
  children?: Map<string, Node>
  /** the entry's type; undefined for a directory only implied by the entries under it */
  type?: ManifestEntryType
}

/** A checker for the entries of one archive, in order: give it to the tar reader as `onEntry`. */
export function archiveChecker(options: ArchiveCheckOptions): (entry: ManifestEntry, raw: RawEntry) => void {
  const checker = new ArchiveChecker(options)
  return (entry, raw) => checker.check(entry, raw)
}

class ArchiveChecker {
  private readonly root: Node = {}

  constructor(private readonly options: ArchiveCheckOptions) {}

  check(entry: ManifestEntry, raw: RawEntry): void {
    const shown = raw.names[0] ?? entry.path
    this.headers(entry, raw, shown)
    this.kind(entry, raw, shown)
    const node = this.walk(entry.path === '.' ? [] : entry.path.split('/'), shown, true)!
    if (node.type !== undefined) throw this.refuse(shown, `appears twice (first as a ${node.type})`)
    if (node.children && entry.type !== 'directory') {
      throw this.refuse(shown, `is a ${entry.type}, but earlier entries are under it`)
    }

    if (entry.type === 'hardlink' || entry.type === 'symlink') this.links(entry, raw, shown)
    node.type = entry.type
  }

  /** What the headers say about the entry: where it stands, its names, its records. */
  private headers(entry: ManifestEntry, raw: RawEntry, shown: string): void {
    if (raw.loneZeroBlockBefore) {
      throw this.refuse(shown, 'comes after a lone zero block, where GNU tar stops reading (the archive is damaged)')
    }

    for (const key of raw.globalPax?.keys() ?? []) {
      if (['linkpath', 'path', 'size'].includes(key) || key.startsWith('GNU.sparse.')) {
        throw this.refuse(shown, `is renamed by a global pax header (${key}), which would apply to every entry`)
      }
    }

    for (const name of new Set(raw.names)) this.safeName(shown, name, 'name')
    // the header's own name may be a shortened or placeholder one when a longer name is given elsewhere
    const given = [...new Set(raw.names.slice(0, -1))]
    if (given.length > 1) {
      throw this.refuse(
        shown,
        `is named twice, differently (${given.map((name) => JSON.stringify(name)).join(' and ')})`,
      )
    }

    const sparse = [...(raw.pax?.keys() ?? [])].some((key) => key.startsWith('GNU.sparse.'))
    if (sparse && (entry.type !== 'file' || !entry.sparse)) {
      throw this.refuse(shown, 'has GNU.sparse records but is not a sparse file (GNU.sparse.name would rename it)')
    }

    if (entry.path === RESERVED) throw this.refuse(shown, 'has the name transship gives an unfinished copy')
  }

  /** What the entry is: only files carry data, the root is a directory, devices when allowed. */
  private kind(entry: ManifestEntry, raw: RawEntry, shown: string): void {
    if (entry.type !== 'file' && raw.declaredSize !== 0) {
      throw this.refuse(shown, `is a ${entry.type} that declares ${raw.declaredSize} bytes of data`)
    }

    if (entry.path === '.' && entry.type !== 'directory') {
      throw this.refuse(shown, `makes the volume's root a ${entry.type}`)
    }

    if ((entry.type === 'char' || entry.type === 'block') && !this.options.allowDevices) {
      throw this.refuse(
        shown,
        `is a ${entry.type} device (${entry.devmajor},${entry.devminor}): a device node gives the containers that mount the volume that device`,
        'say --allow-devices to create the device nodes of a trusted archive',
      )
    }
  }

  /** A link's target: one, without NUL; a hard link's an earlier regular file, reached without a link. */
  private links(entry: ManifestEntry, raw: RawEntry, shown: string): void {
    if (raw.links.length === 0) throw this.refuse(shown, `is a ${entry.type} without a target`)
    if (new Set(raw.links.slice(0, -1)).size > 1) throw this.refuse(shown, 'has two different link targets')
    if (raw.links.some((link) => link.includes('\0'))) throw this.refuse(shown, 'has a NUL byte in its link target')
    if (entry.type !== 'hardlink') return
    for (const link of new Set(raw.links)) this.safeName(shown, link, 'link target')
    const target = this.walk(this.safeName(shown, raw.links[0]!, 'link target'), shown, false)
    if (target?.type !== 'file') {
      throw this.refuse(
        shown,
        `is a hard link to ${JSON.stringify(raw.links[0])}, which is not an earlier regular file of the archive`,
      )
    }
  }

  private refuse(entry: string, why: string, suggestion?: string): UsageError {
    const outcome = this.options.outcome ?? 'nothing was written'
    return new UsageError(`${this.options.label}: entry ${JSON.stringify(entry)} ${why}: ${outcome}`, {
      code: 'ARCHIVE_UNSAFE',
      details: {entry, file: this.options.label},
      suggestions: [
        suggestion ??
          'make the archive with `transship volume export`, or `tar -C DIR -cf FILE .` from inside the data',
      ],
    })
  }

  /** A name's parts, if it is relative, inside, without NUL and not too long. */
  private safeName(entry: string, name: string, what: string): string[] {
    if (name.includes('\0')) throw this.refuse(entry, `has a NUL byte in its ${what}`)
    if (Buffer.byteLength(name) >= MAX_NAME) throw this.refuse(entry, `has a ${what} longer than ${MAX_NAME} bytes`)
    if (name.startsWith('/')) throw this.refuse(entry, `has an absolute ${what} (${JSON.stringify(name)})`)
    const parts = name.split('/').filter((part) => part !== '' && part !== '.')
    if (parts.includes('..')) {
      throw this.refuse(entry, `climbs out of the volume (.. in its ${what} ${JSON.stringify(name)})`)
    }

    return parts
  }

  /** The node of `parts`, walking through directories only (missing ones are made, as tar makes them). */
  private walk(parts: string[], name: string, create: boolean): Node | undefined {
    let node = this.root
    for (const [i, part] of parts.entries()) {
      if (node.type === 'symlink') {
        throw this.refuse(name, `is reached through the symbolic link ${JSON.stringify(parts.slice(0, i).join('/'))}`)
      }

      if (node.type !== undefined && node.type !== 'directory') {
        throw this.refuse(name, `is under ${JSON.stringify(parts.slice(0, i).join('/'))}, which is a ${node.type}`)
      }

      let child = node.children?.get(part)
      if (!child) {
        if (!create) return undefined
        child = {}
        node.children ??= new Map()
        node.children.set(part, child)
      }

      node = child
    }

    return node
  }
}
