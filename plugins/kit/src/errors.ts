/**
 * One error hierarchy for the whole CLI. Every expected failure is a TransshipError with a stable `code`,
 * the process `exit` code it maps to and `suggestions` for the user. Callers classify by `code` or by the
 * subclass, never by message text.
 */

import {type CodeFor, type ErrorCode, ExitCode, type ExitOf, type UsageCode} from './error-codes.js'

export * from './error-codes.js'

export interface TransshipErrorOptions {
  cause?: unknown
  /** machine-readable context, included in --json output (never secrets) */
  details?: Record<string, unknown>
  suggestions?: string[]
}

/** `C` is inferred from the code given, so its exit code must be one the catalogue lists for it. */
export class TransshipError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C
  readonly details: Record<string, unknown> | undefined
  readonly exit: ExitCode
  readonly suggestions: string[]

  constructor(code: C, exit: ExitOf<C>, message: string, options: TransshipErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = new.target.name
    this.code = code
    this.exit = exit
    this.suggestions = options.suggestions ?? []
    this.details = options.details
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      details: this.details,
      exit: this.exit,
      message: this.message,
      suggestions: this.suggestions,
    }
  }
}

/** Bad flags, arguments or input files. */
export class UsageError extends TransshipError {
  constructor(message: string, options?: TransshipErrorOptions & {code?: UsageCode}) {
    super(options?.code ?? 'USAGE', ExitCode.Usage, message, options)
  }
}

export interface RecipeIssue {
  column?: number
  file: string
  line?: number
  message: string
  /** key path inside the recipe, e.g. `images[0].copy[1]` */
  path: string
}

/** A recipe that cannot be read or is invalid; carries every issue found, each with its position. */
export class RecipeError extends TransshipError {
  readonly issues: RecipeIssue[]

  constructor(issues: RecipeIssue[], options?: TransshipErrorOptions & {code?: UsageCode}) {
    super(options?.code ?? 'RECIPE_INVALID', ExitCode.Usage, issues.map((i) => formatRecipeIssue(i)).join('\n'), {
      ...options,
      details: {issues},
    })
    this.issues = issues
  }
}

export function formatRecipeIssue(issue: RecipeIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}:${issue.column ?? 1}`
  return issue.path ? `${where} ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`
}

/** A host (SSH server, engine socket) that cannot be reached. */
export class UnreachableError extends TransshipError {
  constructor(code: CodeFor<typeof ExitCode.Unreachable>, message: string, options?: TransshipErrorOptions) {
    super(code, ExitCode.Unreachable, message, options)
  }
}

/** Refused credentials or an SSH host key that is unknown or does not match. */
export class AuthError extends TransshipError {
  constructor(code: CodeFor<typeof ExitCode.Auth>, message: string, options?: TransshipErrorOptions) {
    super(code, ExitCode.Auth, message, options)
  }
}

/** An error reply of the Docker Engine API, classified by HTTP status. */
export class EngineError extends TransshipError {
  readonly status: number | undefined

  constructor(message: string, options: TransshipErrorOptions & {host: string; status?: number}) {
    super(engineErrorCode(options.status), ExitCode.Failed, message, {
      ...options,
      details: {...options.details, host: options.host, status: options.status},
    })
    this.status = options.status
  }
}

function engineErrorCode(status: number | undefined): ErrorCode {
  switch (status) {
    case 400: {
      return 'ENGINE_BAD_REQUEST'
    }

    case 404: {
      return 'ENGINE_NOT_FOUND'
    }

    case 409: {
      return 'ENGINE_CONFLICT'
    }

    case undefined: {
      return 'ENGINE_STREAM_ERROR'
    }

    default: {
      return status >= 500 ? 'ENGINE_SERVER_ERROR' : 'ENGINE_ERROR'
    }
  }
}

/** One or more plan steps failed during `apply`. */
export class StepFailedError extends TransshipError {
  constructor(message: string, options?: TransshipErrorOptions) {
    super('STEP_FAILED', ExitCode.Failed, message, options)
  }
}

/** The user interrupted the run; everything in flight was cancelled and cleaned up. */
export class InterruptedError extends TransshipError {
  constructor(message = 'interrupted', options?: TransshipErrorOptions) {
    super('INTERRUPTED', ExitCode.Interrupted, message, options)
  }
}

export function isTransshipError(error: unknown): error is TransshipError {
  return error instanceof TransshipError
}
