import {ExitCode, type ExitOf, TransshipError, type TransshipErrorOptions} from '../errors.js'

/** Why an image archive could not be read or written. */
export type ArchiveErrorCode =
  | 'ARCHIVE_COMPRESS_FAILED'
  | 'ARCHIVE_CORRUPT'
  | 'ARCHIVE_NOT_IMAGE'
  | 'ARCHIVE_TRUNCATED'
  | 'ARCHIVE_UNSAFE'
  | 'ARCHIVE_UNSUPPORTED'

/**
 * An image archive that cannot be used: it ends early (ARCHIVE_TRUNCATED), its content contradicts itself
 * (ARCHIVE_CORRUPT), a path in it leads outside it (ARCHIVE_UNSAFE), it is not an image archive at all (ARCHIVE_NOT_IMAGE) or it is one in a layout transship
 * does not read (ARCHIVE_UNSUPPORTED). These are problems of the input, found before anything was changed, so
 * they exit with 2 (usage); a compressor that fails while writing (ARCHIVE_COMPRESS_FAILED) exits with 1.
 */
export class ArchiveError extends TransshipError {
  constructor(
    code: ArchiveErrorCode,
    message: string,
    options: TransshipErrorOptions & {exit?: ExitOf<ArchiveErrorCode>} = {},
  ) {
    super(
      code,
      options.exit ?? (code === 'ARCHIVE_COMPRESS_FAILED' ? ExitCode.Failed : ExitCode.Usage),
      message,
      options,
    )
  }
}

export function isArchiveError(error: unknown): error is ArchiveError {
  return error instanceof ArchiveError
}
