/**
 * Checks that need no running container and no shell in the image: files read through the archive API of a
 * created (never started) container, and the image's config.
 */
/* eslint-disable no-bitwise -- file modes are bit fields */
import type {EngineClient} from '@transship/kit'

import type {EnvVar, FileContentTest, FileExistenceTest, MetadataTest, TestResult} from '../config/types.js'

import {type EntryType, type PathRead, readPath, Resources} from './containers.js'
import {compileRegex, excerpt, outcome, type RegexResult, timed} from './results.js'

/** The parts of `GET /images/{name}/json` the checks read. */
export interface ImageInspect {
  Config?: {
    Cmd?: null | string[]
    Entrypoint?: null | string[]
    Env?: null | string[]
    ExposedPorts?: null | Record<string, unknown>
    Healthcheck?: null | {Test?: null | string[]}
    Labels?: null | Record<string, string>
    User?: string
    Volumes?: null | Record<string, unknown>
    WorkingDir?: string
  }
  Id: string
  RepoDigests?: null | string[]
}

// Go's io/fs FileMode bits, in the order of FileMode.String()'s letters "dalTLDpSugct?"
const ModeDir = 2 ** 31
const ModeSymlink = 2 ** 27
const ModeDevice = 2 ** 26
const ModeNamedPipe = 2 ** 25
const ModeSetuid = 2 ** 23
const ModeSetgid = 2 ** 22
const ModeCharDevice = 2 ** 21
const ModeSticky = 2 ** 20
const MODE_LETTERS = 'dalTLDpSugct?'

/**
 * Go's fs.FileMode of a tar entry, as archive/tar's Header.FileInfo().Mode() makes it (what container-structure-test
 * compares): permission bits, setuid/setgid/sticky as ModeSetuid/ModeSetgid/ModeSticky, the type from the entry.
 */
export function goFileMode(type: EntryType, mode: number): number {
  let result = mode & 0o777
  if (mode & 0o4000) result += ModeSetuid
  if (mode & 0o2000) result += ModeSetgid
  if (mode & 0o1000) result += ModeSticky
  switch (type) {
    case 'directory': {
      return result + ModeDir
    }

    case 'symlink': {
      return result + ModeSymlink
    }

    case 'character-device': {
      return result + ModeDevice + ModeCharDevice
    }

    case 'block-device': {
      return result + ModeDevice
    }

    case 'fifo': {
      return result + ModeNamedPipe
    }

    default: {
      return result
    }
  }
}

/** Go's FileMode.String(): one letter per type/mode bit set ('-' when none), then rwxrwxrwx. */
export function formatGoFileMode(mode: number): string {
  let text = ''
  for (const [i, letter] of [...MODE_LETTERS].entries()) {
    if (Math.floor(mode / 2 ** (31 - i)) % 2 === 1) text += letter
  }

  if (text === '') text = '-'
  const rwx = 'rwxrwxrwx'
  for (const [i, letter] of [...rwx].entries()) text += mode & (1 << (8 - i)) ? letter : '-'
  return text
}

/** Runs the file existence and file content tests in one created container, removed afterwards. */
export async function runFileTests(
  engine: EngineClient,
  imageId: string,
  existence: FileExistenceTest[],
  content: FileContentTest[],
  options: {log?: {debug(m: string): void}; signal: AbortSignal},
): Promise<TestResult[]> {
  if (existence.length === 0 && content.length === 0) return []
  const {signal} = options
  const resources = new Resources(engine, options.log)
  const results: TestResult[] = []
  try {
    const id = await resources.create({cmd: ['true'], entrypoint: [], image: imageId, networkMode: 'none'}, signal)
    for (const test of existence) {
      results.push(await timed('fileExistenceTests', test.name, signal, () => fileExistence(engine, id, test, signal)))
    }

    for (const test of content) {
      results.push(await timed('fileContentTests', test.name, signal, () => fileContent(engine, id, test, signal)))
    }

    return results
  } finally {
    await resources.dispose()
  }
}

/** Reads `path`, following symlinks (at most 40, like the kernel) to the file they end at. */
async function readFollowing(
  engine: EngineClient,
  id: string,
  path: string,
  want: {content?: boolean; sha256?: boolean},
  signal: AbortSignal,
): Promise<PathRead | undefined> {
  let current = path
  for (let hops = 0; hops <= 40; hops++) {
    const entry = await readPath(engine, id, current, want, signal)
    if (entry?.type !== 'symlink') return entry
    current = entry.resolvedTarget ?? resolveLink(current, entry.linkname)
  }

  throw new Error(`too many levels of symbolic links at ${path}`)
}

