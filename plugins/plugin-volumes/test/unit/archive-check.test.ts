import {execFileSync} from 'node:child_process'
import {linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {
  archive,
  directory,
  entry,
  file,
  globalPax,
  gnuLong,
  hardlink,
  sparseEntry,
  symlink,
} from '../../../../test/helpers/raw-tar.js'
import {archiveChecker} from '../../src/archive-check.js'
import {checkVolumeArchive} from '../../src/archive.js'
import {manifestOfTar} from '../../src/manifest/tar-manifest.js'

let dir: string

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'transship-archive-check-'))
})

afterAll(() => {
  rmSync(dir, {force: true, recursive: true})
})

function write(name: string, data: Buffer): string {
  const target = path.join(dir, name)
  writeFileSync(target, data)
  return target
}

/** Hostile archives: what each is, its bytes, and the entry the refusal must name. */
const HOSTILE: Array<{archive: Buffer; entry: string; name: string; why: RegExp}> = [
  {archive: archive(file('ok'), file('/tmp/evil-abs', 'x')), entry: '/tmp/evil-abs', name: 'absolute', why: /absolute/},
  {
    archive: archive(file('ok'), file('../../tmp/evil-up', 'x')),
    entry: '../../tmp/evil-up',
    name: 'dotdot',
    why: /\.\./,
  },
  {
    archive: archive(symlink('d', '/tmp'), file('d/evil-through', 'x')),
    entry: 'd/evil-through',
    name: 'symlink, then a file through it',
    why: /through the symbolic link "d"/,
  },
  {
    archive: archive(symlink('etc', '/etc'), hardlink('h', 'etc/passwd')),
    entry: 'h',
    name: 'a hard link whose target goes through a symlink',
    why: /through the symbolic link "etc"/,
  },
  {
    archive: archive(symlink('.', '/tmp'), file('evil-dot', 'x')),
    entry: '.',
    name: '. as a symlink',
    why: /root a symlink/,
  },
  {
    // a real sparse file whose GNU.sparse.name (which GNU tar obeys) differs from its innocent header name
    archive: archive(
      sparseEntry('../../tmp/evil-sparse-name', 1000, [{data: Buffer.from('x'), offset: 10}], {}, 'innocent'),
    ),
    entry: '../../tmp/evil-sparse-name',
    name: 'GNU.sparse.name renaming an entry out',
    why: /\.\./,
  },
  {
    archive: archive(
      symlink('d', '/tmp'),
      sparseEntry('d/evil-sparse-through', 1000, [{data: Buffer.from('x'), offset: 10}], {}, 'innocent'),
    ),
    entry: 'd/evil-sparse-through',
    name: 'GNU.sparse.name renaming an entry through a symlink',
    why: /through the symbolic link "d"/,
  },
  {
    archive: archive(entry({name: 'innocent', type: '5'}, Buffer.alloc(0), {'GNU.sparse.name': 'renamed'})),
    entry: 'renamed',
    name: 'GNU.sparse.name on a directory',
    why: /not a sparse file/,
  },
  {
    archive: archive(hardlink('h', '/etc/passwd')),
    entry: 'h',
    name: 'a hard link to an absolute path',
    why: /absolute/,
  },
  {archive: archive(hardlink('h', '../outside')), entry: 'h', name: 'a hard link that climbs out', why: /\.\./},
  {
    archive: archive(hardlink('h', 'later'), file('later')),
    entry: 'h',
    name: 'a hard link to what is not an earlier file',
    why: /not an earlier regular file/,
  },
  {
    archive: archive(directory('d'), file('d/a'), symlink('d', '/tmp'), file('d/b')),
    entry: 'd',
    name: 'a directory replaced by a symlink',
    why: /appears twice/,
  },
  {
    archive: archive(file('x', 'data'), symlink('x', '/etc/passwd')),
    entry: 'x',
    name: 'a file that becomes a symlink',
    why: /appears twice/,
  },
  {
    archive: archive(symlink('x', '/etc/passwd'), file('x', 'data')),
    entry: 'x',
    name: 'a symlink that becomes a file',
    why: /appears twice/,
  },
  {
    archive: archive(file('f', 'data'), file('f/g', 'x')),
    entry: 'f/g',
    name: 'a file under a file',
    why: /under "f", which is a file/,
  },
  {
    archive: archive(file('d/a', 'x'), file('d', 'x')),
    entry: 'd',
    name: 'a file where earlier entries made a directory',
    why: /earlier entries are under it/,
  },
  {
    archive: archive(globalPax({path: 'everything'}), file('a')),
    entry: 'everything',
    name: 'a global header that renames every entry',
    why: /global pax header/,
  },
  {
    archive: archive(gnuLong('L', 'long-name'), entry({name: 'short'}, Buffer.from('x'), {path: 'pax-name'})),
    entry: 'pax-name',
    name: 'an entry named two ways',
    why: /named twice/,
  },
  {
    archive: archive(entry({name: 'short'}, Buffer.from('x'), {path: 'ok\u0000/../../../tmp/evil-nul'})),
    entry: 'ok\u0000/../../../tmp/evil-nul',
    name: 'a NUL in a name',
    why: /NUL/,
  },
  {
    // a symlink that claims 1024 bytes of data: another reader may take them for the next headers
    archive: archive(entry({linkname: 'x', name: 'l', size: 1024, type: '2'}), file('hidden')),
    entry: 'l',
    name: 'a symlink with data',
    why: /declares 1024 bytes/,
  },
  {
    archive: Buffer.concat([file('a'), Buffer.alloc(512), file('after-lone-zero'), Buffer.alloc(1024)]),
    entry: 'after-lone-zero',
    name: 'an entry after a lone zero block',
    why: /lone zero block/,
  },
  {
    archive: archive(file('.transship-incomplete')),
    entry: '.transship-incomplete',
    name: 'the unfinished marker',
    why: /unfinished copy/,
  },
  {
    archive: archive(entry({linkname: 'x', name: 'l', type: '2'}, Buffer.alloc(0), {'GNU.sparse.name': 'y'})),
    entry: 'y',
    name: 'sparse records on a symlink',
    why: /not a sparse file/,
  },
  {
    archive: archive(entry({devmajor: 1, devminor: 1, name: 'null', type: '3'})),
    entry: 'null',
    name: 'a character device',
    why: /char device \(1,1\)/,
  },
  {
    archive: archive(entry({devmajor: 8, devminor: 0, name: 'sda', type: '4'})),
    entry: 'sda',
    name: 'a block device',
    why: /block device \(8,0\)/,
  },
]

