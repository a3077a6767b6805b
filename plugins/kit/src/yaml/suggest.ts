/**
 * Did-you-mean for names found in a file (keys, file names): the closest known name, if close enough, or
 * else the names allowed. Each candidate costs at most a few rows of a distance table, whatever its length.
 */
import {printable, quote} from './issues.js'

/**
 * The closest candidate to `input` (optimal string alignment distance, case-insensitive), if close enough:
 * at most 40% of the longer name differs. A candidate is given up on as soon as it cannot be close enough
 * (its length alone, or a row of the distance table), so that many keys, or a long one, cost little.
 */
export function closest(input: string, candidates: Iterable<string>): string | undefined {
  const wanted = input.toLowerCase()
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of candidates) {
    const limit = Math.max(1, Math.floor(Math.max(wanted.length, candidate.length) * 0.4))
    const distance = boundedDistance(wanted, candidate.toLowerCase(), Math.min(limit, bestDistance - 1))
    if (distance !== undefined && distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }

  return best
}

/** Rows of the distance table, reused from call to call: the one before last, the last, the current. */
let rows = [new Uint32Array(64), new Uint32Array(64), new Uint32Array(64)] as const

/** The optimal string alignment distance of `a` and `b` if it is at most `limit`, else undefined. */
function boundedDistance(a: string, b: string, limit: number): number | undefined {
  if (limit < 0 || Math.abs(a.length - b.length) > limit) return undefined
  const cols = b.length + 1
  if (rows[0].length < cols) rows = [new Uint32Array(cols), new Uint32Array(cols), new Uint32Array(cols)]
  let [before, last, current] = rows
  for (let j = 0; j < cols; j++) last[j] = j
  let lastMin = 0
  for (let i = 1; i <= a.length; i++) {
    current[0] = i
    let rowMin = i
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let value = Math.min(last[j]! + 1, current[j - 1]! + 1, last[j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, before[j - 2]! + 1)
      current[j] = value
      if (value < rowMin) rowMin = value
    }

    // a row's least value is at least the least of the row above's or the one before's plus one (a
    // transposition reaches back two rows): once both are past the limit, every later row is too
    if (rowMin > limit && lastMin + 1 > limit) return undefined
    lastMin = rowMin
    ;[before, last, current] = [last, current, before]
  }

  const distance = last[b.length]!
  return distance <= limit ? distance : undefined
}

/** Names listed in a message (the keys allowed, the hosts known) past which the others are counted. */
export const LISTED_NAMES = 20

/** `a, b, c`: names sorted, the first LISTED_NAMES of them (escaped, shortened) and `and N more`. */
export function nameList(names: Iterable<string>): string {
  const sorted = [...names].sort()
  const shown = sorted.slice(0, LISTED_NAMES).map((name) => printable(name, 60))
  const more = sorted.length - shown.length
  return `${shown.join(', ')}${more > 0 ? ` and ${more} more` : ''}`
}

/**
 * `unknown key "imgaes" (did you mean "images"?)` when an allowed key (or one of `alsoSuggest`, names that
 * are not allowed here but that a user may have meant) is close; else `unknown key "x" (allowed: a, b)`,
 * which tells what may be written there.
 */
export function unknownKeyMessage(
  key: string,
  allowed: readonly string[],
  alsoSuggest: readonly string[] = [],
): string {
  const suggestion = closest(key, [...allowed, ...alsoSuggest])
  if (suggestion !== undefined) return `unknown key ${quote(key)} (did you mean ${quote(suggestion)}?)`
  return allowed.length > 0 ? `unknown key ${quote(key)} (allowed: ${nameList(allowed)})` : `unknown key ${quote(key)}`
}