function resolveLink(path: string, target: string): string {
  if (target.startsWith('/')) return target
  const parts = path.split('/').slice(0, -1)
  for (const part of target.split('/')) {
    if (part === '..') parts.pop()
    else if (part !== '.' && part !== '') parts.push(part)
  }

  return '/' + parts.filter(Boolean).join('/')
}

async function fileExistence(
  engine: EngineClient,
  id: string,
  test: FileExistenceTest,
  signal: AbortSignal,
): Promise<Omit<TestResult, 'name' | 'seconds' | 'suite'>> {
  const entry = await readPath(engine, id, test.path, {sha256: test.sha256 !== undefined}, signal)
  if (test.shouldExist === false) {
    return entry ? outcome([`expected ${test.path} not to exist, got: a ${entry.type}`]) : outcome([])
  }

  if (!entry) return outcome([`expected ${test.path} to exist, got: no such file or directory`])
  const diff: string[] = []
  if (test.permissions !== undefined && test.permissions !== '') {
    const actual = formatGoFileMode(goFileMode(entry.type, entry.mode))
    if (actual !== test.permissions) diff.push(`expected permissions ${test.permissions}, got: ${actual}`)
  }

  if (test.uid !== undefined && test.uid !== -1 && entry.uid !== test.uid) {
    diff.push(`expected uid ${test.uid}, got: ${entry.uid}`)
  }

  if (test.gid !== undefined && test.gid !== -1 && entry.gid !== test.gid) {
    diff.push(`expected gid ${test.gid}, got: ${entry.gid}`)
  }

  if (test.isExecutableBy !== undefined) {
    const bits = {any: 0o111, group: 0o010, other: 0o001, owner: 0o100}[test.isExecutableBy]
    if ((entry.mode & bits) === 0) {
      diff.push(
        `expected ${test.path} to be executable by ${test.isExecutableBy}, got: ${formatGoFileMode(goFileMode(entry.type, entry.mode))}`,
      )
    }
  }

  if (test.linkTarget !== undefined) {
    if (entry.type !== 'symlink') diff.push(`expected a symlink to ${test.linkTarget}, got: a ${entry.type}`)
    else if (entry.linkname !== test.linkTarget) {
      diff.push(`expected a symlink to ${test.linkTarget}, got: a symlink to ${entry.linkname}`)
    }
  }

  if (test.sha256 !== undefined) {
    const file = entry.type === 'symlink' ? await readFollowing(engine, id, test.path, {sha256: true}, signal) : entry
    if (!file) diff.push(`expected sha256 ${test.sha256}, got: a dangling symlink to ${entry.linkname}`)
    else if (file.type !== 'file') diff.push(`expected sha256 ${test.sha256}, got: a ${file.type}`)
    else if (file.sha256 !== test.sha256.toLowerCase()) diff.push(`expected sha256 ${test.sha256}, got: ${file.sha256}`)
  }

  return outcome(diff)
}

async function fileContent(
  engine: EngineClient,
  id: string,
  test: FileContentTest,
  signal: AbortSignal,
): Promise<Omit<TestResult, 'name' | 'seconds' | 'suite'>> {
  const regexes = compileAll([...(test.expectedContents ?? []), ...(test.excludedContents ?? [])])
  if ('error' in regexes) return regexes.error
  const file = await readFollowing(engine, id, test.path, {content: true}, signal)
  if (!file) return outcome([`expected ${test.path} to exist, got: no such file or directory`])
  if (file.type !== 'file' || !file.content) return outcome([`expected ${test.path} to be a file, got: a ${file.type}`])
  const text = file.content.toString('utf8')
  return outcome(matchAll('contents', text, test.expectedContents ?? [], test.excludedContents ?? []))
}

/** Compiles every pattern up front: an invalid one makes the test an error, not a failure. */
export function compileAll(patterns: string[]): {error: Omit<TestResult, 'name' | 'seconds' | 'suite'>} | {ok: true} {
  for (const pattern of patterns) {
    const compiled: RegexResult = compileRegex(pattern)
    if ('error' in compiled) return {error: {message: compiled.error, status: 'error'}}
  }

  return {ok: true}
}

/** Diff lines for the expected patterns that do not match `text` and the excluded ones that do. */
export function matchAll(what: string, text: string, expected: string[], excluded: string[]): string[] {
  const diff: string[] = []
  for (const pattern of expected) {
    const compiled = compileRegex(pattern)
    if ('regex' in compiled && !compiled.regex.test(text)) {
      diff.push(`expected ${what} to match /${pattern}/, got: ${excerpt(text)}`)
    }
  }

  for (const pattern of excluded) {
    const compiled = compileRegex(pattern)
    if ('regex' in compiled && compiled.regex.test(text)) {
      diff.push(`expected ${what} not to match /${pattern}/, got: ${excerpt(text)}`)
    }
  }

  return diff
}

