/**
 * Checks that need no running container and no shell in the image: files read through the archive API of a
 * created (never started) container, and the image's config.
 */
/* eslint-disable no-bitwise -- file modes are bit fields */
import type {EngineClient} from '@transship/kit'

import type {
  EnvVar,
  FileContentTest,
  FileExistenceTest,
  LicenseTest,
  MetadataTest,
  TestResult,
} from '../config/types.js'

import {archiveHeaders, type EntryType, MAX_CONTENT_BYTES, type PathRead, readPath, Resources} from './containers.js'
import {expandGo, lookupIn} from './go-expand.js'
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

/**
 * A read-only view of an image's filesystem, as CST's drivers give it: through the engine's archive API of a
 * created container (EngineFiles), or from the layers of an image archive (see archive-driver.ts).
 */
export interface ImageFiles {
  /** the names of the directories directly in `dir` (symlinks are not directories); undefined: no such directory */
  directories(dir: string, signal: AbortSignal): Promise<string[] | undefined>
  /** the entry at `path`, parents' symlinks resolved, the last one not followed; undefined: absent */
  stat(path: string, want: {sha256?: boolean}, signal: AbortSignal): Promise<PathRead | undefined>
}

/** The banned-license words of CST's license tests, searched in the upper-cased copyright file. */
export const BANNED_LICENSES = ['AGPL', 'WTFPL']
/** Packages CST's license tests pass whatever their copyright files say. */
export const LICENSE_ALLOWLIST = ['libgnutls30']
/** Where Debian keeps each package's copyright file: DEBIAN_DOC/<package>/copyright. */
export const DEBIAN_DOC = '/usr/share/doc'

/** The file tests' view of an image on an engine: the archive API of a created (never started) container. */
export class EngineFiles implements ImageFiles {
  constructor(
    private readonly engine: EngineClient,
    private readonly id: string,
  ) {}

  async directories(dir: string, signal: AbortSignal): Promise<string[] | undefined> {
    return listDirectories(this.engine, this.id, dir, signal)
  }

  async stat(path: string, want: {sha256?: boolean}, signal: AbortSignal): Promise<PathRead | undefined> {
    return readPath(this.engine, this.id, path, want, signal)
  }
}

export interface FileTestsOptions {
  /** the image's environment (with the global variables), for `$NAME` in file existence paths (as CST) */
  env: ReadonlyMap<string, string>
  signal: AbortSignal
}

/** The file existence, file content and license tests against `files`. */
export async function runFileChecks(
  files: ImageFiles,
  tests: {content: FileContentTest[]; existence: FileExistenceTest[]; license: LicenseTest[]},
  options: FileTestsOptions,
): Promise<TestResult[]> {
  const {signal} = options
  const results: TestResult[] = []
  for (const test of tests.existence) {
    results.push(await timed('fileExistenceTests', test.name, signal, () => fileExistence(files, test, options)))
  }

  for (const test of tests.content) {
    results.push(await timed('fileContentTests', test.name, signal, () => fileContent(files, test, signal)))
  }

  for (const [i, test] of tests.license.entries()) {
    const name = tests.license.length === 1 ? 'License Test' : `License Test ${i + 1}`
    results.push(await timed('licenseTests', name, signal, () => licenseTest(files, test, signal)))
  }

  return results
}

/** Runs the file tests in one created container of the image on the engine, removed afterwards. */
export async function runFileTests(
  engine: EngineClient,
  imageId: string,
  tests: {content: FileContentTest[]; existence: FileExistenceTest[]; license: LicenseTest[]},
  options: FileTestsOptions & {binds?: string[]; log?: {debug(m: string): void}},
): Promise<TestResult[]> {
  if (tests.existence.length === 0 && tests.content.length === 0 && tests.license.length === 0) return []
  const {signal} = options
  const resources = new Resources(engine, options.log)
  try {
    // bind mounts show in the archive API of a created container, as in CST (its file tests see them)
    const id = await resources.create({binds: options.binds, cmd: ['true'], entrypoint: [], image: imageId}, signal)
    return await runFileChecks(new EngineFiles(engine, id), tests, options)
  } finally {
    await resources.dispose()
  }
}

/** Reads `path`, following symlinks (at most 40, like the kernel) to the file they end at. */
async function readFollowing(
  files: ImageFiles,
  path: string,
  want: {content?: boolean; sha256?: boolean},
  signal: AbortSignal,
): Promise<PathRead | undefined> {
  let current = path
  for (let hops = 0; hops <= 40; hops++) {
    const entry = await files.stat(current, want, signal)
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
  files: ImageFiles,
  test: FileExistenceTest,
  options: FileTestsOptions,
): Promise<Omit<TestResult, 'name' | 'seconds' | 'suite'>> {
  const {signal} = options
  // CST expands $NAME in the path with the image's environment
  const path = expandGo(test.path, lookupIn(options.env))
  const entry = await files.stat(path, {sha256: test.sha256 !== undefined}, signal)
  if (test.shouldExist === false) {
    return entry ? outcome([`expected ${path} not to exist, got: a ${entry.type}`]) : outcome([])
  }

  if (!entry) return outcome([`expected ${path} to exist, got: no such file or directory`])
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
        `expected ${path} to be executable by ${test.isExecutableBy}, got: ${formatGoFileMode(goFileMode(entry.type, entry.mode))}`,
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
    const file = entry.type === 'symlink' ? await readFollowing(files, path, {sha256: true}, signal) : entry
    if (!file) diff.push(`expected sha256 ${test.sha256}, got: a dangling symlink to ${entry.linkname}`)
    else if (file.type !== 'file') diff.push(`expected sha256 ${test.sha256}, got: a ${file.type}`)
    else if (file.sha256 !== test.sha256.toLowerCase()) diff.push(`expected sha256 ${test.sha256}, got: ${file.sha256}`)
  }

  return outcome(diff)
}

