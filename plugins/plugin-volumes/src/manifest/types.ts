export type ManifestEntryType = 'block' | 'char' | 'directory' | 'fifo' | 'file' | 'hardlink' | 'symlink'

/**
 * One path of a volume, as its tar stream describes it. JSON-serialisable.
 *
 * Names (`path`, `linkTarget`, `hardlinkOf`) are taken from the raw bytes of the tar headers and pax records. A
 * name that is valid UTF-8 is that string; any other name has each byte that is not part of a valid UTF-8
 * sequence written as `\xNN` (two upper-case hex digits), e.g. latin1 `caf\xE9`. The escape is stable, so both
 * sides of a copy name the same file the same way; it is ambiguous only against a valid name that spells a
 * literal `\xNN`.
 */
export interface ManifestEntry {
  /** relative to the volume's root: no leading `./` or `/`, no trailing `/`; the root itself is `.` */
  path: string
  type: ManifestEntryType
  /** logical size of a file (a sparse file expanded); 0 for everything else */
  size: number
  /** permission bits with setuid, setgid and sticky (`mode & 0o7777`) */
  mode: number
  uid: number
  gid: number
  /** `SECONDS.NANOS` (nine digits) from the pax mtime record when there is one, else the header's `SECONDS` */
  mtime: string
  /**
   * Extended attributes, name → value in base64 (byte-exact), sorted by name. POSIX ACLs written by GNU tar
   * --acls (pax SCHILY.acl.access / SCHILY.acl.default, in text form) appear as the pseudo-attributes
   * `acl.access` and `acl.default`, their value the base64 of that text.
   */
  xattrs: Record<string, string>
  /** a symlink's target, as stored */
  linkTarget?: string
  /** a hard link's: the path of the group's first entry, the one that carries the content */
  hardlinkOf?: string
  /** devices only */
  devmajor?: number
  devminor?: number
  /**
   * files only: the hex content digest of the logical content (a sparse file's holes read as zeros): SHA-256
   * of the content with each run of all-zero 512-byte blocks written as its length (see ContentDigest), so that
   * holes cost nothing to digest and a file digests the same whether it is stored sparse or not; in a
   * manifest whose `digests` is 'sha256' (a host listing's), the plain SHA-256 of the logical content
   */
  digest?: string
  /** the file was stored sparse (GNU sparse format 1.0 or 0.1) */
  sparse?: true
}

export interface ManifestTotals {
  entries: number
  /** regular files (hard links not counted) */
  files: number
  directories: number
  symlinks: number
  hardlinks: number
  /** fifos and devices */
  others: number
  /** logical bytes of the regular files */
  bytes: number
  sparseFiles: number
}

export interface VolumeManifest {
  /** in tar order (a host listing: in `find` order) */
  entries: ManifestEntry[]
  totals: ManifestTotals
  /**
   * whether the entries' xattrs were read: 'unknown' when the host had no tool to list them (its entries then
   * say `{}`, and comparisons leave xattrs out); absent means read (a tar stream carries them)
   */
  xattrs?: 'listed' | 'unknown'
  /**
   * what the files' `digest` is: absent for ContentDigest (a tar stream's manifest), 'sha256' for the plain
   * SHA-256 of the content that a host's `sha256sum` prints (a host listing's). The two never match each other.
   */
  digests?: 'sha256'
}
