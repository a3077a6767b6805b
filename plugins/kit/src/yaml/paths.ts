/**
 * Key paths inside a YAML file (a recipe, a test file), and where they are in its source.
 */
import {
  type Alias,
  type Document,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  type YAMLMap,
} from 'yaml'

import {quote} from './issues.js'

export type KeyPath = ReadonlyArray<PropertyKey>

const IDENTIFIER = /^[A-Za-z_][\w-]{0,59}$/

/** `images[0].copy[1]`, `hosts.edge.ssh`, `hosts["my host"]`; a key from the file is shortened and escaped. */
export function formatPath(path: KeyPath): string {
  let out = ''
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`
    else if (typeof segment === 'string' && IDENTIFIER.test(segment)) out += out ? `.${segment}` : segment
    else out += `[${quote(String(segment), 60)}]`
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

function start(node: Node | undefined): number | undefined {
  return node?.range?.[0]
}

function isEmptyScalar(node: Node | undefined): boolean {
  return node === undefined || (isScalar(node) && node.value === null && !node.source)
}

export type Anchor = 'key' | 'value'

/** Maps with more pairs than this are looked up through an index of their keys, built once. */
const INDEX_FROM = 16

/**
 * Where key paths are in one parsed document. Each lookup costs the length of the path: a map's keys are
 * indexed the first time it is searched, and aliases are resolved through `aliases` (their targets, found
 * once in document order) when given, so that a file with a hundred thousand issues is located in linear time.
 */
export class YamlPositions {
  private readonly keyIndexes = new WeakMap<YAMLMap, Map<string, Pair>>()

  constructor(
    readonly doc: Document,
    readonly lineCounter: LineCounter = new LineCounter(),
    private readonly aliases?: ReadonlyMap<Alias, Node | undefined>,
  ) {}

  /** Walk the YAML nodes along a key path, as far as they go. */
  locate(path: KeyPath): Located {
    let node = (this.doc.contents as Node | null) ?? undefined
    let key: Node | undefined
    let depth = 0
    for (const segment of path) {
      const current = this.resolve(node)
      let pair: Pair | undefined
      let next: unknown
      if (isMap(current)) {
        pair = this.pairOf(current, String(segment))
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

  position(offset: number): Position {
    const {col, line} = this.lineCounter.linePos(offset)
    return {column: col, line}
  }

  /**
   * Where a path is in the source. `key`: at the key itself (unknown or invalid keys). `value`: at the value,
   * except that a map or list, or an empty value, is pointed at by its key when it has one. A path that is
   * not all there (a missing key) is pointed at by its deepest part that is.
   */
  positionOf(path: KeyPath, anchor: Anchor): Position | undefined {
    const found = this.locate(path)
    let offset: number | undefined
    if (found.depth === path.length && anchor === 'key') {
      offset = start(found.key) ?? start(found.node)
    } else if (found.key !== undefined && (isCollection(this.resolve(found.node)) || isEmptyScalar(found.node))) {
      offset = start(found.key)
    } else {
      offset = start(found.node) ?? start(found.key)
    }

    return offset === undefined ? undefined : this.position(offset)
  }

  /** What a node stands for: an alias's target, anything else itself. */
  resolve(node: unknown): unknown {
    if (!isAlias(node)) return node
    return this.aliases ? this.aliases.get(node) : node.resolve(this.doc)
  }

  /** The first pair of `map` whose key is `name`. */
  private pairOf(map: YAMLMap, name: string): Pair | undefined {
    if (map.items.length <= INDEX_FROM)
      return map.items.find((item) => isScalar(item.key) && keyName(item.key) === name)
    let index = this.keyIndexes.get(map)
    if (index === undefined) {
      index = new Map()
      for (const item of map.items) {
        if (!isPair(item) || !isScalar(item.key)) continue
        const itemName = keyName(item.key)
        if (!index.has(itemName)) index.set(itemName, item)
      }

      this.keyIndexes.set(map, index)
    }

    return index.get(name)
  }
}
