/** Small helpers shared by the checks: regexes, excerpts, and turning a check's diff into a TestResult. */
import type {TestResult} from '../config/types.js'

import {compilePattern} from '../config/schema.js'

export type Outcome = Omit<TestResult, 'name' | 'seconds' | 'suite'>

export type RegexResult = {error: string} | {regex: RegExp}

const EXCERPT_CHARS = 500

/**
 * A config regex with Go's (RE2) meaning, as container-structure-test matches them (see compilePattern): `^` and
 * `$` match at the start and end of the whole text, not of each line, unless the pattern starts with `(?m)`.
 */
export function compileRegex(pattern: string): RegexResult {
  if (/^\(\?[imsU]*U[imsU]*\)/.test(pattern)) return {error: `regex /${pattern}/: the (?U) flag is not supported`}
  try {
    return {regex: compilePattern(pattern)}
  } catch (error) {
    return {error: `invalid regex /${pattern}/: ${(error as Error).message}`}
  }
}

/** The first 500 characters of `text`, for a diff line. */
export function excerpt(text: string): string {
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text
}

/** pass without diff lines, fail with them (the message is the first). */
export function outcome(diff: string[]): Outcome {
  if (diff.length === 0) return {status: 'pass'}
  const first = (diff[0] ?? '').split('\n')[0] ?? ''
  const message = diff.length === 1 ? first : `${first} (and ${diff.length - 1} more)`
  return {diff, message: message.length > 300 ? `${message.slice(0, 300)}…` : message, status: 'fail'}
}

/**
 * Runs one check and times it. An exception makes the result an error, unless `signal` was aborted: then the
 * run is being cancelled and the exception propagates.
 */
export async function timed(
  suite: string,
  name: string,
  signal: AbortSignal,
  check: () => Outcome | Promise<Outcome>,
): Promise<TestResult> {
  signal.throwIfAborted()
  const started = performance.now()
  let result: Outcome
  try {
    result = await check()
  } catch (error) {
    if (signal.aborted) throw error
    result = {message: error instanceof Error ? error.message : String(error), status: 'error'}
  }

  return {name, seconds: seconds(started), suite, ...result}
}

export function seconds(started: number): number {
  return Math.round(performance.now() - started) / 1000
}