describe('checkVolumeArchive', () => {
  for (const [i, hostile] of HOSTILE.entries()) {
    it(`refuses ${hostile.name}, naming the entry`, async () => {
      const archiveFile = write(`hostile-${i}.tar`, hostile.archive)
      const error = await checkVolumeArchive(archiveFile).then(
        () => {},
        (error_: unknown) => error_ as {code: string; details: {entry: string}; exit: number; message: string},
      )
      expect(error, 'the archive passed the check').toBeDefined()
      expect(error).toMatchObject({code: 'ARCHIVE_UNSAFE', exit: 2})
      expect(error!.message).toContain(JSON.stringify(hostile.entry))
      expect(error!.message).toMatch(hostile.why)
      expect(error!.message).toContain('nothing was written')
    })
  }

  it('refuses a file with GNU.sparse.name but no sparse map as damaged, naming the entry', async () => {
    const archiveFile = write(
      'half-sparse.tar',
      archive(entry({name: 'innocent'}, Buffer.from('x'), {'GNU.sparse.name': '../../tmp/evil-half-sparse'})),
    )
    await expect(checkVolumeArchive(archiveFile)).rejects.toMatchObject({
      code: 'ARCHIVE_CORRUPT',
      exit: 2,
      message: expect.stringContaining('"../../tmp/evil-half-sparse"'),
    })
  })

  it('refuses a sparse file whose data segments GNU tar would read at other places than its size says', async () => {
    // GNU tar reads each segment in whole blocks: the 5 bytes of `start` take a block, so it would take the next
    // block for `end`, and what is here the next entry's header for data: another reader could hide entries so
    const shifted = write(
      'shifted.tar',
      archive(
        sparseEntry('f', 10_000, [
          {data: Buffer.from('start'), offset: 0},
          {data: Buffer.from('end'), offset: 9997},
        ]),
        file('next'),
      ),
    )
    await expect(checkVolumeArchive(shifted)).rejects.toMatchObject({
      code: 'ARCHIVE_CORRUPT',
      exit: 2,
      message: expect.stringMatching(/"f" has a data segment of 5 bytes before its last/),
    })
  })

  it('creates device nodes only when asked', async () => {
    const devices = write(
      'devices.tar',
      archive(
        entry({devmajor: 1, devminor: 1, name: 'null', type: '3'}),
        entry({devmajor: 8, devminor: 0, name: 'sda', type: '4'}),
      ),
    )
    const manifest = await checkVolumeArchive(devices, {allowDevices: true})
    expect(manifest.entries.map((item) => [item.path, item.type, item.devmajor, item.devminor])).toEqual([
      ['null', 'char', 1, 1],
      ['sda', 'block', 8, 0],
    ])
    await expect(checkVolumeArchive(devices)).rejects.toMatchObject({code: 'ARCHIVE_UNSAFE'})
  })

  it('accepts what GNU tar writes of a volume: links anywhere, hard links, holes, FIFOs, long names', async () => {
    const tree = path.join(dir, 'tree')
    mkdirSync(path.join(tree, 'sub', 'deeper'), {recursive: true})
    writeFileSync(path.join(tree, 'a'), 'content')
    linkSync(path.join(tree, 'a'), path.join(tree, 'sub', 'b'))
    symlinkSync('/etc/passwd', path.join(tree, 'absolute-link'))
    symlinkSync('../../a', path.join(tree, 'sub', 'deeper', 'relative-link'))
    execFileSync('mkfifo', [path.join(tree, 'fifo')])
    const long = 'n'.repeat(200)
    writeFileSync(path.join(tree, 'sub', long), 'long')
    execFileSync('sh', ['-c', 'truncate -s 50M sparse && printf x | dd of=sparse bs=1 seek=20000000 conv=notrunc'], {
      cwd: tree,
      stdio: 'ignore',
    })
    const tarFile = path.join(dir, 'gnu.tar')
    execFileSync('tar', [
      '-C',
      tree,
      '--xattrs',
      '--acls',
      '--sparse',
      '--numeric-owner',
      '--format=posix',
      '-cf',
      tarFile,
      '.',
    ])
    const manifest = await checkVolumeArchive(tarFile)
    expect(manifest.entries.map((item) => item.path).sort()).toEqual(
      [
        '.',
        'a',
        'absolute-link',
        'fifo',
        'sparse',
        'sub',
        'sub/b',
        'sub/deeper',
        'sub/deeper/relative-link',
        `sub/${long}`,
      ].sort(),
    )
    expect(manifest.entries.find((item) => item.path === 'sparse')).toMatchObject({
      sparse: true,
      size: 50 * 1024 * 1024,
    })
    // the gnu format (GNU long names) too
    const gnu = path.join(dir, 'gnu-format.tar')
    execFileSync('tar', ['-C', tree, '--format=gnu', '-cf', gnu, '.'])
    expect((await checkVolumeArchive(gnu)).entries.some((item) => item.path === `sub/${long}`)).toBe(true)
  })

  it('checks a tiny archive that claims a 1 TiB sparse file in a moment, with the real size', async () => {
    const claim = write(
      'terabyte.tar',
      archive(
        directory('.'),
        sparseEntry('huge', 2 ** 40, [
          {data: Buffer.concat([Buffer.from('start'), Buffer.alloc(507)]), offset: 0},
          {data: Buffer.from('end'), offset: 2 ** 40 - 3},
        ]),
      ),
    )
    const started = performance.now()
    const manifest = await checkVolumeArchive(claim)
    expect(performance.now() - started).toBeLessThan(2000)
    expect(manifest.entries.find((item) => item.path === 'huge')).toMatchObject({size: 2 ** 40, sparse: true})
  })

  it('stops within a moment of an abort, on an archive that never ends', async () => {
    let i = 0
    // as a file or a socket does, it yields to the event loop between chunks
    const endless = new Readable({
      read() {
        setImmediate(() => this.push(Buffer.concat(Array.from({length: 100}, () => file(`f${i++}`, 'x')))))
      },
    })
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('interrupted')), 300)
    const started = performance.now()
    await expect(
      manifestOfTar(endless, {onEntry: archiveChecker({label: 'endless'}), signal: controller.signal}),
    ).rejects.toThrow('interrupted')
    expect(performance.now() - started).toBeLessThan(1300)
    expect(i).toBeGreaterThan(200)
  })
})
