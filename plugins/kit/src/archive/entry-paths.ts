/**
 * The paths of an image archive must stay inside it. An engine unpacks an archive before it reads it, so an
 * entry that is absolute or climbs out (`..`), a link that leads out, or an entry written through a symbolic
 * link is refused, naming the entry, before anything is sent: what an engine would do with it depends on its
 * version (one loads it, another fails with its own error), and none of it belongs in an image archive.
 * Docker's own archives use relative symbolic links between entries (`<id>/layer.tar -> ../<id2>/layer.tar`):
 * those are kept.
 */
import {ArchiveError} from './errors.js'

interface StoredEntry {
  /** for links: the target as stored */
  linkname?: string
  /** the name as stored in the tar header (not normalised) */
  stored: string
  type: string
}

/** Collects an archive's entries as they are read, then checks them all (a link may come after its users). */
export class EntryPaths {
  private readonly entries: Array<{entry: StoredEntry; parts: string[]}> = []
  private readonly symlinks = new Set<string>()

  constructor(private readonly source: string) {}

  /** Checks the entry's own name at once, and keeps it for the checks that need every entry. */
  add(entry: StoredEntry): void {
    const name = entry.stored
    if (name.startsWith('/')) throw this.unsafe(name, 'has an absolute path')
    const parts = components(name)
    if (parts.includes('..')) throw this.unsafe(name, 'climbs out of the archive (..)')
    if (entry.type === 'symlink') this.symlinks.add(parts.join('/'))
    this.entries.push({entry, parts})
  }

  /** Links that lead out, and entries (or link targets) reached through a symbolic link. */
  check(): void {
    for (const {entry, parts} of this.entries) {
      const name = entry.stored
      const through = this.symlinkAlong(parts.slice(0, -1))
      if (through !== undefined) throw this.unsafe(name, `is reached through the symbolic link ${through}`)
      const target = entry.linkname
      if (target === undefined || (entry.type !== 'symlink' && entry.type !== 'link')) continue
      const kind = entry.type === 'symlink' ? 'a symbolic link' : 'a hard link'
      if (target.startsWith('/')) throw this.unsafe(name, `is ${kind} to ${target}, outside the archive`)
      // a symbolic link's target is relative to its directory; a hard link's to the archive's root
      const base = entry.type === 'symlink' ? parts.slice(0, -1) : []
      const problem = this.resolve(base, components(target))
      if (problem === 'outside') throw this.unsafe(name, `is ${kind} to ${target}, outside the archive`)
      if (problem) throw this.unsafe(name, `leads to ${target} through the symbolic link ${problem.via}`)
    }
  }

  /**
   * Walks `parts` from `base` as a file system would: `outside` when a `..` climbs above the root, `via` when
   * a component before the last one is a symbolic link (where it leads is the link's business, not the name's).
   */
  private resolve(base: string[], parts: string[]): 'outside' | undefined | {via: string} {
    const resolved = [...base]
    for (const [index, part] of parts.entries()) {
      if (part === '..') {
        if (resolved.length === 0) return 'outside'
        resolved.pop()
      } else {
        resolved.push(part)
      }

      const prefix = resolved.join('/')
      if (index < parts.length - 1 && this.symlinks.has(prefix)) return {via: prefix}
    }

    return undefined
  }

  /**
   * A path that manifest.json names (a config or a layer) must be relative and stay inside, like an entry;
   * `what` says who names it.
   */
  reference(reference: string, what: string): void {
    if (reference.startsWith('/') || components(reference).includes('..')) {
      throw new ArchiveError(
        'ARCHIVE_UNSAFE',
        `${this.source}: ${what} names ${JSON.stringify(reference)}, outside the archive`,
        {
          details: {entry: reference, source: this.source},
          suggestions: ['write the archive again with `docker save` or `transship image save`'],
        },
      )
    }
  }

  /** The first proper prefix of `parts` that is a symbolic link, if any. */
  private symlinkAlong(parts: string[]): string | undefined {
    for (let length = 1; length <= parts.length; length++) {
      const prefix = parts.slice(0, length).join('/')
      if (this.symlinks.has(prefix)) return prefix
    }

    return undefined
  }

  private unsafe(entry: string, why: string): ArchiveError {
    return new ArchiveError(
      'ARCHIVE_UNSAFE',
      `${this.source}: entry ${JSON.stringify(entry)} ${why}; an image archive keeps every path inside it`,
      {
        details: {entry, source: this.source},
        suggestions: ['write the archive again with `docker save` or `transship image save`'],
      },
    )
  }
}

/** The components of a stored path, without empty ones and `.`. */
function components(name: string): string[] {
  return name.split('/').filter((part) => part !== '' && part !== '.')
}
