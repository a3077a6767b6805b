/** Small helpers shared by the checks: regexes, excerpts, and turning a check's diff into a TestResult. */
import type {TestResult} from '../config/types.js'

export type Outcome = Omit<TestResult, 'name' | 'seconds' | 'suite'>

export type RegexResult = {error: string} | {regex: RegExp}

const EXCERPT_CHARS = 500

/**
 * A config regex (Go RE2 syntax, as container-structure-test uses) as a JS RegExp. Unanchored; `^` and `$` match
 * at line boundaries (multiline), since the texts are files and command output. A leading Go flag group such as
 * `(?i)` or `(?s)` becomes JS flags.
 */
export function compileRegex(pattern: string): RegexResult {
  let source = pattern
  let flags = 'm'
  const leading = /^\(\?([imsU]+)\)/.exec(source)
  if (leading) {
    const goFlags = leading[1] ?? ''
    if (goFlags.includes('U')) return {error: `regex /${pattern}/: the (?U) flag is not supported`}
    for (const flag of goFlags) if (!flags.includes(flag)) flags += flag
    source = source.slice(leading[0].length)
  }

  try {
    return {regex: new RegExp(source, flags)}
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
