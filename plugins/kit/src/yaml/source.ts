/**
 * Reading and parsing a YAML file (a recipe, a test file) within bounds. Whatever a file holds, it costs a
 * moment and a little memory: its size is checked before it is read, its nesting while it is parsed (before
 * anything recurses on it), its anchors and aliases are counted and resolved once, duplicate keys are found
 * in one pass. Every problem is a RecipeIssue with its position; the caller's schema checks come after.
 */
import {open} from 'node:fs/promises'
import {setImmediate as nextTurn} from 'node:timers/promises'
import {
  type Alias,
  Composer,
  type CST,
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  type Node,
  type Pair,
  Parser,
  type YAMLError,
  type YAMLMap,
} from 'yaml'

import {RecipeError, type RecipeIssue} from '../errors.js'
import {formatBytes} from '../ui/format.js'
import {IssueList, printable, quote} from './issues.js'
import {formatPath, keyName, type KeyPath, type Position, YamlPositions} from './paths.js'

/** What a YAML file may hold. A recipe or a test file is a few kilobytes and a handful of levels deep. */
export const YAML_LIMITS = {
  /** alias expansions, as the yaml package counts them: more is a "billion laughs" file */
  aliasExpansions: 100,
  /** anchors (`&name`) and aliases (`*name`) in a file, together */
  anchorsAndAliases: 1000,
  /** bytes in a file: the largest file is parsed and validated in about a second on a busy machine */
  bytes: 500_000,
  /** levels of nesting of maps and lists, counting what aliases stand for */
  depth: 64,
} as const

/** The codes of the RecipeErrors thrown for a file beyond YAML_LIMITS. */
export const YamlErrorCode = {
  AliasExpansion: 'YAML_ALIAS_EXPANSION',
  TooDeep: 'YAML_TOO_DEEP',
  TooLarge: 'YAML_TOO_LARGE',
  TooManyAnchors: 'YAML_TOO_MANY_ANCHORS',
} as const

export interface YamlFileOptions {
  /** the file as given, for messages */
  file: string
  /** what the file is, with its article, for messages: `a recipe` */
  kind: string
}

export interface YamlParseOptions extends YamlFileOptions {
  /** what to say of a second document in the file (there must be one) */
  multipleDocuments: string
  /** the syntax named in messages about it */
  syntax?: 'JSON' | 'YAML'
  /** the YAML version the file is read as when it does not say (default 1.2; 1.1 reads yes/no/on/off as booleans) */
  version?: '1.1' | '1.2'
}

export interface YamlSource {
  /** the document as plain data (aliases expanded, merge keys applied); null for an empty file */
  data: unknown
  doc: Document
  /** where key paths are in the source */
  positions: YamlPositions
}

function tooLarge(options: YamlFileOptions, bytes?: number): RecipeError {
  const limit = `${YAML_LIMITS.bytes / 1000} kB`
  const size = bytes === undefined ? `more than ${limit}` : `${formatBytes(bytes)} (${bytes} bytes)`
  return new RecipeError(
    [
      {
        file: options.file,
        message: `is ${size}; ${options.kind} may be at most ${limit}: check that it is the file you meant`,
        path: '',
      },
    ],
    {code: YamlErrorCode.TooLarge},
  )
}

/**
 * The text of a file, read only when it is within YAML_LIMITS.bytes: a regular file's size is checked
 * before a byte is read, and anything else (a pipe, a device) is read no further than the limit. File
 * system errors are thrown as they come, for the caller to word; a file too large is a RecipeError.
 */
export async function readYamlFile(path: string, options: YamlFileOptions): Promise<string> {
  const handle = await open(path, 'r')
  try {
    const stats = await handle.stat()
    if (stats.isFile() && stats.size > YAML_LIMITS.bytes) throw tooLarge(options, stats.size)
    const buffer = Buffer.alloc(YAML_LIMITS.bytes + 1)
    let length = 0
    while (length < buffer.length) {
      const {bytesRead} = await handle.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }

    // a pipe, or a file that grew since: a byte past the limit is enough to know
    if (length > YAML_LIMITS.bytes) throw tooLarge(options)
    return buffer.toString('utf8', 0, length)
  } finally {
    await handle.close()
  }
}

