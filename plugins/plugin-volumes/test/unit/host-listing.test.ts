import {localShell, TransshipError} from '@transship/kit'
import {execFileSync, spawn} from 'node:child_process'
import {
  chmodSync,
  chownSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {sha256Hex} from '../../../../test/helpers/digests.js'
import {compareManifests, formatDifferences} from '../../src/manifest/compare.js'
import {findTime, hashFiles, type ListingEnd, listVolume, withDigests} from '../../src/manifest/host-listing.js'
import {
  decodeName,
  type ManifestEntry,
  manifestOfTar,
  rawPath,
  type VolumeManifest,
} from '../../src/manifest/tar-manifest.js'
import {TAR_FLAGS} from '../helpers/gnu-tar.js'

/** a latin1 name: 'caf' and 0xE9, not valid UTF-8 */
const LATIN1 = Buffer.from([0x63, 0x61, 0x66, 0xe9])
const NANO_TIME = '@1700000000.123456789'

function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

const canBuild =
  process.getuid?.() === 0 && ['getfattr', 'setfattr', 'setfacl', 'mknod', 'python3'].every((c) => commandExists(c))

function sh(script: string, cwd: string): void {
  execFileSync('sh', ['-c', script], {cwd, stdio: 'ignore'})
}

function end(root: string, getfattr = true): ListingEnd {
  return {getfattr, host: 'here', root, shell: localShell()}
}

async function tarManifest(dir: string): Promise<VolumeManifest> {
  // stderr ignored: tar says it leaves the socket out
  const child = spawn('tar', ['-C', dir, ...TAR_FLAGS, '-cf', '-', '.'], {stdio: ['ignore', 'pipe', 'ignore']})
  return manifestOfTar(child.stdout)
}

function entryOf(manifest: VolumeManifest, entryPath: string): ManifestEntry {
  const entry = manifest.entries.find((candidate) => candidate.path === entryPath)
  if (!entry) throw new Error(`no entry ${entryPath} in ${manifest.entries.map((e) => e.path).join(', ')}`)
  return entry
}

/** The manifest without what differs in kind from a tar stream's: digests, sparse, ACLs in text form. */
function comparable(manifest: VolumeManifest): VolumeManifest {
  const entries = manifest.entries.map((entry) => {
    const copy = {
      ...entry,
      xattrs: Object.fromEntries(Object.entries(entry.xattrs).filter(([name]) => !name.startsWith('acl.'))),
    }
    delete copy.digest
    delete copy.sparse
    return copy
  })
  return {entries, totals: manifest.totals}
}

function expectSame(source: VolumeManifest, destination: VolumeManifest): void {
  const comparison = compareManifests(source, destination)
  expect(formatDifferences(comparison)).toEqual([])
  expect(comparison.equal).toBe(true)
}

function sha256Of(file: Buffer | string): string {
  return sha256Hex(readFileSync(file))
}

/** A tree with one of everything a volume holds, odd names, xattrs and an ACL. */
function buildTree(dir: string): void {
  mkdirSync(dir)
  chmodSync(dir, 0o750)
  writeFileSync(path.join(dir, 'hello.txt'), 'hello\n')
  mkdirSync(path.join(dir, 'empty'))
  mkdirSync(path.join(dir, 'etc'))
  writeFileSync(path.join(dir, 'etc/config'), 'key=value\n')
  symlinkSync('../hello.txt', path.join(dir, 'etc/link'))
  symlinkSync('nowhere', path.join(dir, 'dangling'))
  writeFileSync(path.join(dir, 'a'), 'linked content')
  linkSync(path.join(dir, 'a'), path.join(dir, 'b'))
  linkSync(path.join(dir, 'a'), path.join(dir, 'etc/c'))
  writeFileSync(path.join(dir, 'owned'), 'by 999')
  chownSync(path.join(dir, 'owned'), 999, 998)
  writeFileSync(path.join(dir, 'ping'), 'binary')
  chmodSync(path.join(dir, 'ping'), 0o4755)
  mkdirSync(path.join(dir, 'tmp'))
  chmodSync(path.join(dir, 'tmp'), 0o1777)
  writeFileSync(path.join(dir, 'new\nline'), 'newline')
  writeFileSync(path.join(dir, 'with space'), 'space')
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), LATIN1]), 'latin1')
  sh(
    [
      'mkfifo pipe',
      'mknod null c 1 3',
      'truncate -s 10M sparse',
      'printf x | dd of=sparse bs=1 seek=5000000 conv=notrunc',
      `python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('sock')"`,
      'setfattr -n user.note -v "a note" hello.txt',
      'setfattr -n user.bin -v 0x00ff10 etc/config',
      'setfattr -n user.odd -v 1 "new\nline"',
      'setfacl -m u:1234:rw etc/config',
      'setfacl -d -m u:1234:rx etc',
      `touch -d ${NANO_TIME} hello.txt`,
      'touch -h -d @-5.25 dangling',
      'touch -d @1600000000 etc',
    ].join(' && '),
    dir,
  )
}

