// The kit's YAML loader on its own, with a small schema: what it returns, where it points its issues, and
// how it reports a file that cannot be read.
import {RecipeError, type TransshipError, UsageError} from '@transship/kit'
import {
  describeValue,
  expectedNoun,
  loadYamlFile,
  MAX_ISSUES,
  parseYamlText,
  REQUIRED_MESSAGE,
  unknownKeyMessage,
  YAML_LIMITS,
  type YamlDocumentSpec,
  YamlErrorCode,
  type YamlFileProblem,
  type YamlFileSpec,
} from '@transship/kit/yaml'
import {execFile} from 'node:child_process'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {z} from 'zod'

import {issueLines, refusal} from '../../../../../test/helpers/yaml-refusal.js'

const schema = z.strictObject({
  enabled: z.boolean().optional(),
  label: z.string().optional(),
  name: z.string(),
  port: z.number().int().optional(),
  server: z.strictObject({host: z.string()}).optional(),
  tags: z.array(z.string()).optional(),
})
type Config = z.output<typeof schema>

function shapeKeys(inst: unknown): string[] {
  const shape = (inst as undefined | {_zod?: {def?: {shape?: object}}})?._zod?.def?.shape
  return shape ? Object.keys(shape) : []
}

const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'unrecognized_keys') {
    return iss.keys.map((key) => unknownKeyMessage(key, shapeKeys(iss.inst))).join('\n')
  }

  if (iss.input === undefined) return REQUIRED_MESSAGE
  if (iss.code === 'invalid_type') return `expected ${expectedNoun(iss.expected)}, got ${describeValue(iss.input)}`
}

const spec: YamlDocumentSpec<Config> = {
  empty: 'the test file is empty: give it a name',
  errorMap,
  kind: 'a test file',
  multipleDocuments: 'a test file is one document',
  notAMap: (what) => `a test file is a map of keys, not ${what}`,
  schema,
}

const parse = (text: string, more: Partial<YamlDocumentSpec<Config>> = {}, file = 't.yaml') =>
  parseYamlText(text, file, {...spec, ...more})

const issuesOf = (text: string, more: Partial<YamlDocumentSpec<Config>> = {}, file = 't.yaml') =>
  issueLines(refusal(() => parse(text, more, file)).error)

