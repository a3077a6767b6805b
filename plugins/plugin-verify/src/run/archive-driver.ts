/**
 * The static checks on an image archive, without an engine (container-structure-test's tar driver):
 * `docker-archive:FILE`, `oci-archive:FILE` or `oci:DIR`. The image's layers are read in order, streamed, with
 * their whiteouts applied (the kit's image-files), into a map of file metadata; a second pass keeps the content
 * of the files the content and license tests read. Command and wait tests need an engine: a usage error.
 */
import {UsageError} from '@transship/kit'
import {
  type FileInfo,
  type ImageSource,
  normalizePath,
  type OpenedImage,
  openImage,
  resolveImageSource,
} from '@transship/kit/archive'
import {isFileLocation} from '@transship/kit/oci'

import type {TestResult, VerifyConfig, VerifyReport} from '../config/types.js'
import type {PathRead} from './containers.js'

import {envMap} from './go-expand.js'
import {seconds, timed} from './results.js'
import {
  DEBIAN_DOC,
  type ImageFiles,
  type ImageInspect,
  isMetadataEmpty,
  LICENSE_ALLOWLIST,
  metadataTest,
  runFileChecks,
} from './static-checks.js'

/** Whether `target` names an image archive or layout (read without an engine) rather than an image on an engine. */
export function isArchiveTarget(target: string): boolean {
  return isFileLocation(target)
}

/** Refuses what cannot be done without an engine, before anything is read. */
export function checkArchiveConfig(config: VerifyConfig, target: string): void {
  const needEngine = [
    ...(config.commandTests ?? []).map((test) => `commandTests "${test.name}"`),
    ...(config.waitTests ?? []).map((test) => `waitTests "${test.name}"`),
  ]
  if (needEngine.length > 0) {
    throw new UsageError(
      `${target} is read without an engine, where commands cannot run: ${needEngine.join(', ')} need an engine`,
      {
        code: 'VERIFY_NEEDS_ENGINE',
        details: {tests: needEngine},
        suggestions: [
          'load the image into an engine and verify it there (transship image load, then transship verify --config FILE IMAGE)',
          'or keep the static checks (fileExistenceTests, fileContentTests, metadataTest, licenseTests) in a file of their own',
        ],
      },
    )
  }

  if (config.containerRunOptions?.bindMounts?.length) {
    throw new UsageError(`${target} is read without an engine: containerRunOptions.bindMounts cannot be mounted`, {
      code: 'VERIFY_NEEDS_ENGINE',
      suggestions: ['verify the image on an engine, or leave bindMounts out'],
    })
  }
}

interface ArchiveConfig {
  config?: ImageInspect['Config']
}

/** Runs the static checks of `config` on the image archive or layout `target`. */
export async function runArchiveVerification(
  target: string,
  config: VerifyConfig,
  options: {signal: AbortSignal},
): Promise<VerifyReport> {
  const started = performance.now()
  const {signal} = options
  checkArchiveConfig(config, target)
  const source: ImageSource = await resolveImageSource(target, {code: 'VERIFY_INPUT'})
  const image = await openImage(source, {code: 'VERIFY_INPUT', signal})
  const imageConfig = (image.config as ArchiveConfig).config ?? {}
  const inspected: ImageInspect = {Config: imageConfig, Id: image.summary.configDigest}
  const results: TestResult[] = []
  if (config.metadataTest && !isMetadataEmpty(config.metadataTest)) {
    const test = config.metadataTest
    results.push(await timed('metadataTest', 'Metadata Test', signal, () => metadataTest(inspected, test)))
  }

  const tests = {
    content: config.fileContentTests ?? [],
    existence: config.fileExistenceTests ?? [],
    license: config.licenseTests ?? [],
  }
  if (tests.content.length + tests.existence.length + tests.license.length > 0) {
    const files = await ArchiveFiles.read(image, config, signal)
    // CST's tar driver adds the global variables to the environment as they are written (not expanded)
    const env = envMap(imageConfig.Env)
    for (const item of config.globalEnvVars ?? []) env.set(item.key, item.value)
    results.push(...(await runFileChecks(files, tests, {env, signal})))
  }

  return {
    host: 'local',
    image: target,
    imageId: image.summary.configDigest,
    repoDigests: [],
    results,
    seconds: seconds(started),
  }
}

const MAX_LINKS = 40

