import {describe, expect, it} from 'vitest'

import {
  archive,
  directory,
  entry,
  file,
  globalPax,
  gnuLong,
  header,
  paxPayload,
  sparseEntry,
} from '../../../../../test/helpers/raw-tar.js'
import {ArchiveError} from '../../../src/archive/errors.js'
import {
  decodeTarName,
  parsePaxRecords,
  parseTarNumber,
  parseTarOctal,
  TAR_METADATA_LIMIT,
  tarChecksumMatches,
  type TarEntry,
  TarError,
  TarFramer,
  type TarFramerOptions,
} from '../../../src/tar/index.js'

/** What a framer told, as plain data: each entry's name, type, data (holes as `<hole N>`) and sparse map. */
interface Seen {
  data: string
  entry: TarEntry
  name: string
}

/** Frames `bytes` in chunks of `chunk` bytes (one byte at a time by default: every state is cut everywhere). */
function frame(bytes: Buffer, options: TarFramerOptions = {}, chunk = 1): Seen[] {
  const seen: Seen[] = []
  const framer = new TarFramer(
    {
      data(data) {
        seen.at(-1)!.data += data.toString('latin1')
      },
      entry(framed) {
        seen.push({data: '', entry: framed, name: decodeTarName(framed.name)})
      },
      hole(length) {
        seen.at(-1)!.data += `<hole ${length}>`
      },
    },
    options,
  )
  for (let at = 0; at < bytes.length; at += chunk) {
    const part = bytes.subarray(at, at + chunk)
    let offset = 0
    while (offset < part.length) offset = framer.write(part, offset)
  }

  framer.end()
  return seen
}

function failure(run: () => unknown): TarError {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(TarError)
    expect(error).toBeInstanceOf(ArchiveError)
    return error as TarError
  }

  throw new Error('expected a TarError')
}

/** A header block with `patch` applied, its checksum made right again (or `sum` written as it is). */
function patched(block: Buffer, patch: (block: Buffer) => void, sum?: string): Buffer {
  const copy = Buffer.from(block)
  patch(copy)
  copy.fill(0x20, 148, 156)
  const total = copy.reduce((a, b) => a + b, 0)
  copy.write(sum ?? `${total.toString(8).padStart(6, '0')}\0 `, 148, 'latin1')
  return copy
}

/** Old GNU sparse segment `i` (512 bytes at i * 1024) at `at` of `target`. */
function putSegment(target: Buffer, at: number, i: number): void {
  target.write(`${(i * 1024).toString(8).padStart(11, '0')}\0`, at, 'latin1')
  target.write(`${(512).toString(8).padStart(11, '0')}\0`, at + 12, 'latin1')
}

describe('the header codec', () => {
  it('reads octal fields with spaces and NULs, base-256 ones, and says NaN for what is neither', () => {
    const block = Buffer.alloc(64)
    block.write(' 0000644\0', 0, 'latin1')
    block.write('17\0\0\0\0\0\0', 10, 'latin1')
    block.write('12x4', 20, 'latin1')
    block[30] = 0x80
    block.writeUIntBE(2 ** 40, 36, 6)
    block[50] = 0xff
    expect(parseTarOctal(block, 0, 9)).toBe(0o644)
    expect(parseTarNumber(block, 10, 8)).toBe(0o17)
    expect(parseTarOctal(block, 40, 8)).toBe(0)
    expect(parseTarOctal(block, 20, 4)).toBeNaN()
    expect(parseTarNumber(block, 30, 12)).toBe(2 ** 40)
    expect(parseTarNumber(block, 50, 8)).toBeNaN()
  })

  it('checks the checksum summed as unsigned bytes or as signed ones', () => {
    const block = header({name: 'caf\u00E9'})
    expect(tarChecksumMatches(block)).toBe(true)
    let signed = 0
    for (const [i, byte] of block.entries()) signed += i >= 148 && i < 156 ? 0x20 : byte >= 0x80 ? byte - 256 : byte
    const old = patched(block, () => {}, `${signed.toString(8).padStart(6, '0')}\0 `)
    expect(tarChecksumMatches(old)).toBe(true)
    expect(tarChecksumMatches(patched(block, () => {}, '0000001\0'))).toBe(false)
  })

  it('keeps pax values byte-exact and refuses malformed records', () => {
    const binary = Buffer.from([0xff, 0x00, 0x0a, 0x3d])
    const records = parsePaxRecords(
      Buffer.concat([paxPayload({'SCHILY.xattr.user.x': binary, path: 'a=b'}), Buffer.alloc(10)]),
    )
    expect(records?.get('SCHILY.xattr.user.x')).toEqual(binary)
    expect(records?.get('path')?.toString()).toBe('a=b')
    expect(parsePaxRecords(Buffer.from('99 path=x\n'))).toBeUndefined()
    expect(parsePaxRecords(Buffer.from('9 pathx\n'))).toBeUndefined()
  })

  it('decodes names as UTF-8, escaping the bytes that are not', () => {
    expect(decodeTarName(Buffer.from('café'))).toBe('café')
    expect(decodeTarName(Buffer.from([0x61, 0xff, 0xc3, 0xa9]))).toBe(String.raw`a\xFFé`)
  })
})

