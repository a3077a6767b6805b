/**
 * Extended attributes of one file, as a Map of name -> value. This is how file capabilities
 * (`security.capability`), POSIX ACLs (`system.posix_acl_access`, `system.posix_acl_default`), SELinux
 * labels and `user.*` attributes travel. The l* calls are used throughout: a symlink's own attributes,
 * never its target's.
 */
import {isErrno, type NativePath, requireNative} from './addon.js'

/**
 * Every extended attribute of `path` itself, sorted by name so that archives built from it are
 * reproducible. Empty where the filesystem has none (ENOTSUP). An attribute removed between listing and
 * reading is skipped. Which namespaces are listed depends on privilege (`trusted.*` needs CAP_SYS_ADMIN).
 */
export function readXattrs(path: NativePath): Map<string, Buffer> {
  const addon = requireNative('xattrs and file capabilities cannot be read')
  const xattrs = new Map<string, Buffer>()
  for (const name of addon.llistxattr(path).sort()) {
    try {
      xattrs.set(name, addon.lgetxattr(path, name))
    } catch (error) {
      if (!isErrno(error, 'ENODATA')) throw error
    }
  }

  return xattrs
}

interface WriteXattrsOptions {
  /** also remove the attributes of `path` that are not in `xattrs` (default false: only set) */
  exact?: boolean
}

/**
 * Sets every attribute in `xattrs` on `path` itself (created or replaced), in name order.
 *
 * Order matters when restoring a file: chown/lchown clears `security.capability` and setuid bits, and
 * setting `system.posix_acl_access` rewrites the group bits of the mode, so restore ownership first, then
 * the mode, then the xattrs, then the times. `user.*` attributes cannot be set on symlinks (EPERM).
 */
export function writeXattrs(
  path: NativePath,
  xattrs: ReadonlyMap<string, Uint8Array>,
  options: WriteXattrsOptions = {},
): void {
  const addon = requireNative('xattrs and file capabilities cannot be restored')
  if (options.exact) {
    for (const name of addon.llistxattr(path)) {
      if (xattrs.has(name)) continue
      try {
        addon.lremovexattr(path, name)
      } catch (error) {
        if (!isErrno(error, 'ENODATA')) throw error
      }
    }
  }

  for (const name of [...xattrs.keys()].sort()) {
    addon.lsetxattr(path, name, xattrs.get(name)!)
  }
}