/** The files of an image read from its layers: metadata of every path, content of the paths asked for. */
export class ArchiveFiles implements ImageFiles {
  private constructor(private readonly tree: Map<string, FileInfo>) {
    // a layer may leave out the directories above its entries: they exist (as `docker load` makes them)
    for (const key of tree.keys()) {
      for (let slash = key.lastIndexOf('/'); slash > 0; slash = key.lastIndexOf('/', slash - 1)) {
        const parent = key.slice(0, slash)
        if (tree.has(parent)) break
        tree.set(parent, ROOT)
      }
    }
  }

  /** Reads the layers once for the metadata, and again for the content the tests need (if any). */
  static async read(image: OpenedImage, config: VerifyConfig, signal: AbortSignal): Promise<ArchiveFiles> {
    const metadata = new ArchiveFiles(await image.files({signal}))
    const wanted = new Set<string>()
    const want = (path: string) => {
      const file = metadata.resolve(path, true)
      if (file?.info.type === 'file') wanted.add(file.key)
      else if (file?.info.type === 'link' && file.info.linkname) wanted.add(file.info.linkname)
    }

    for (const test of config.fileContentTests ?? []) want(test.path)
    for (const test of config.licenseTests ?? []) {
      for (const file of test.files ?? []) want(file)
      if (!test.debian) continue
      for (const name of metadata.childDirectories(DEBIAN_DOC) ?? []) {
        if (!LICENSE_ALLOWLIST.includes(name)) want(`${DEBIAN_DOC}/${name}/copyright`)
      }
    }

    if (wanted.size === 0) return metadata
    return new ArchiveFiles(await image.files({contents: wanted, signal}))
  }

  async directories(dir: string): Promise<string[] | undefined> {
    return this.childDirectories(dir)
  }

  async stat(path: string): Promise<PathRead | undefined> {
    const found = this.resolve(path, false)
    if (!found) return undefined
    const {info} = found
    // a hard link is its target's content and metadata
    const target = info.type === 'link' && info.linkname !== undefined ? this.tree.get(info.linkname) : undefined
    const file = target ?? info
    return {
      content: file.content,
      gid: info.gid,
      linkname: info.linkname ?? '',
      // a symlink's own permissions are always rwxrwxrwx on Linux, whatever its tar header says
      mode: info.type === 'symlink' ? 0o777 : info.mode,
      sha256: file.sha256,
      size: file.size,
      type: (target ? target.type : info.type) as PathRead['type'],
      uid: info.uid,
      ...(info.type === 'symlink' ? {resolvedTarget: this.resolve(path, true)?.path} : {}),
    }
  }

  /** The names of the directories directly in `dir` (symlinks are not directories). */
  childDirectories(dir: string): string[] | undefined {
    const found = this.resolve(dir, true)
    if (!found || found.info.type !== 'directory') return undefined
    const prefix = found.key === '' ? '' : `${found.key}/`
    const names: string[] = []
    for (const [key, info] of this.tree) {
      if (!key.startsWith(prefix) || info.type !== 'directory') continue
      const rest = key.slice(prefix.length)
      if (rest !== '' && !rest.includes('/')) names.push(rest)
    }

    return names
  }

  /**
   * The entry at `path`: every symlink on the way resolved inside the image (`..` stops at the root, an absolute
   * target starts from it), the last one too when `follow`. undefined when absent (or a loop).
   */
  private resolve(path: string, follow: boolean): undefined | {info: FileInfo; key: string; path: string} {
    const pending = normalizePath(path)
      .split('/')
      .filter((part) => part !== '' && part !== '.')
    const done: string[] = []
    let links = 0
    while (pending.length > 0) {
      const part = pending.shift()!
      if (part === '..') {
        done.pop()
        continue
      }

      const key = [...done, part].join('/')
      const info = this.tree.get(key)
      if (!info) return undefined
      if (info.type === 'symlink' && (pending.length > 0 || follow)) {
        if (++links > MAX_LINKS) return undefined
        const target = info.linkname ?? ''
        if (target.startsWith('/')) done.length = 0
        pending.unshift(...target.split('/').filter((item) => item !== '' && item !== '.'))
        continue
      }

      if (pending.length > 0 && info.type !== 'directory') return undefined
      done.push(part)
    }

    const key = done.join('/')
    // the root is in no layer as an entry: a directory of root's
    const info = key === '' ? ROOT : this.tree.get(key)
    return info ? {info, key, path: `/${key}`} : undefined
  }
}

const ROOT: FileInfo = {gid: 0, mode: 0o755, mtime: 0, size: 0, type: 'directory', uid: 0}