describe('TarFramer', () => {
  it('gives the same entries and data whatever the chunks', () => {
    const bytes = archive(
      directory('./d/'),
      file('./d/a', 'hello'),
      entry({name: 'x'.repeat(100), prefix: 'p'.repeat(150)}, Buffer.from('prefixed')),
      gnuLong('L', 'long/'.repeat(50)),
      gnuLong('K', 'target/'.repeat(30)),
      entry({linkname: 'short', name: 'short', type: '2'}),
      entry({name: 'pax-short'}, Buffer.alloc(1000, 'z'), {linkpath: 'l', path: 'pax/long/name'}),
    )
    const whole = frame(bytes, {}, bytes.length)
    expect(frame(bytes)).toEqual(whole)
    expect(frame(bytes, {}, 700)).toEqual(whole)
    expect(whole.map((seen) => [seen.name, seen.entry.type, seen.data.length])).toEqual([
      ['./d/', 'directory', 0],
      ['./d/a', 'file', 5],
      [`${'p'.repeat(150)}/${'x'.repeat(100)}`, 'file', 8],
      ['long/'.repeat(50), 'symlink', 0],
      ['pax/long/name', 'file', 1000],
    ])
    expect(whole[1]!.data).toBe('hello')
    expect(whole[3]!.entry.linkname.toString()).toBe('target/'.repeat(30))
    expect(whole[3]!.entry.names.map(String)).toEqual(['long/'.repeat(50), 'short'])
    expect(whole[4]!.entry.links.map(String)).toEqual(['l'])
    expect(whole[4]!.entry.localPax?.get('path')?.toString()).toBe('pax/long/name')
  })

  it('applies pax size, uid, gid and mtime (nine fraction digits), global records under local ones', () => {
    const bytes = archive(
      globalPax({gid: '7', uid: '5'}),
      entry({name: 'a', size: 3}, Buffer.from('abcdef'), {mtime: '1700000000.5', size: '6', uid: '4000000000'}),
      entry({name: 'b'}, Buffer.alloc(0), {mtime: '1700000001', uid: ''}),
    )
    const [a, b] = frame(bytes)
    expect(a!.entry).toMatchObject({dataSize: 6, declaredSize: 6, gid: 7, mtime: '1700000000.500000000', uid: 4e9})
    expect(a!.data).toBe('abcdef')
    // an empty value cancels the record: the header's uid (0) again
    expect(b!.entry).toMatchObject({gid: 7, mtime: '1700000001', uid: 0})
    expect(b!.entry.globalPax?.get('uid')?.toString()).toBe('5')
  })

  it('gives a directory no data whatever its size says', () => {
    const bytes = archive(entry({name: 'd/', size: 512, type: '5'}), file('after', 'x'))
    expect(frame(bytes).map((seen) => [seen.name, seen.entry.dataSize, seen.entry.declaredSize])).toEqual([
      ['d/', 0, 512],
      ['after', 1, 1],
    ])
  })

  it('stops at the end-of-archive marker, and tells of a lone zero block before an entry', () => {
    const bytes = Buffer.concat([file('a'), Buffer.alloc(512), file('b'), Buffer.alloc(1024), Buffer.from('junk')])
    const seen = frame(bytes)
    expect(seen.map((item) => [item.name, item.entry.loneZeroBlockBefore])).toEqual([
      ['a', false],
      ['b', true],
    ])
  })

  it('expands GNU sparse 1.0 and 0.1 files into data and holes', () => {
    const segments = [
      {data: Buffer.alloc(512, 'a'), offset: 1024},
      {data: Buffer.from('end'), offset: 4000},
    ]
    const [one] = frame(archive(sparseEntry('s', 5000, segments)))
    expect(one!.name).toBe('s')
    expect(one!.entry.sparse).toEqual({
      format: '1.0',
      map: [
        {offset: 1024, size: 512},
        {offset: 4000, size: 3},
      ],
      realSize: 5000,
    })
    expect(one!.data).toBe(`<hole 1024>${'a'.repeat(512)}<hole 2464>end<hole 997>`)
    const data = Buffer.concat(segments.map((segment) => segment.data))
    const pax = {'GNU.sparse.map': '1024,512,4000,3', 'GNU.sparse.name': 's', 'GNU.sparse.realsize': '5000'}
    const [zeroOne] = frame(archive(entry({name: 'GNUSparseFile/s'}, data, pax)))
    expect(zeroOne!.entry.sparse?.format).toBe('0.1')
    expect(zeroOne!.data).toBe(one!.data)
  })

  it('expands an old GNU sparse file (type S), its map continued in an extension block', () => {
    const count = 6
    const data = Buffer.alloc(512 * count, 'd')
    // segment i: 512 bytes of data at i * 1024, a hole of 512 after it
    const block = patched(header({name: 'old', size: data.length, type: 'S'}), (raw) => {
      raw.write('ustar  \0', 257, 'latin1')
      raw.fill(0, 329, 512)
      for (let i = 0; i < 4; i++) putSegment(raw, 386 + i * 24, i)
      raw[482] = 1
      raw.write(`${(count * 1024).toString(8).padStart(11, '0')}\0`, 483, 'latin1')
    })
    const extension = Buffer.alloc(512)
    for (let i = 4; i < count; i++) putSegment(extension, (i - 4) * 24, i)

    const [old] = frame(archive(block, extension, data))
    expect(old!.entry).toMatchObject({sparse: {format: 'old', realSize: count * 1024}, type: 'file', typeflag: 'S'})
    expect(old!.data).toBe(Array.from({length: count}, () => `${'d'.repeat(512)}<hole 512>`).join(''))
  })

  it('refuses a sparse map that contradicts the data, after handing the entry out', () => {
    const handed: string[] = []
    const framer = new TarFramer({entry: (framed) => handed.push(decodeTarName(framed.name))})
    const bytes = archive(
      sparseEntry('f', 10_000, [
        {data: Buffer.from('start'), offset: 0},
        {data: Buffer.from('end'), offset: 9997},
      ]),
    )
    const error = failure(() => {
      let offset = 0
      while (offset < bytes.length) offset = framer.write(bytes, offset)
    })
    expect(handed).toEqual(['f'])
    expect(error).toMatchObject({code: 'ARCHIVE_CORRUPT', entry: 'f', reason: 'bad-sparse'})
    expect(error.message).toContain('"f" has a data segment of 5 bytes before its last')
    // a framer that failed fails again
    expect(() => framer.end()).toThrow(error)
    const sizes = failure(() =>
      frame(archive(entry({name: 'g'}, Buffer.from('ab'), {'GNU.sparse.map': '0,5', 'GNU.sparse.realsize': '9'}))),
    )
    expect(sizes.message).toContain('has a map for 5 bytes of data, but holds 2')
    const noSize = failure(() => frame(archive(entry({name: 'h'}, Buffer.from('x'), {'GNU.sparse.name': '../evil'}))))
    expect(noSize).toMatchObject({entry: '../evil', reason: 'bad-sparse'})
    const zeroZero = failure(() =>
      frame(archive(entry({name: 'i'}, Buffer.from('x'), {'GNU.sparse.numblocks': '1', 'GNU.sparse.size': '9'}))),
    )
    expect(zeroZero).toMatchObject({code: 'ARCHIVE_UNSUPPORTED', reason: 'unsupported'})
  })

  it('says where a stream is cut, in every state', () => {
    const bytes = archive(
      file('first', 'x'),
      gnuLong('L', 'a-long-name'),
      entry({name: 'big'}, Buffer.alloc(2000, 'b'), {path: 'named-by-pax'}),
      sparseEntry('sparse', 4096, [{data: Buffer.alloc(512, 's'), offset: 1024}]),
    )
    const cases: Array<[number, RegExp]> = [
      [100, /it ends in the middle of a tar header, before its first entry$/],
      [512, /it ends in the middle of entry "first" \(0 of its 1 bytes\)$/],
      [513, /it ends in the middle of a tar header, after entry "first"$/],
      [700, /it ends in the middle of a tar header, after entry "first"$/],
      [1100, /it ends in the middle of a tar header, after entry "first"$/],
      [512 * 7 + 100, /it ends in the middle of entry "named-by-pax" \(100 of its 2000 bytes\)$/],
      [5600, /it ends in the middle of a tar header, after entry "named-by-pax"$/],
      [512 * 14 + 10, /it ends in the middle of entry "sparse" \(10 of its 1024 bytes\)$/],
      [512 * 16, /it ends after entry "sparse", without the end-of-archive marker$/],
    ]
    for (const [length, message] of cases) {
      const error = failure(() => frame(bytes.subarray(0, length), {label: 'cut.tar'}))
      expect(error, `cut at ${length}`).toMatchObject({code: 'ARCHIVE_TRUNCATED', exit: 2, reason: 'truncated'})
      expect(error.message, `cut at ${length}`).toMatch(/^cut\.tar is truncated: /)
      expect(error.message, `cut at ${length}`).toMatch(message)
    }

    expect(failure(() => frame(Buffer.alloc(0)))).toMatchObject({code: 'ARCHIVE_TRUNCATED', reason: 'empty'})
    // where the end-of-archive marker is optional, a cut at an entry boundary is an end, a cut in an entry is not
    expect(frame(bytes.subarray(0, 512 * 2), {endMarker: 'optional'})).toHaveLength(1)
    expect(frame(Buffer.alloc(0), {endMarker: 'optional'})).toEqual([])
    expect(failure(() => frame(bytes.subarray(0, 600), {endMarker: 'optional'}))).toMatchObject({reason: 'truncated'})
  })

  it('tells a stream that is not tar from a damaged header', () => {
    const text = failure(() => frame(Buffer.alloc(1024, 'x'), {decompressed: true, label: 'notes.txt'}))
    expect(text).toMatchObject({code: 'ARCHIVE_CORRUPT', reason: 'not-tar'})
    expect(text.message).toBe(
      'notes.txt is damaged: it is not a tar archive, nor a gzip, zstd, bzip2 or xz compressed one',
    )
    const damaged = archive(
      file('a', 'x'),
      patched(file('b', 'y').subarray(0, 512), () => {}, '0000001\0'),
    )
    const checksum = failure(() => frame(damaged))
    expect(checksum).toMatchObject({code: 'ARCHIVE_CORRUPT', entry: 'a', reason: 'checksum'})
    expect(checksum.message).toBe('the tar stream is damaged: the tar header after entry "a" has a bad checksum')
    const badSize = patched(header({name: 'n'}), (raw) => raw.write('zz', 124, 'latin1'))
    expect(failure(() => frame(archive(badSize)))).toMatchObject({reason: 'bad-header'})
  })

  it('refuses malformed pax records and values', () => {
    const malformed = Buffer.concat([header({name: 'P', type: 'x'}, 10), Buffer.from('99 path=x\n'), Buffer.alloc(502)])
    expect(failure(() => frame(archive(malformed, file('a'))))).toMatchObject({reason: 'bad-pax'})
    const uid = failure(() => frame(archive(entry({name: 'u'}, Buffer.alloc(0), {uid: '-1'}))))
    expect(uid).toMatchObject({entry: 'u', reason: 'bad-pax'})
    expect(uid.message).toContain('the pax uid of entry "u" is not valid (-1)')
    expect(failure(() => frame(archive(entry({name: 'm'}, Buffer.alloc(0), {mtime: 'soon'}))))).toMatchObject({
      reason: 'bad-pax',
    })
  })

  it('refuses more metadata than TAR_METADATA_LIMIT before one entry, without reading or keeping it', () => {
    const claim = header({name: 'P', size: TAR_METADATA_LIMIT + 1, type: 'x'})
    const one = failure(() => frame(claim, {label: 'huge.tar'}, 512))
    expect(one).toMatchObject({code: 'ARCHIVE_CORRUPT', reason: 'metadata-limit'})
    expect(one.message).toContain('more than 16 MiB of metadata')
    // two headers under the limit each, over it together
    const half = header({name: 'L', size: TAR_METADATA_LIMIT / 2 + 1, type: 'L'})
    const framer = new TarFramer({})
    framer.write(half)
    framer.write(Buffer.alloc(TAR_METADATA_LIMIT / 2 + 512))
    expect(() => framer.write(header({name: 'K', size: TAR_METADATA_LIMIT / 2, type: 'K'}))).toThrow(/metadata/)
  })

  it('claims of huge sizes cost nothing: a 128 TiB entry cut short is truncated at once', () => {
    const block = patched(header({name: 'huge'}), (raw) => {
      raw.fill(0, 124, 136)
      raw[124] = 0x80
      raw.writeUIntBE(2 ** 47, 130, 6)
    })
    const started = performance.now()
    const error = failure(() => frame(Buffer.concat([block, Buffer.alloc(4096)]), {}, 4608))
    expect(error.message).toContain(`(4096 of its ${2 ** 47} bytes)`)
    expect(performance.now() - started).toBeLessThan(500)
  })

  it('skips data and padding without reading them, and says where each entry starts', () => {
    const bytes = archive(file('a', 'x'.repeat(700)), file('b', 'y'))
    const starts: number[] = []
    const framer = new TarFramer({entry: (framed) => starts.push(framed.dataOffset)})
    let position = 0
    while (!framer.ended) {
      position += framer.skip()
      const length = framer.wanted
      position = framer.write(bytes.subarray(position, position + length)) + position
    }

    expect(starts).toEqual([512, 2048])
  })
})
