import type {TransshipErrorOptions} from '../errors.js'

import {ArchiveError, type ArchiveErrorCode} from '../archive/errors.js'

/**
 * Why a tar stream could not be framed. The code in --json follows from it: ARCHIVE_TRUNCATED for `empty` and
 * `truncated`, ARCHIVE_UNSUPPORTED for `unsupported`, ARCHIVE_CORRUPT for the rest.
 */
export type TarErrorReason =
  /** a pax header whose records are malformed, or a pax value that is not what its key needs */
  | 'bad-header'
  /** a header field that does not hold what it should (a size that is not a number, ...) */
  | 'bad-pax'
  /** a sparse file whose map is malformed or contradicts its sizes */
  | 'bad-sparse'
  /** a header after the first one whose checksum does not match */
  | 'checksum'
  /** not one byte */
  | 'empty'
  /** more metadata before one entry than TAR_METADATA_LIMIT */
  | 'metadata-limit'
  /** the first block is not a tar header */
  | 'not-tar'
  /** it ends in an entry, in a header, or without the end-of-archive marker */
  | 'truncated'
  /** a layout transship does not read (GNU sparse 0.0) */
  | 'unsupported'

/** A tar stream that cannot be framed: an ArchiveError whose `reason` says why, classified by type. */
export class TarError extends ArchiveError {
  /** the name of the entry concerned (or the last one before the problem), as stored */
  readonly entry: string | undefined
  readonly reason: TarErrorReason

  constructor(
    reason: TarErrorReason,
    message: string,
    options: TransshipErrorOptions & {entry?: string | undefined} = {},
  ) {
    super(tarErrorCode(reason), message, options)
    this.entry = options.entry
    this.reason = reason
  }
}

/** The ArchiveError code of a reason. */
export function tarErrorCode(reason: TarErrorReason): ArchiveErrorCode {
  if (reason === 'empty' || reason === 'truncated') return 'ARCHIVE_TRUNCATED'
  return reason === 'unsupported' ? 'ARCHIVE_UNSUPPORTED' : 'ARCHIVE_CORRUPT'
}