/** The metadata test against the image's config: one result, a diff line per mismatch. */
export function metadataTest(image: ImageInspect, test: MetadataTest): Omit<TestResult, 'name' | 'seconds' | 'suite'> {
  const config = image.Config ?? {}
  const env = new Map<string, string>()
  for (const item of config.Env ?? []) {
    const at = item.indexOf('=')
    if (at === -1) env.set(item, '')
    else env.set(item.slice(0, at), item.slice(at + 1))
  }

  const labels = new Map(Object.entries(config.Labels ?? {}))
  const regexes = compileAll(
    [...(test.envVars ?? []), ...(test.labels ?? [])].filter((item) => item.isRegex).map((item) => item.value),
  )
  if ('error' in regexes) return regexes.error
  const diff: string[] = [
    ...keyValues('env var', env, test.envVars ?? []),
    ...keyValues('label', labels, test.labels ?? []),
  ]
  for (const key of test.unboundEnvVars ?? []) {
    if (env.has(key)) diff.push(`expected env var ${key} to be unset, got: ${key}=${env.get(key)}`)
  }

  if (test.entrypoint !== undefined && test.entrypoint !== null) {
    compareList(diff, 'entrypoint', test.entrypoint, config.Entrypoint ?? [])
  }

  if (test.cmd !== undefined && test.cmd !== null) compareList(diff, 'cmd', test.cmd, config.Cmd ?? [])
  const ports = Object.keys(config.ExposedPorts ?? {})
  const exposed = (port: string) => ports.some((key) => key === port || (!port.includes('/') && key === `${port}/tcp`))
  for (const port of test.exposedPorts ?? []) {
    if (!exposed(port)) diff.push(`expected port ${port} to be exposed, got: ${JSON.stringify(ports)}`)
  }

  for (const port of test.unexposedPorts ?? []) {
    if (exposed(port)) diff.push(`expected port ${port} not to be exposed, got: ${JSON.stringify(ports)}`)
  }

  const volumes = Object.keys(config.Volumes ?? {})
  for (const volume of test.volumes ?? []) {
    if (!volumes.includes(volume)) diff.push(`expected volume ${volume}, got: ${JSON.stringify(volumes)}`)
  }

  for (const volume of test.unmountedVolumes ?? []) {
    if (volumes.includes(volume)) diff.push(`expected no volume ${volume}, got: ${JSON.stringify(volumes)}`)
  }

  if (test.workdir && test.workdir !== (config.WorkingDir ?? '')) {
    diff.push(`expected workdir ${test.workdir}, got: ${JSON.stringify(config.WorkingDir ?? '')}`)
  }

  if (test.user && test.user !== (config.User ?? '')) {
    diff.push(`expected user ${test.user}, got: ${JSON.stringify(config.User ?? '')}`)
  }

  if (test.healthcheck !== undefined) {
    const healthTest = config.Healthcheck?.Test ?? []
    const has = healthTest.length > 0 && healthTest[0] !== 'NONE'
    if (has !== test.healthcheck) {
      diff.push(
        test.healthcheck
          ? `expected a HEALTHCHECK, got: ${healthTest.length > 0 ? 'HEALTHCHECK NONE' : 'none'}`
          : `expected no HEALTHCHECK, got: ${JSON.stringify(healthTest)}`,
      )
    }
  }

  return outcome(diff)
}

function keyValues(what: string, actual: Map<string, string>, expected: EnvVar[]): string[] {
  const diff: string[] = []
  for (const item of expected) {
    const value = actual.get(item.key)
    if (value === undefined) {
      diff.push(`expected ${what} ${item.key}, got: none`)
      continue
    }

    if (item.isRegex) {
      const compiled = compileRegex(item.value)
      if ('regex' in compiled && !compiled.regex.test(value)) {
        diff.push(`expected ${what} ${item.key} to match /${item.value}/, got: ${JSON.stringify(value)}`)
      }
    } else if (value !== item.value) {
      diff.push(`expected ${what} ${item.key}=${JSON.stringify(item.value)}, got: ${JSON.stringify(value)}`)
    }
  }

  return diff
}

function compareList(diff: string[], what: string, expected: string[], actual: string[]): void {
  if (expected.length !== actual.length || expected.some((item, i) => item !== actual[i])) {
    diff.push(`expected ${what} ${JSON.stringify(expected)}, got: ${JSON.stringify(actual)}`)
  }
}
