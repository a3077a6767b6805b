// Files that a YAML loader must refuse: the RecipeError it throws (exit 2) and how long it took.
import {formatRecipeIssue, RecipeError} from '@transship/kit'
import {expect} from 'vitest'

export interface Refusal {
  error: RecipeError
  ms: number
}

/** Runs `parse`, which must throw a RecipeError; fails the test if it returns or throws anything else. */
export function refusal(parse: () => unknown): Refusal {
  const started = performance.now()
  try {
    parse()
  } catch (error) {
    expect(error).toBeInstanceOf(RecipeError)
    expect((error as RecipeError).exit).toBe(2)
    return {error: error as RecipeError, ms: performance.now() - started}
  }

  throw new Error('the file was taken without error')
}

/** The issues of an error, one line each, as the CLI prints them. */
export const issueLines = (error: RecipeError): string[] => error.issues.map((issue) => formatRecipeIssue(issue))
