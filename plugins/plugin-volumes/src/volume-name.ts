/**
 * Volume names as Docker accepts them (its local driver's rule): a letter or digit, then at least one more of
 * letters, digits, `_`, `.` and `-`. Checked wherever a name enters (command arguments, --as, a recipe) before
 * any host is asked, so that `../x` or `a/b` is a usage error that names the value, not an engine's HTTP error.
 */
import {UsageError} from '@transship/kit'
import {z} from 'zod'

export const VOLUME_NAME = /^[\dA-Za-z][\w.-]+$/

const RULE = 'a letter or digit, then at least one more letter, digit, _ . or -'

export const volumeNameSchema = z.string().regex(VOLUME_NAME, {message: `a volume name: ${RULE}`})

/** Throws a UsageError (exit 2) unless `name` is a valid volume name; `what` names where it came from. */
export function checkVolumeName(name: string, what = 'volume name'): string {
  if (!VOLUME_NAME.test(name)) {
    throw new UsageError(`${what} ${JSON.stringify(name)} is not a volume name (${RULE}): nothing was done`, {
      code: 'VOLUME_NAME_INVALID',
      details: {name},
      suggestions: ['name the volume as `docker volume ls` shows it'],
    })
  }

  return name
}