describe('parseYamlText', () => {
  it('gives the value the schema parsed', () => {
    expect(parse('name: a\nport: 80\ntags: [x, y]\n')).toEqual({name: 'a', port: 80, tags: ['x', 'y']})
  })

  it('points each issue at its key or value, with its path and a did-you-mean', () => {
    expect(issuesOf('name: a\nprot: 80\ntags: [x, 3]\n')).toEqual([
      't.yaml:2:1 prot: unknown key "prot" (did you mean "port"?)',
      't.yaml:3:11 tags[1]: expected a string, got the number 3',
    ])
  })

  it('lists the keys allowed where no name is close', () => {
    expect(issuesOf('name: a\nserver: {host: h, zzz: 1}\n')).toEqual([
      't.yaml:2:19 server.zzz: unknown key "zzz" (allowed: host)',
    ])
  })

  it('reports a missing key at the map that lacks it', () => {
    expect(issuesOf('port: 1\n')).toEqual(['t.yaml:1:1: missing required key "name"'])
    expect(issuesOf('name: a\nserver:\n  port: 1\n')).toEqual([
      't.yaml:2:1 server: missing required key "host"',
      't.yaml:3:3 server.port: unknown key "port" (allowed: host)',
    ])
  })

  it("refuses an empty file, a file that is not a map, and a second document, in the spec's words", () => {
    expect(issuesOf('')).toEqual(['t.yaml: the test file is empty: give it a name'])
    expect(issuesOf('# nothing here\n')).toEqual(['t.yaml: the test file is empty: give it a name'])
    expect(issuesOf('- a\n')).toEqual(['t.yaml:1:1: a test file is a map of keys, not a list'])
    expect(issuesOf('name: a\n---\nname: b\n')).toEqual(['t.yaml:2:1: a test file is one document'])
  })

  it('reads YAML 1.2 by default, and YAML 1.1 when asked (yes is true there)', () => {
    expect(issuesOf('name: a\nenabled: yes\n')).toEqual([
      't.yaml:2:10 enabled: expected true or false, got the string "yes"',
    ])
    expect(parse('name: a\nenabled: yes\n', {version: '1.1'})).toEqual({enabled: true, name: 'a'})
  })

  it('names the syntax in syntax errors', () => {
    expect(issuesOf('{"name": "a",', {syntax: 'JSON'}, 't.json')[0]).toMatch(/^t\.json:1:\d+: invalid JSON: /)
    expect(issuesOf('name: [a\n')[0]).toMatch(/^t\.yaml:\d+:\d+: invalid YAML: /)
  })

  it('reads a plain number or boolean as its text where a string is wanted, when asked', () => {
    expect(issuesOf('name: 0x1F\n')).toEqual(['t.yaml:1:7 name: expected a string, got the number 31'])
    expect(parse('name: 0x1F\nlabel: true\n', {scalarsAsStrings: true})).toEqual({label: 'true', name: '0x1F'})
  })

  it('validates what prepare gives, and stops at the issues it reports', () => {
    const rename = {
      prepare: ({data}: {data: unknown}) => ({...(data as object), name: 'renamed'}),
    }
    expect(parse('name: 3\n', rename)).toEqual({name: 'renamed'})
    const refuse: Partial<YamlDocumentSpec<Config>> = {
      prepare({data}, issues) {
        issues.add(['tags'], 'key', 'tags are not taken here')
        return data
      },
    }
    // the schema's issue (name) is not reported: prepare's come first
    expect(issuesOf('name: 3\ntags: []\n', refuse)).toEqual(['t.yaml:2:1 tags: tags are not taken here'])
  })

  it('runs check whatever the schema said, and reports all issues in file order', () => {
    const check: Partial<YamlDocumentSpec<Config>> = {
      check(data, issues) {
        const {label} = data as {label?: unknown}
        if (label !== 'known') issues.add(['label'], 'value', `unknown label ${JSON.stringify(label)}`)
      },
    }
    expect(issuesOf('label: nope\nname: 3\n', check)).toEqual([
      't.yaml:1:8 label: unknown label "nope"',
      't.yaml:2:7 name: expected a string, got the number 3',
    ])
    expect(issuesOf('name: a\nlabel: nope\n', check)).toEqual(['t.yaml:2:8 label: unknown label "nope"'])
    expect(parse('name: a\nlabel: known\n', check)).toEqual({label: 'known', name: 'a'})
  })

  it('holds every file to the limits, with a code for each', () => {
    const big = refusal(() => parse(`name: a\n${'#'.repeat(YAML_LIMITS.bytes)}\n`)).error
    expect(big.code).toBe(YamlErrorCode.TooLarge)
    expect(big.message).toMatch(/a test file may be at most 500 kB/)
    expect(refusal(() => parse(`name: ${'['.repeat(100)}`)).error.code).toBe(YamlErrorCode.TooDeep)
    const nine = (item: string) => `[${Array.from({length: 9}, () => item).join(', ')}]`
    const laughs = `name: a\na: &a ${nine('x')}\nb: &b ${nine('*a')}\nc: &c ${nine('*b')}\nd: &d ${nine('*c')}\n`
    expect(refusal(() => parse(laughs)).error.code).toBe(YamlErrorCode.AliasExpansion)
    const anchors = Array.from({length: 600}, (_, i) => `k${i}: [&a${i} x, *a${i}]`)
    expect(refusal(() => parse(anchors.join('\n'))).error.code).toBe(YamlErrorCode.TooManyAnchors)
  })

  it('reports the first MAX_ISSUES issues, and how many more there are', () => {
    const text = `name: a\n${Array.from({length: MAX_ISSUES + 50}, (_, i) => `zz${i}: 0\n`).join('')}`
    const {error} = refusal(() => parse(text))
    expect(error.code).toBe('RECIPE_INVALID')
    expect(error.issues).toHaveLength(MAX_ISSUES + 1)
    expect(issueLines(error).at(-1)).toBe(
      't.yaml: and 50 more issues (only the first 100 are listed): fix these and run again',
    )
  })
})

