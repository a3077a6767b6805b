/**
 * Key paths inside a YAML file (a recipe, a test file), and where they are in its source.
 */
import {
  type Document,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type LineCounter,
  type Node,
  type Pair,
} from 'yaml'

export type KeyPath = ReadonlyArray<PropertyKey>

const IDENTIFIER = /^[A-Za-z_][\w-]*$/

/** `images[0].copy[1]`, `hosts.edge.ssh`, `hosts["my host"]` */
export function formatPath(path: KeyPath): string {
  let out = ''
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`
    else if (typeof segment === 'string' && IDENTIFIER.test(segment)) out += out ? `.${segment}` : segment
    else out += `[${JSON.stringify(String(segment))}]`
  }

  return out
}

export interface Position {
  column: number
  line: number
}

interface Located {
  /** how many segments of the path were found */
  depth: number
  /** the key node of the pair holding `node`, when `node` is a map value */
  key: Node | undefined
  /** the deepest node found along the path */
  node: Node | undefined
}

/** The name of a map key as it appears in the data: merge keys are `<<`. */
export function keyName(key: unknown): string {
  if (isScalar(key)) return typeof key.value === 'symbol' ? (key.value.description ?? '') : String(key.value)
  return String(key)
}

function keyMatches(key: unknown, segment: PropertyKey): boolean {
  return isScalar(key) && keyName(key) === String(segment)
}

function resolve(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node
}

/** Walk the YAML nodes along a key path, as far as they go. */
export function locate(doc: Document, path: KeyPath): Located {
  let node = doc.contents ?? undefined
  let key: Node | undefined
  let depth = 0
  for (const segment of path) {
    const current = resolve(doc, node)
    let pair: Pair | undefined
    let next: unknown
    if (isMap(current)) {
      pair = current.items.find((item) => isPair(item) && keyMatches(item.key, segment))
      if (pair === undefined) break
      next = pair.value
    } else if (isSeq(current)) {
      const index = Number(segment)
      if (!Number.isInteger(index) || index < 0 || index >= current.items.length) break
      next = current.items[index]
    } else {
      break
    }

    key = pair ? ((pair.key as Node | null) ?? undefined) : undefined
    node = (next as Node | null) ?? undefined
    depth++
  }

  return {depth, key, node}
}

function position(lineCounter: LineCounter, offset: number): Position {
  const {col, line} = lineCounter.linePos(offset)
  return {column: col, line}
}

function start(node: Node | undefined): number | undefined {
  return node?.range?.[0]
}

function isEmptyScalar(node: Node | undefined): boolean {
  return node === undefined || (isScalar(node) && node.value === null && !node.source)
}

export type Anchor = 'key' | 'value'

/**
 * Where a path is in the source. `key`: at the key itself (unknown or invalid keys). `value`: at the value,
 * except that a map or list, or an empty value, is pointed at by its key when it has one. A path that is
 * not all there (a missing key) is pointed at by its deepest part that is.
 */
export function positionOf(
  doc: Document,
  lineCounter: LineCounter,
  path: KeyPath,
  anchor: Anchor,
): Position | undefined {
  const found = locate(doc, path)
  let offset: number | undefined
  if (found.depth === path.length && anchor === 'key') {
    offset = start(found.key) ?? start(found.node)
  } else if (found.key !== undefined && (isCollection(resolve(doc, found.node)) || isEmptyScalar(found.node))) {
    offset = start(found.key)
  } else {
    offset = start(found.node) ?? start(found.key)
  }

  return offset === undefined ? undefined : position(lineCounter, offset)
}

/** The key path of a YAML node: the pairs and list items that lead to it from the document root. */
export function pathOfAncestry(ancestry: readonly unknown[], node: unknown): PropertyKey[] {
  const path: PropertyKey[] = []
  const chain = [...ancestry, node]
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i]
    const child = chain[i + 1]
    if (isPair(parent) && child === parent.value) {
      path.push(keyName(parent.key))
    } else if (isSeq(parent)) {
      path.push(parent.items.indexOf(child as never))
    }
  }

  return path
}