/** The content of a regular file (symlinks followed), or why there is none. */
async function readContent(
  files: ImageFiles,
  path: string,
  signal: AbortSignal,
): Promise<{error: string} | {text: string}> {
  const file = await readFollowing(files, path, {content: true}, signal)
  if (!file) return {error: `expected ${path} to exist, got: no such file or directory`}
  if (file.type !== 'file') return {error: `expected ${path} to be a file, got: a ${file.type}`}
  if (!file.content) return {error: `${path} is larger than ${MAX_CONTENT_BYTES} bytes: its content is not checked`}
  return {text: file.content.toString('utf8')}
}

async function fileContent(
  files: ImageFiles,
  test: FileContentTest,
  signal: AbortSignal,
): Promise<Omit<TestResult, 'name' | 'seconds' | 'suite'>> {
  const regexes = compileAll([...(test.expectedContents ?? []), ...(test.excludedContents ?? [])])
  if ('error' in regexes) return regexes.error
  const read = await readContent(files, test.path, signal)
  if ('error' in read) return outcome([read.error])
  return outcome(matchAll('contents', read.text, test.expectedContents ?? [], test.excludedContents ?? []))
}

/**
 * CST's license test: with `debian`, every package directory of /usr/share/doc (but the allowed ones) must have a
 * copyright file; that file and each of `files` must exist and must not contain a banned license's name (in any
 * case).
 */
async function licenseTest(
  files: ImageFiles,
  test: LicenseTest,
  signal: AbortSignal,
): Promise<Omit<TestResult, 'name' | 'seconds' | 'suite'>> {
  const diff: string[] = []
  const check = async (path: string) => {
    const read = await readContent(files, path, signal)
    if ('error' in read) {
      diff.push(`cannot read the license file ${path}: ${read.error}`)
      return
    }

    const upper = read.text.toUpperCase()
    const banned = BANNED_LICENSES.find((word) => upper.includes(word))
    if (banned) diff.push(`invalid license in ${path}: it contains ${banned}`)
  }

  if (test.debian) {
    const packages = await files.directories(DEBIAN_DOC, signal)
    if (packages === undefined) diff.push(`expected the directory ${DEBIAN_DOC}, got: no such directory`)
    for (const name of (packages ?? []).sort()) {
      if (LICENSE_ALLOWLIST.includes(name)) continue
      await check(`${DEBIAN_DOC}/${name}/copyright`)
    }
  }

  for (const file of test.files ?? []) await check(file)
  return outcome(diff)
}

/**
 * The directories directly in `dir` of a container, from its archive (streamed: only the headers are kept).
 * undefined when `dir` is absent or not a directory.
 */
async function listDirectories(
  engine: EngineClient,
  id: string,
  dir: string,
  signal: AbortSignal,
): Promise<string[] | undefined> {
  const resolved = await readPath(engine, id, dir, {}, signal)
  if (resolved?.type === 'symlink') {
    return listDirectories(engine, id, resolved.resolvedTarget ?? resolveLink(dir, resolved.linkname), signal)
  }

  if (resolved?.type !== 'directory') return undefined
  const names: string[] = []
  for await (const header of archiveHeaders(engine, id, dir, signal)) {
    // entries are named <base of dir>/<child>[/…]: the children that are directories
    const parts = header.name.replace(/\/$/, '').split('/')
    if (parts.length === 2 && header.type === 'directory') names.push(parts[1]!)
  }

  return names
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

/** Whether a metadata test checks nothing: CST then reports no result for it. */
export function isMetadataEmpty(test: MetadataTest): boolean {
  const lists = [test.envVars, test.unboundEnvVars, test.exposedPorts, test.unexposedPorts, test.volumes]
  return (
    [...lists, test.unmountedVolumes, test.labels].every((list) => (list?.length ?? 0) === 0) &&
    test.entrypoint === undefined &&
    test.cmd === undefined &&
    !test.workdir &&
    !test.user &&
    test.healthcheck === undefined
  )
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
  for (const {key} of test.unboundEnvVars ?? []) {
    if (env.has(key)) diff.push(`expected env var ${key} to be unset, got: ${key}=${env.get(key)}`)
  }

  if (test.entrypoint !== undefined && test.entrypoint !== null) {
    compareList(diff, 'entrypoint', test.entrypoint, config.Entrypoint ?? [])
  }

  if (test.cmd !== undefined && test.cmd !== null) compareList(diff, 'cmd', test.cmd, config.Cmd ?? [])
  const ports = Object.keys(config.ExposedPorts ?? {})
  // CST compares the port numbers (8080 is exposed by 8080/tcp and 8080/udp); a port given with its protocol
  // matches that protocol only (CST never matches one)
  const exposed = (port: string) =>
    ports.some((key) => (port.includes('/') ? key === port : key.split('/')[0] === port))
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