// ---------------------------------------------------------------------------------------------------------
// running in steps

/**
 * Work done in steps: the generator yields between chunks of a fraction of a second, so that an async
 * caller lets the event loop in (Ctrl-C is handled there); see `runSteps` and `runStepsAsync`.
 */
export type Steps<T> = Generator<void, T>

/** Run steps to the end at once. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const step = steps.next()
    if (step.done) return step.value
  }
}

/** Run steps, letting the event loop in between them, and stop with `signal`'s reason once it fires. */
export async function runStepsAsync<T>(steps: Steps<T>, signal?: AbortSignal): Promise<T> {
  for (;;) {
    signal?.throwIfAborted()
    const step = steps.next()
    if (step.done) return step.value
    await nextTurn()
  }
}

// ---------------------------------------------------------------------------------------------------------
// parsing

/** Lexical tokens parsed between two steps (a few milliseconds). */
const LEXEMES_PER_STEP = 20_000

/**
 * Runs `work` without capturing stack traces: the yaml package makes an Error for each problem it finds,
 * and capturing its stack costs more than finding the problem (a file of nothing but errors would take
 * five times as long). Stacks are captured again once `work` returns; nothing else runs meanwhile.
 */
function withoutStacks<T>(work: () => T): T {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return work()
  } finally {
    Error.stackTraceLimit = limit
  }
}

function isCollectionToken(token: CST.Token): boolean {
  return token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection'
}

function position(lineCounter: LineCounter, offset: number): Position {
  const {col, line} = lineCounter.linePos(offset)
  return {column: col, line}
}

function lowerFirst(message: string): string {
  return /^[A-Z][a-z]/.test(message) ? message[0]!.toLowerCase() + message.slice(1) : message
}

/**
 * Parse YAML text within YAML_LIMITS, in steps. Throws a RecipeError: with a code of YamlErrorCode for a
 * file beyond a limit (one issue), or RECIPE_INVALID with every syntax error, duplicate key, unknown anchor
 * and misused merge key found (at most MAX_ISSUES of them, in file order).
 */
export function* parseYamlSteps(text: string, options: YamlParseOptions): Steps<YamlSource> {
  const {file} = options
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes > YAML_LIMITS.bytes) throw tooLarge(options, bytes)

  // parseDocument's pipeline (lexer, parser, composer), driven here so that nesting is bounded before the
  // composer recurses on it, and so that it can pause; keys are checked for uniqueness below, in one pass
  // per map (the yaml package compares each key with every earlier one)
  const lineCounter = new LineCounter()
  const parser = new Parser(lineCounter.addNewLine)
  const composer = new Composer({merge: true, uniqueKeys: false, version: options.version ?? '1.2'})
  const issues = new IssueList(file)
  let doc: Document.Parsed | undefined
  let documents = 0
  /** Hands a parsed token to the composer; false at a second document, which is reported instead. */
  const compose = (token: CST.Token): boolean => {
    if (token.type === 'document' && ++documents > 1) {
      const {col, line} = lineCounter.linePos(token.offset)
      issues.add({column: col, file, line, message: options.multipleDocuments, path: ''})
      return false
    }

    // the composer gives a document once the next one starts, or at its end()
    for (const composed of composer.next(token)) doc ??= composed
    return true
  }

  lineCounter.addNewLine(0)
  const lexemes = new Lexer().lex(text)
  let more = true
  /** Parses the next lexemes; returns where the nesting went too deep, 'end' or 'more'. */
  const parseSome = (): 'end' | 'more' | Position => {
    for (let n = 0; n < LEXEMES_PER_STEP; n++) {
      const lexeme = lexemes.next()
      if (lexeme.done) return 'end'
      for (const token of parser.next(lexeme.value)) more &&= compose(token)
      if (!more) return 'end'
      // the parser's stack holds the document, every collection open at this point, and the node being
      // parsed: a collection just opened too deep is on top (and whatever is on top, a stack two longer
      // than that is too deep, so that the composer never recurses further)
      const levels = parser.stack.length - 1
      const top = parser.stack.at(-1)
      if (levels > YAML_LIMITS.depth && top !== undefined && isCollectionToken(top)) {
        return position(lineCounter, top.offset)
      }

      if (levels > YAML_LIMITS.depth + 2) return position(lineCounter, parser.offset)
    }

    return 'more'
  }

  for (;;) {
    const parsed = withoutStacks(parseSome)
    if (parsed === 'end') break
    if (parsed !== 'more') throw tooDeep(options, parsed)
    yield
  }

  withoutStacks(() => {
    if (more) for (const token of parser.end()) more &&= compose(token)
    for (const composed of composer.end(true, text.length)) doc ??= composed
  })
  if (doc === undefined) throw new Error('the YAML composer gave no document')
  yield

  const syntax = options.syntax ?? 'YAML'
  for (const problems of [doc.errors, doc.warnings]) {
    for (const problem of problems) {
      const {col, line} = lineCounter.linePos(problem.pos[0])
      issues.addLazily(line, col, () => yamlIssue(problem, {column: col, line}, file, syntax))
    }
  }

  const check = new DocumentCheck(doc, new YamlPositions(doc, lineCounter), options, issues)
  if (issues.size > 0) throw new RecipeError(issues.issues())
  yield

  let data: unknown
  try {
    data = doc.toJS({maxAliasCount: YAML_LIMITS.aliasExpansions})
  } catch (error) {
    // every alias has a target (checked above): the yaml package's ReferenceError is its expansion limit
    if (error instanceof ReferenceError) {
      throw new RecipeError(
        [
          {
            file,
            message: `its anchors and aliases expand too much (more than ${YAML_LIMITS.aliasExpansions} aliases): refused`,
            path: '',
          },
        ],
        {cause: error, code: YamlErrorCode.AliasExpansion},
      )
    }

    const message = `invalid ${syntax}: ${printable(lowerFirst((error as Error).message))}`
    throw new RecipeError([{file, message, path: ''}], {cause: error})
  }

  return {data, doc, positions: new YamlPositions(doc, lineCounter, check.aliases)}
}

