/**
 * A schema's verdict on a YAML file's data, as positioned issues: each zod issue is pointed at the key or
 * value it is about in the source (a missing key at the map that lacks it, an unknown key at the key, a
 * value matching no form of a union by the form it came closest to).
 */
import type {z} from 'zod'

import type {RecipeIssue} from '../errors.js'

import {describeValue, IssueList, printable, REQUIRED_MESSAGE} from './issues.js'
import {type Anchor, formatPath, type KeyPath, type YamlPositions} from './paths.js'

type ZodIssue = z.core.$ZodIssue

/** How an expected type is named in messages: `a list`, `true or false`, `an integer`. */
export function expectedNoun(expected: string): string {
  switch (expected) {
    case 'array':
    case 'tuple': {
      return 'a list'
    }

    case 'boolean': {
      return 'true or false'
    }

    case 'int': {
      return 'an integer'
    }

    case 'map':
    case 'object':
    case 'record': {
      return 'a map'
    }

    case 'never': {
      return 'no value here'
    }

    case 'null': {
      return 'an empty value'
    }

    default: {
      return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`
    }
  }
}

/** A literal value of a schema as messages show it: `"push"`, `1`. */
export function literal(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

/**
 * What an issue's value was expected to be, from the issue's fields: `a string`, `"push" or "pull"`;
 * undefined for an issue of another kind.
 */
function expectedOf(issue: ZodIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type': {
      return expectedNoun(issue.expected)
    }

    case 'invalid_value': {
      const values = issue.values.map((v) => literal(v))
      return values.length === 1 ? values[0] : `one of ${values.join(', ')}`
    }

    default: {
      return undefined
    }
  }
}

/** The value at `path` in `data`, if it is there. */
export function valueAt(data: unknown, path: KeyPath): unknown {
  let value = data
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<PropertyKey, unknown>)[segment as string]
  }

  return value
}

function isPlainMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Characters of a message past which it is cut. */
const MESSAGE_LENGTH = 1000

/** The issues of one file, each pointed at its place in the source (see YamlPositions.positionOf). */
export class IssueLocator {
  readonly issues: IssueList

  constructor(
    private readonly positions: YamlPositions,
    private readonly file: string,
    /** the data the schema was given */
    readonly data: unknown,
  ) {
    this.issues = new IssueList(file)
  }

  /** How many issues there are. */
  get size(): number {
    return this.issues.size
  }

  add(path: KeyPath, anchor: Anchor, message: string): void {
    const at = this.positions.positionOf(path, anchor)
    // the schema's messages may quote the file: shown escaped and shortened, like the rest
    this.issues.add({file: this.file, ...at, message: printable(message, MESSAGE_LENGTH), path: formatPath(path)})
  }

  /** The schema's issues, their paths prefixed with `prefix` (where the data validated is in the file). */
  addZodIssues(issues: readonly ZodIssue[], prefix: KeyPath = []): void {
    for (const issue of issues) this.addZodIssue(issue, [...prefix, ...issue.path])
  }

  /** The issues to report: the first MAX_ISSUES in file order. */
  report(): RecipeIssue[] {
    return this.issues.issues()
  }

  private addZodIssue(issue: ZodIssue, path: PropertyKey[]): void {
    switch (issue.code) {
      case 'invalid_key': {
        this.add(path, 'key', issue.message)
        return
      }

      case 'invalid_union': {
        if (issue.errors.length > 0) {
          this.addUnionIssue(issue.errors, path)
          return
        }

        break
      }

      case 'unrecognized_keys': {
        // the error map gives one line per key, in the order of `keys`
        const lines = issue.message.split('\n')
        for (const [i, key] of issue.keys.entries()) {
          this.add(
            [...path, key],
            'key',
            lines.length === issue.keys.length ? (lines[i] ?? issue.message) : issue.message,
          )
        }

        return
      }

      default: {
        break
      }
    }

    const key = path.at(-1)
    const parentPath = path.slice(0, -1)
    const parent = valueAt(this.data, parentPath)
    if (path.length > 0 && isPlainMap(parent) && !Object.hasOwn(parent, key as string)) {
      const why = issue.message === REQUIRED_MESSAGE ? '' : `: ${issue.message}`
      this.add(parentPath, 'value', `missing required key ${JSON.stringify(String(key))}${why}`)
      return
    }

    this.add(path, 'value', issue.message)
  }

  /** A value that matches no branch of a union: report the branch it came closest to. */
  private addUnionIssue(branches: ReadonlyArray<readonly ZodIssue[]>, path: PropertyKey[]): void {
    const wrongKind = (branch: readonly ZodIssue[]) =>
      branch.length === 1 &&
      branch[0]!.path.length === 0 &&
      (branch[0]!.code === 'invalid_type' || branch[0]!.code === 'invalid_value')
    const candidates = branches.filter((branch) => !wrongKind(branch))
    if (candidates.length > 0) {
      const closestBranch = candidates.reduce((best, branch) => (branch.length < best.length ? branch : best))
      this.addZodIssues(closestBranch, path)
      return
    }

    const expected = branches.map((branch) => (branch[0] ? expectedOf(branch[0]) : undefined) ?? 'something else')
    this.add(
      path,
      'value',
      `expected ${[...new Set(expected)].join(' or ')}, got ${describeValue(valueAt(this.data, path))}`,
    )
  }
}