describe('loadYamlFile', () => {
  let dir: string
  let socketServer: Server | undefined
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kit-yaml-load-'))
    await writeFile(join(dir, 'cfg.yaml'), 'name: a\n')
    await writeFile(join(dir, 'notes.txt'), 'not a test file\n')
    await mkdir(join(dir, 'sub'))
    await writeFile(join(dir, 'sub', 'b.yml'), 'name: b\n')
  })
  afterAll(async () => {
    socketServer?.close()
    await rm(dir, {force: true, recursive: true})
  })

  /** Throws the problem it is given, for the test to look at. */
  class Problem extends UsageError {
    constructor(readonly problem: YamlFileProblem) {
      super(problem.reason, {code: 'FILE_UNREADABLE'})
    }
  }

  const fileSpec: YamlFileSpec = {
    fileError: (problem): TransshipError => new Problem(problem),
    names: /\.ya?ml$/i,
  }

  async function problemOf(file: string, more: Partial<YamlFileSpec> = {}): Promise<YamlFileProblem> {
    const error = await loadYamlFile(file, {...spec, ...fileSpec, ...more}).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(Problem)
    return (error as Problem).problem
  }

  it('reads, parses and validates a file', async () => {
    await expect(loadYamlFile(join(dir, 'cfg.yaml'), {...spec, ...fileSpec})).resolves.toEqual({name: 'a'})
  })

  // tests that write files do it in a directory of their own: the suggestions for missing files read `dir`
  it('names the file in its issues', async () => {
    const file = join(await mkdtemp(join(dir, 'own-')), 'bad.yaml')
    await writeFile(file, 'name: a\nprot: 1\n')
    const error = await loadYamlFile(file, {...spec, ...fileSpec}).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(RecipeError)
    expect((error as RecipeError).message).toBe(`${file}:2:1 prot: unknown key "prot" (did you mean "port"?)`)
  })

  it('suggests the same name with another extension, else the closest name, for a missing file', async () => {
    expect(await problemOf(join(dir, 'cfg.yml'))).toMatchObject({
      reason: 'not-found',
      suggestions: [`did you mean ${join(dir, 'cfg.yaml')}?`, 'check the path'],
    })
    expect(await problemOf(join(dir, 'cgf.yaml'))).toMatchObject({
      suggestions: [`did you mean ${join(dir, 'cfg.yaml')}?`, 'check the path'],
    })
    // only files the spec names are suggested
    expect(await problemOf(join(dir, 'notes.yaml'))).toMatchObject({suggestions: ['check the path']})
    expect(await problemOf(join(dir, 'missing', 'cfg.yaml'))).toMatchObject({
      reason: 'not-found',
      suggestions: ['check the path'],
    })
  })

  it('says where a relative path was looked up', async () => {
    const problem = await problemOf('no-such-dir/cfg.yaml')
    expect(problem).toMatchObject({suggestions: [`check the path (relative to ${process.cwd()})`]})
  })

  it('reports a directory with the files of this kind in it', async () => {
    expect(await problemOf(join(dir, 'sub'))).toEqual({files: ['b.yml'], reason: 'directory'})
  })

  it('refuses anything but a regular file when asked, and else reads it like one', async () => {
    expect(await problemOf('/dev/null', {regularOnly: true})).toEqual({reason: 'not-a-file'})
    const fifo = join(dir, 'cfg.fifo')
    await promisify(execFile)('mkfifo', [fifo])
    const writing = writeFile(fifo, 'name: from a pipe\n')
    await expect(loadYamlFile(fifo, {...spec, ...fileSpec})).resolves.toEqual({name: 'from a pipe'})
    await writing
  })

  it('reports a file that cannot be opened as unreadable, with the reason', async () => {
    const socket = join(dir, 'cfg.sock')
    socketServer = createServer()
    await new Promise<void>((resolve) => {
      socketServer!.listen(socket, resolve)
    })
    expect(await problemOf(socket)).toMatchObject({detail: expect.stringMatching(/ENXIO/), reason: 'unreadable'})
  })

  it('stops between its steps once the signal fires', async () => {
    const file = join(await mkdtemp(join(dir, 'own-')), 'keys.yaml')
    await writeFile(file, `name: a\n${Array.from({length: 40_000}, (_, i) => `k${i}: 0\n`).join('')}`)
    const controller = new AbortController()
    const loading = loadYamlFile(file, {...spec, ...fileSpec}, {signal: controller.signal})
    const reason = new Error('interrupted')
    setImmediate(() => controller.abort(reason))
    await expect(loading).rejects.toBe(reason)
  })
})
