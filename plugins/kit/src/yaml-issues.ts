/**
 * What the validation of a YAML file (a recipe, a test file) reports with every issue: how a value is named
 * in messages, and the issues themselves deduplicated and in file order.
 */
import type {RecipeIssue} from './errors.js'

/** The message given to a value that is missing; the loader turns it into `missing required key "x"`. */
export const REQUIRED_MESSAGE = 'required'

/** How a value found in a file is named in messages: `the string "yes"`, `a list`, `an empty value`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'an empty value'
  if (value === undefined) return 'nothing'
  if (Array.isArray(value)) return 'a list'
  switch (typeof value) {
    case 'string': {
      const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value
      return `the string ${JSON.stringify(shown)}`
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
export function dedupeIssues(issues: RecipeIssue[]): RecipeIssue[] {
  const seen = new Set<string>()
  return issues.filter((issue) => {
    const key = `${issue.line}:${issue.column}:${issue.path}:${issue.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** Issues in file order (line, then column), the order found kept among equals. */
export function sortIssues(issues: RecipeIssue[]): RecipeIssue[] {
  return issues
    .map((issue, index) => ({index, issue}))
    .sort(
      (a, b) =>
        (a.issue.line ?? 0) - (b.issue.line ?? 0) || (a.issue.column ?? 0) - (b.issue.column ?? 0) || a.index - b.index,
    )
    .map(({issue}) => issue)
}
