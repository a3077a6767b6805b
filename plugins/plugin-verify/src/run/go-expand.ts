/**
 * Go's os.Expand, which container-structure-test applies to env var values, command lines and file paths:
 * `$NAME` and `${NAME}` are replaced by lookup(NAME) (a variable that is not set gives ""), as are the shell's
 * one-character specials ($0-$9, $$, $#, …); `${}` and an unclosed `${` are dropped; a `$` before anything else
 * stays.
 */
export function expandGo(text: string, lookup: (name: string) => string): string {
  let out = ''
  let from = 0
  for (let at = 0; at < text.length; at++) {
    if (text[at] !== '$' || at + 1 >= text.length) continue
    out += text.slice(from, at)
    const {name, width} = shellName(text.slice(at + 1))
    if (name === '' && width > 0) {
      // bad syntax: the characters are eaten
    } else if (name === '') {
      out += '$'
    } else {
      out += lookup(name)
    }

    at += width
    from = at + 1
  }

  return from === 0 ? text : out + text.slice(from)
}

const SPECIAL = new Set('*#$@!?-0123456789')

function shellName(rest: string): {name: string; width: number} {
  if (rest[0] === '{') {
    if (rest.length > 2 && SPECIAL.has(rest[1]!) && rest[2] === '}') return {name: rest[1]!, width: 3}
    const close = rest.indexOf('}', 1)
    if (close === 1) return {name: '', width: 2}
    if (close === -1) return {name: '', width: 1}
    return {name: rest.slice(1, close), width: close + 1}
  }

  if (SPECIAL.has(rest[0]!)) return {name: rest[0]!, width: 1}
  const match = /^\w*/.exec(rest)![0]
  return {name: match, width: match.length}
}

/** `KEY=value` entries (an image's Env) as a map; the first `=` splits, a later entry of a key wins. */
export function envMap(entries: null | readonly string[] | undefined): Map<string, string> {
  const map = new Map<string, string>()
  for (const entry of entries ?? []) {
    const at = entry.indexOf('=')
    if (at === -1) map.set(entry, '')
    else map.set(entry.slice(0, at), entry.slice(at + 1))
  }

  return map
}

/** A lookup for expandGo: the map's value, "" when unset. */
export function lookupIn(map: ReadonlyMap<string, string>): (name: string) => string {
  return (name) => map.get(name) ?? ''
}
