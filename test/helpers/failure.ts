// The error an operation fails with, for tests that check what a user is told (code, exit, message).
import {expect} from 'vitest'

/** An error as the code under test throws it: a TransshipError carries a code, an exit code and suggestions. */
export type Failure = Error & {code?: string; exit?: number; suggestions?: string[]}

type ErrorClass<T> = abstract new (...args: never[]) => T

/**
 * The error `promise` rejects with; the test fails when it resolves. With `type`, the error must be an instance
 * of that class (and is typed as one).
 */
export async function failure(promise: Promise<unknown>): Promise<Failure>
export async function failure<T>(promise: Promise<unknown>, type: ErrorClass<T>): Promise<T>
export async function failure<T>(promise: Promise<unknown>, type?: ErrorClass<T>): Promise<Failure | T> {
  let rejected: undefined | {error: unknown}
  try {
    await promise
  } catch (error) {
    rejected = {error}
  }

  if (!rejected) throw new Error('expected a rejection, but the promise resolved')
  if (type) expect(rejected.error).toBeInstanceOf(type)
  return rejected.error as Failure | T
}

/** failure() for synchronous code: the error `fn` throws; the test fails when it returns. */
export function thrown(fn: () => unknown): Failure
export function thrown<T>(fn: () => unknown, type: ErrorClass<T>): T
export function thrown<T>(fn: () => unknown, type?: ErrorClass<T>): Failure | T {
  let caught: undefined | {error: unknown}
  try {
    fn()
  } catch (error) {
    caught = {error}
  }

  if (!caught) throw new Error('expected an error, but it returned')
  if (type) expect(caught.error).toBeInstanceOf(type)
  return caught.error as Failure | T
}