describe.skipIf(!canBuild)('a volume listed on its host', () => {
  let root: string
  let tree: string
  let listing: VolumeManifest

  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'transship-host-listing-'))
    tree = path.join(root, 'tree')
    buildTree(tree)
    listing = await listVolume(end(tree))
  })

  afterAll(() => {
    if (root) rmSync(root, {force: true, recursive: true})
  })

  it('equals the manifest of the tar stream on every attribute but the digests', async () => {
    const tar = await tarManifest(tree)
    expectSame(comparable(tar), comparable(listing))
    expect(listing.totals).toEqual({...tar.totals, sparseFiles: 0})
    expect(listing.xattrs).toBe('listed')
  })

  it('describes each kind of entry', () => {
    expect(listing.entries[0]).toMatchObject({path: '.', type: 'directory', mode: 0o750, size: 0})
    expect(entryOf(listing, 'hello.txt')).toMatchObject({type: 'file', size: 6, mtime: '1700000000.123456789'})
    expect(entryOf(listing, 'hello.txt').digest).toBeUndefined()
    expect(entryOf(listing, 'empty')).toMatchObject({type: 'directory', size: 0})
    expect(entryOf(listing, 'etc')).toMatchObject({mtime: '1600000000.000000000'})
    expect(entryOf(listing, 'etc/link')).toMatchObject({type: 'symlink', linkTarget: '../hello.txt', size: 0})
    expect(entryOf(listing, 'dangling')).toMatchObject({type: 'symlink', linkTarget: 'nowhere', mtime: '-5.250000000'})
    expect(entryOf(listing, 'pipe')).toMatchObject({type: 'fifo', size: 0})
    expect(entryOf(listing, 'null')).toMatchObject({type: 'char', devmajor: 1, devminor: 3})
    expect(entryOf(listing, 'sparse')).toMatchObject({type: 'file', size: 10_485_760})
    expect(entryOf(listing, 'owned')).toMatchObject({uid: 999, gid: 998})
    expect(entryOf(listing, 'ping').mode).toBe(0o4755)
    expect(entryOf(listing, 'tmp').mode).toBe(0o1777)
    expect(listing.entries.some((entry) => entry.path === 'sock')).toBe(false)
  })

  it('groups hard links under their first path', () => {
    const group = listing.entries.filter((entry) => ['a', 'b', 'etc/c'].includes(entry.path))
    const [leader, ...others] = group
    expect(leader).toMatchObject({type: 'file', size: 14})
    expect(others).toHaveLength(2)
    for (const other of others) expect(other).toMatchObject({type: 'hardlink', hardlinkOf: leader!.path, size: 0})
  })

  it('names entries as tar manifests do: newlines, spaces, bytes that are not UTF-8', () => {
    expect(entryOf(listing, 'new\nline').xattrs).toEqual({'user.odd': Buffer.from('1').toString('base64')})
    expect(entryOf(listing, 'with space').size).toBe(5)
    expect(entryOf(listing, String.raw`caf\xE9`)).toMatchObject({type: 'file', size: 6})
    expect(decodeName(LATIN1)).toBe(String.raw`caf\xE9`)
    expect(rawPath(String.raw`caf\xE9`)).toEqual(LATIN1)
    expect(rawPath(String.raw`a\x41\xFF`)).toEqual(Buffer.from([0x61, 0x5c, 0x78, 0x34, 0x31, 0xff]))
  })

  it('reads every xattr, ACLs in their binary form', () => {
    expect(entryOf(listing, 'hello.txt').xattrs).toEqual({'user.note': Buffer.from('a note').toString('base64')})
    const config = entryOf(listing, 'etc/config').xattrs
    expect(Buffer.from(config['user.bin']!, 'base64')).toEqual(Buffer.from([0, 0xff, 0x10]))
    expect(Object.keys(config)).toEqual(['system.posix_acl_access', 'user.bin'])
    expect(Object.keys(entryOf(listing, 'etc').xattrs)).toEqual(['system.posix_acl_default'])
  })

  it('hashes every regular file as sha256sum does, hard links once', async () => {
    const hashes = await hashFiles(end(tree), 'all')
    const files = listing.entries.filter((entry) => entry.type === 'file' || entry.type === 'hardlink')
    expect([...hashes.keys()].sort()).toEqual(files.map((entry) => entry.path).sort())
    for (const entry of files)
      expect(hashes.get(entry.path)).toBe(sha256Of(Buffer.concat([Buffer.from(`${tree}/`), rawPath(entry.path)])))
    expect(hashes.get('sparse')).toBe(sha256Of(path.join(tree, 'sparse')))
    expect(hashes.get('b')).toBe(hashes.get('a'))
    const output = execFileSync('sha256sum', ['hello.txt', 'sparse'], {cwd: tree, encoding: 'utf8'})
    expect(output).toBe(`${hashes.get('hello.txt')}  hello.txt\n${hashes.get('sparse')}  sparse\n`)
  })

  it('hashes the files asked for, odd names included', async () => {
    const asked = ['new\nline', String.raw`caf\xE9`, 'with space', 'etc/config', 'new\nline']
    const hashes = await hashFiles(end(tree), asked, {parallel: 3})
    expect(hashes).toEqual(
      new Map([
        ['etc/config', sha256Of(path.join(tree, 'etc/config'))],
        ['new\nline', sha256Of(path.join(tree, 'new\nline'))],
        ['with space', sha256Of(path.join(tree, 'with space'))],
        [String.raw`caf\xE9`, sha256Of(Buffer.concat([Buffer.from(`${tree}/`), LATIN1]))],
      ]),
    )
    expect(await hashFiles(end(tree), [])).toEqual(new Map())
  })

  it('hashes with openssl as sha256sum does, large files piped to it, odd names included', async () => {
    const openssl = {...end(tree), hasher: 'openssl' as const}
    expect(await hashFiles(openssl, 'all')).toEqual(await hashFiles(end(tree), 'all'))
    // the 10 MB sparse file goes through cat; the others in batches
    const asked = ['sparse', 'new\nline', String.raw`caf\xE9`]
    const sizes = new Map(listing.entries.map((entry) => [entry.path, entry.size]))
    expect(sizes.get('sparse')).toBeGreaterThanOrEqual(8 * 1024 * 1024)
    expect(await hashFiles(openssl, asked, {sizes})).toEqual(await hashFiles(end(tree), asked))
  })

  it('fills in the digests of files only', async () => {
    const hashes = await hashFiles(end(tree), 'all')
    const manifest = withDigests(listing, hashes)
    expect(manifest.digests).toBe('sha256')
    expect(entryOf(manifest, 'hello.txt').digest).toBe(sha256Of(path.join(tree, 'hello.txt')))
    expect(manifest.entries.filter((entry) => entry.digest !== undefined).map((entry) => entry.type)).toEqual(
      Array.from({length: listing.totals.files}, () => 'file'),
    )
    expect(listing.entries.every((entry) => entry.digest === undefined)).toBe(true)
  })

  describe('two listings of copies', () => {
    let copies = 0
    /** A copy of the tree (cp -a keeps owners, modes, times, xattrs, ACLs, hard links, devices), changed. */
    async function changedCopy(change: string): Promise<VolumeManifest> {
      const copy = path.join(root, `copy${++copies}`)
      execFileSync('cp', ['-a', tree, copy])
      if (change) sh(change, copy)
      return withDigests(await listVolume(end(copy)), await hashFiles(end(copy), 'all'))
    }

    let original: VolumeManifest
    beforeAll(async () => {
      original = withDigests(listing, await hashFiles(end(tree), 'all'))
    })

    async function differences(change: string): Promise<string[]> {
      return formatDifferences(compareManifests(original, await changedCopy(change)))
    }

    it('are equal when nothing changed', async () => {
      expect(await differences('')).toEqual([])
    })

    it('show one byte of content changed (same size and mtime)', async () => {
      const lines = await differences('printf J | dd of=hello.txt conv=notrunc && touch -d ' + NANO_TIME + ' hello.txt')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^hello\.txt: digest \w+… → \w+…$/)
    })

    it('show an xattr changed', async () => {
      expect(await differences('setfattr -n user.note -v "b note" hello.txt')).toEqual([
        'hello.txt: xattr user.note "a note" → "b note"',
      ])
    })

    it('show an mtime changed by a nanosecond', async () => {
      expect(await differences('touch -d @1700000000.123456788 hello.txt')).toEqual([
        'hello.txt: mtime 1700000000.123456789 → 1700000000.123456788',
      ])
    })

    it('show an owner changed', async () => {
      expect(await differences('chown 1000 owned')).toEqual(['owned: uid 999 → 1000'])
    })

    it('show an ACL changed', async () => {
      const lines = await differences('setfacl -m u:1234:r etc/config')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^etc\/config: (mode 0\d+ → 0\d+; )?xattr system\.posix_acl_access 0x\w+…? → 0x\w+…?$/)
    })
  })

  it('without getfattr, says the xattrs are unknown and comparisons leave them out', async () => {
    const unknown = await listVolume(end(tree, false))
    expect(unknown.xattrs).toBe('unknown')
    expect(unknown.entries.every((entry) => Object.keys(entry.xattrs).length === 0)).toBe(true)
    expectSame(listing, unknown)
    expectSame(unknown, listing)
    expect(compareManifests(listing, {...unknown, xattrs: 'listed'}).equal).toBe(false)
  })

  it('reads an xattr name with an = in it', async () => {
    const dir = path.join(root, 'equals')
    mkdirSync(dir)
    sh('touch f && setfattr -n "user.a=b" -v "x=y" f', dir)
    const manifest = await listVolume(end(dir))
    expect(entryOf(manifest, 'f').xattrs).toEqual({'user.a=b': Buffer.from('x=y').toString('base64')})
  })

  it('hashes many files with several sha256sum at once', async () => {
    const dir = path.join(root, 'many')
    mkdirSync(dir)
    for (let i = 0; i < 500; i++) writeFileSync(path.join(dir, `f${i}`), `content ${i}`.repeat(i))
    const hashes = await hashFiles(end(dir), 'all', {parallel: 3})
    expect(hashes.size).toBe(500)
    for (let i = 0; i < 500; i++) expect(hashes.get(`f${i}`)).toBe(sha256Of(path.join(dir, `f${i}`)))
    const some = await hashFiles(end(dir), ['f1', 'f499'], {parallel: 4})
    expect(some).toEqual(
      new Map([
        ['f1', hashes.get('f1')],
        ['f499', hashes.get('f499')],
      ]),
    )
  })

  it('fails with VOLUME_READ_FAILED and the tool’s message', async () => {
    const missing = path.join(root, 'missing')
    await expect(listVolume(end(missing))).rejects.toMatchObject({
      code: 'VOLUME_READ_FAILED',
      // find or getfattr, whichever fails first
      message: expect.stringMatching(/^here: (find|getfattr) failed reading the volume at .*missing.*: .*missing/),
    })
    await expect(hashFiles(end(tree), ['nothing-here'])).rejects.toMatchObject({
      code: 'VOLUME_READ_FAILED',
      message: expect.stringMatching(/^here: sha256sum failed .*nothing-here/),
    })
    await expect(hashFiles(end(tree), ['empty'])).rejects.toBeInstanceOf(TransshipError)
  })

  it('stops when aborted', async () => {
    const stop = new AbortController()
    const listed = listVolume(end(tree), {signal: stop.signal})
    const hashed = hashFiles(end(tree), 'all', {signal: stop.signal})
    stop.abort(new Error('stopped'))
    await Promise.all([expect(listed).rejects.toThrow('stopped'), expect(hashed).rejects.toThrow('stopped')])
    await expect(listVolume(end(tree), {signal: AbortSignal.abort(new Error('early'))})).rejects.toThrow('early')
  })
})

describe('findTime', () => {
  it('converts find’s %T@ exactly, times before the epoch included', () => {
    expect(findTime('1700000000.1234567890')).toBe('1700000000.123456789')
    expect(findTime('1600000000.0000000000')).toBe('1600000000.000000000')
    expect(findTime('5')).toBe('5.000000000')
    // find prints tv_sec.tv_nsec: -6 s + 0.75 s
    expect(findTime('-6.7500000000')).toBe('-5.250000000')
    expect(findTime('-1.7500000000')).toBe('-0.250000000')
    expect(findTime('-6.0000000000')).toBe('-6.000000000')
    expect(() => findTime('1,5')).toThrow(TransshipError)
  })
})