function tooDeep(options: YamlFileOptions, at: Position, what = ''): RecipeError {
  return new RecipeError(
    [
      {
        column: at.column,
        file: options.file,
        line: at.line,
        message: `maps and lists nested more than ${YAML_LIMITS.depth} levels deep${what}: refused (${options.kind} needs a handful; look for brackets left open)`,
        path: '',
      },
    ],
    {code: YamlErrorCode.TooDeep},
  )
}

function yamlIssue(problem: YAMLError, at: Position, file: string, syntax: 'JSON' | 'YAML'): RecipeIssue {
  return {...at, file, message: `invalid ${syntax}: ${printable(lowerFirst(problem.message))}`, path: ''}
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && typeof key.value === 'symbol' && key.value.description === '<<'
}

/**
 * One pass over a parsed document, in document order: duplicate keys; aliases resolved (to the last anchor
 * of their name before them, as YAML says), those without an anchor or inside their own anchor reported;
 * merge keys given something other than maps; anchors and aliases counted, and nesting measured with what
 * aliases stand for. Recursion is safe here: the parser has bounded the nesting.
 */
class DocumentCheck {
  /** every alias's target (undefined: no anchor of its name before it) */
  readonly aliases = new Map<Alias, Node | undefined>()
  private readonly anchors = new Map<string, Node>()
  private references = 0
  /** the levels of maps and lists in an anchored node's data (its height), for its aliases */
  private readonly heights = new Map<Node, number>()
  /** anchored nodes being walked: an alias to one of them would make the data contain itself */
  private readonly open = new Set<Node>()

  constructor(
    doc: Document,
    private readonly positions: YamlPositions,
    private readonly options: YamlFileOptions,
    private readonly issues: IssueList,
  ) {
    this.walk(doc.contents, [], 0)
  }

  private add(node: Node | undefined, path: KeyPath, message: string): void {
    const at = node?.range ? this.positions.position(node.range[0]) : undefined
    this.issues.add({file: this.options.file, ...at, message, path: formatPath(path)})
  }

