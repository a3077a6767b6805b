/**
 * Env files as container-structure-test reads `containerRunOptions.envFile` (the godotenv 1.5 format):
 * `KEY=value` or `KEY: value` lines, an optional `export ` in front, `#` comments (a trailing one after a space),
 * 'single-quoted' values taken as they are, "double-quoted" ones with \n and \r escapes, and `$NAME`/`${NAME}`
 * replaced by a variable defined earlier in the file (unquoted and double-quoted values). CRLF line ends work.
 */

export class DotenvError extends Error {}

export function parseDotenv(text: string): Map<string, string> {
  const vars = new Map<string, string>()
  let rest = text.replaceAll('\r\n', '\n')
  for (;;) {
    rest = statementStart(rest)
    if (rest === '') break
    const {key, after} = keyName(rest)
    const {rest: next, value} = keyValue(after, vars)
    vars.set(key, value)
    rest = next
  }

  return vars
}

const isSpace = (char: string) => /^[\t\v\f\r \u0085\u00A0]$/.test(char)

function statementStart(text: string): string {
  let rest = text
  for (;;) {
    const start = rest.search(/\S/)
    if (start === -1) return ''
    rest = rest.slice(start)
    if (rest[0] !== '#') return rest
    const newline = rest.indexOf('\n')
    if (newline === -1) return ''
    rest = rest.slice(newline)
  }
}

function keyName(text: string): {after: string; key: string} {
  let rest = text.replace(/^[\t\v\f\r \u0085\u00A0]+/, '')
  if (rest.startsWith('export') && isSpace(rest[6] ?? '')) rest = rest.slice(6).replace(/^[\t\v\f\r \u0085\u00A0]+/, '')
  for (let at = 0; at < rest.length; at++) {
    const char = rest[at]!
    if (isSpace(char)) continue
    if (char === '=' || char === ':') {
      return {after: rest.slice(at + 1).replace(/^[\t\v\f\r \u0085\u00A0]+/, ''), key: rest.slice(0, at).trimEnd()}
    }

    if (!/[\p{L}\p{N}_.]/u.test(char)) {
      throw new DotenvError(
        `unexpected character ${JSON.stringify(char)} in a variable name near ${JSON.stringify(rest.split('\n')[0])}`,
      )
    }
  }

  throw new DotenvError(`a line without = or : near ${JSON.stringify(rest.split('\n')[0])}`)
}

function keyValue(text: string, vars: ReadonlyMap<string, string>): {rest: string; value: string} {
  const quote = text[0]
  if (quote !== '"' && quote !== "'") {
    let end = text.search(/[\n\r]/)
    if (end === -1) end = text.length
    // by code points, as Go ranges over runes
    const line = text.slice(0, end).split(/(?:)/u)
    let endOfValue = line.length
    // the last ` #` starts a comment
    for (let at = line.length - 1; at > 0; at--) {
      if (line[at] === '#' && isSpace(line[at - 1]!)) {
        endOfValue = at
        break
      }
    }

    const value = line
      .slice(0, endOfValue)
      .join('')
      .replaceAll(/^[\t\v\f\r \u0085\u00A0]+|[\t\v\f\r \u0085\u00A0]+$/g, '')
    return {rest: text.slice(end), value: expandVariables(value, vars)}
  }

  for (let at = 1; at < text.length; at++) {
    if (text[at] !== quote || text[at - 1] === '\\') continue
    let value = text.slice(0, at)
    value = value.replace(new RegExp(`^\\${quote}+`), '').replace(new RegExp(`\\${quote}+$`), '')
    if (quote === '"') value = expandVariables(expandEscapes(value), vars)
    return {rest: text.slice(at + 1), value}
  }

  throw new DotenvError(`an unterminated quoted value: ${text.split('\n')[0]}`)
}

function expandEscapes(text: string): string {
  const replaced = text.replaceAll(/\\./g, (match) =>
    match === String.raw`\n` ? '\n' : match === String.raw`\r` ? '\r' : match,
  )
  return replaced.replaceAll(/\\([^$])/g, '$1')
}

function expandVariables(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replaceAll(/(\\)?(\$)(\()?\{?([A-Z0-9_]+)?\}?/g, (match, escaped, _dollar, paren, name) => {
    if (escaped === '\\' || paren === '(') return match.slice(1)
    if (name) return vars.get(name as string) ?? ''
    return match
  })
}
