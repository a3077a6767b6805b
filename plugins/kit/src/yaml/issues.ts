/**
 * What the validation of a YAML file (a recipe, a test file) reports with every issue: how a value is named
 * in messages, and the issues themselves deduplicated, in file order and bounded in number.
 */
import type {RecipeIssue} from '../errors.js'

/** The message given to a value that is missing; the loader turns it into `missing required key "x"`. */
export const REQUIRED_MESSAGE = 'required'

/** At most this many issues are reported for one file; a last line says how many more there are. */
export const MAX_ISSUES = 100

/**
 * Characters a terminal would act on rather than show (C0 and C1 controls, DEL) and those that reorder
 * text (bidirectional overrides and isolates): a file's text is shown with them escaped.
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]/g

function escapeUnprintable(text: string): string {
  return text.replaceAll(UNPRINTABLE, (char) => `\\u${char.codePointAt(0)!.toString(16).padStart(4, '0')}`)
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text
}

/** Text taken from a file or a parser, fit for a one-line message: at most `max` characters, nothing a terminal acts on. */
export function printable(text: string, max = 200): string {
  return escapeUnprintable(shorten(text, max))
}

/** A string from a file as messages quote it: `"yes"`, shortened past `max` characters, escaped. */
export function quote(text: string, max = 40): string {
  return escapeUnprintable(JSON.stringify(shorten(text, max)))
}

/** How a value found in a file is named in messages: `the string "yes"`, `a list`, `an empty value`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'an empty value'
  if (value === undefined) return 'nothing'
  if (Array.isArray(value)) return 'a list'
  switch (typeof value) {
    case 'string': {
      return `the string ${quote(value)}`
    }

    case 'number':
    case 'bigint': {
      return `the number ${String(value)}`
    }

    case 'boolean': {
      return String(value)
    }

    case 'object': {
      return value instanceof Date ? 'a date' : 'a map'
    }

    default: {
      return `a ${typeof value}`
    }
  }
}

/** Issues without repeats (two schema checks may report the same problem at the same place). */
function dedupeIssues(issues: RecipeIssue[]): RecipeIssue[] {
  const seen = new Set<string>()
  return issues.filter((issue) => {
    const key = `${issue.line}:${issue.column}:${issue.path}:${issue.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

interface Kept {
  /** the issue, or how to make it: only the issues kept are made */
  issue: (() => RecipeIssue) | RecipeIssue
  key: readonly [line: number, column: number, seq: number]
}

function compare(a: Kept, b: Kept): number {
  return a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2]
}

/**
 * The issues of a file, as they are found: it keeps the first ones in file order (line, then column, the
 * order found among equals) and counts the others, so that a file with a million problems costs a pass
 * over them, not a sort of them all. `issues()` gives the first `max` without repeats and, when there are
 * more, a last issue saying how many.
 */
export class IssueList {
  /** a max-heap on position: the last kept issue on top, to be dropped for one found earlier */
  private readonly heap: Kept[] = []
  private seq = 0
  private total = 0

  constructor(
    private readonly file: string,
    private readonly max = MAX_ISSUES,
  ) {}

  get size(): number {
    return this.total
  }

  add(issue: RecipeIssue): void {
    this.keep(issue, issue.line ?? 0, issue.column ?? 0)
  }

  /** Add the issue at `line` and `column` that `make` makes, if it is among those reported. */
  addLazily(line: number, column: number, make: () => RecipeIssue): void {
    this.keep(make, line, column)
  }

  private keep(issue: Kept['issue'], line: number, column: number): void {
    this.total++
    // room for repeats among the first ones, which are dropped when reported
    const room = this.max * 2
    const kept: Kept = {issue, key: [line, column, this.seq++]}
    const {heap} = this
    if (heap.length >= room) {
      if (compare(kept, heap[0]!) >= 0) return
      heap[0] = kept
      this.siftDown(0)
      return
    }

    heap.push(kept)
    this.siftUp(heap.length - 1)
  }

  /** The issues to report: the first `max` in file order without repeats, and how many more there are. */
  issues(): RecipeIssue[] {
    const sorted = [...this.heap].sort(compare).map(({issue}) => (typeof issue === 'function' ? issue() : issue))
    const unique = dedupeIssues(sorted)
    const reported = unique.slice(0, this.max)
    const more = this.total - (sorted.length - unique.length) - reported.length
    if (more > 0) {
      reported.push({
        file: this.file,
        message: `and ${more} more issue${more === 1 ? '' : 's'} (only the first ${this.max} are listed): fix these and run again`,
        path: '',
      })
    }

    return reported
  }

  private siftDown(index: number): void {
    const {heap} = this
    for (let i = index; ;) {
      const left = 2 * i + 1
      const right = left + 1
      let largest = i
      if (left < heap.length && compare(heap[left]!, heap[largest]!) > 0) largest = left
      if (right < heap.length && compare(heap[right]!, heap[largest]!) > 0) largest = right
      if (largest === i) return
      ;[heap[i], heap[largest]] = [heap[largest]!, heap[i]!]
      i = largest
    }
  }

  private siftUp(index: number): void {
    const {heap} = this
    for (let i = index; i > 0;) {
      const parent = Math.floor((i - 1) / 2)
      if (compare(heap[i]!, heap[parent]!) <= 0) return
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }
}