  private alias(alias: Alias, path: KeyPath, depth: number): number {
    this.count(alias)
    const target = this.anchors.get(alias.source)
    this.aliases.set(alias, target)
    const name = printable(alias.source, 40)
    if (target === undefined) {
      this.add(alias, path, `unknown anchor "${name}": define it with &${name} before its alias *${name}`)
      return 0
    }

    if (this.open.has(target)) {
      this.add(alias, path, `alias *${name} is inside its own anchor &${name}: the data would contain itself`)
      return 0
    }

    const height = this.heights.get(target) ?? 0
    if (depth + height > YAML_LIMITS.depth) {
      const at = this.positions.position(alias.range?.[0] ?? 0)
      throw tooDeep(this.options, at, ` with what *${name} stands for`)
    }

    return height
  }

  private count(node: Node): void {
    if (++this.references <= YAML_LIMITS.anchorsAndAliases) return
    const at = this.positions.position(node.range?.[0] ?? 0)
    throw new RecipeError(
      [
        {
          column: at.column,
          file: this.options.file,
          line: at.line,
          message: `more than ${YAML_LIMITS.anchorsAndAliases} anchors (&name) and aliases (*name): refused (${this.options.kind} needs a few)`,
          path: '',
        },
      ],
      {code: YamlErrorCode.TooManyAnchors},
    )
  }

  private isMapLike(node: unknown): boolean {
    return isMap(isAlias(node) ? this.aliases.get(node) : node)
  }

  private map(map: YAMLMap, path: KeyPath, depth: number): number {
    let height = 0
    const seen = new Map<unknown, Pair>()
    for (const pair of map.items as Pair[]) {
      const key = pair.key as Node | null
      if (isScalar(key)) {
        const first = seen.get(key.value)
        if (first === undefined) seen.set(key.value, pair)
        else this.duplicate(key, first, path)
      }

      if (key !== null) height = Math.max(height, this.walk(key, path, depth + 1))
      const name = keyName(key)
      const value = pair.value as Node | null
      if (value !== null) height = Math.max(height, this.walk(value, [...path, name], depth + 1))
      if (isMergeKey(key)) this.merge(pair, path)
    }

    return height + 1
  }

  private duplicate(key: Node, first: Pair, path: KeyPath): void {
    const name = keyName(key)
    const firstOffset = (first.key as Node).range?.[0]
    const firstLine = firstOffset === undefined ? '' : ` (first on line ${this.positions.position(firstOffset).line})`
    this.add(key, [...path, name], `duplicate key ${quote(name)}${firstLine}`)
  }

  private merge(pair: Pair, path: KeyPath): void {
    const value = pair.value as Node | null
    const ok = this.isMapLike(value) || (isSeq(value) && value.items.every((item) => this.isMapLike(item)))
    if (ok || (isAlias(value) && this.aliases.get(value) === undefined)) return // an unknown anchor is reported as such
    this.add(value ?? (pair.key as Node), path, 'a merge key "<<" takes a map, an alias of one, or a list of them')
  }

  /**
   * Check `node`, found inside `depth` maps and lists, and what it holds; returns the levels of maps and
   * lists of its data (a scalar: 0).
   */
  private walk(node: unknown, path: KeyPath, depth: number): number {
    if (isAlias(node)) return this.alias(node, path, depth)
    if (!isMap(node) && !isSeq(node) && !isScalar(node)) return 0
    if (!isScalar(node) && depth + 1 > YAML_LIMITS.depth) {
      throw tooDeep(this.options, this.positions.position(node.range?.[0] ?? 0))
    }

    if (node.anchor) {
      this.count(node)
      this.anchors.set(node.anchor, node)
    }

    if (isScalar(node)) {
      if (node.anchor) this.heights.set(node, 0)
      return 0
    }

    if (node.anchor) this.open.add(node)
    const height = isMap(node) ? this.map(node, path, depth) : this.seq(node.items, path, depth)
    if (node.anchor) {
      this.open.delete(node)
      this.heights.set(node, height)
    }

    return height
  }

  private seq(items: unknown[], path: KeyPath, depth: number): number {
    let height = 0
    for (const [index, item] of items.entries()) height = Math.max(height, this.walk(item, [...path, index], depth + 1))
    return height + 1
  }
}
