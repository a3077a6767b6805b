// The README's table of error codes, made from the kit's catalogue (ERROR_CODES) so the two cannot drift.
import {ERROR_CODES, type ErrorCodeEntry} from '@transship/kit'

export const TABLE_START =
  '<!-- error codes: generated from plugins/kit/src/error-codes.ts (npm run readme:error-codes) -->'
export const TABLE_END = '<!-- end of error codes -->'

function words(code: string): string {
  return code.replaceAll('_', ' ')
}

/** Rows in word order (`HOST_INVALID` before `HOSTS_UNREACHABLE`), as people look a code up. */
export function errorCodeTable(): string {
  const entries = Object.entries(ERROR_CODES) as Array<[string, ErrorCodeEntry]>
  entries.sort(([a], [b]) => (words(a) < words(b) ? -1 : 1))
  const rows = entries.map(([code, {exit, meaning}]) => {
    const exits = typeof exit === 'number' ? String(exit) : exit.join(', ')
    return `| \`${code}\` | ${exits} | ${meaning} |`
  })
  return ['| code | exit | meaning |', '|---|---|---|', ...rows].join('\n')
}

/** The table as the README holds it, between its markers (undefined without them). */
export function readmeErrorCodeTable(readme: string): string | undefined {
  const start = readme.indexOf(TABLE_START)
  const end = readme.indexOf(TABLE_END)
  if (start === -1 || end < start) return undefined
  return readme.slice(start + TABLE_START.length, end).trim()
}

/** The README with its table replaced by the catalogue's. */
export function withErrorCodeTable(readme: string): string {
  const start = readme.indexOf(TABLE_START)
  const end = readme.indexOf(TABLE_END)
  if (start === -1 || end < start) throw new Error(`the README has no ${TABLE_START} … ${TABLE_END} section`)
  return `${readme.slice(0, start + TABLE_START.length)}\n\n${errorCodeTable()}\n\n${readme.slice(end)}`
}
