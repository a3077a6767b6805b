// The header codec both ways: what encodeTarHeader writes, decodeTarHeader reads back as it was written.
import {describe, expect, it} from 'vitest'

import {
  decodeTarHeader,
  encodePaxRecord,
  encodeTarHeader,
  parsePaxRecords,
  TAR_BLOCK,
  tarChecksumMatches,
} from '../../../src/tar/index.js'

describe('the tar header codec', () => {
  it('reads back the fields it writes, with a valid checksum', () => {
    const block = encodeTarHeader({
      devmajor: 8,
      devminor: 1,
      gid: 100,
      linkname: 'target',
      mode: 0o4755,
      mtime: 1_700_000_000,
      name: 'bin/tool',
      prefix: 'usr/local',
      size: 12_345,
      typeflag: '0',
      uid: 1000,
    })
    expect(block).toHaveLength(TAR_BLOCK)
    expect(tarChecksumMatches(block)).toBe(true)
    expect(decodeTarHeader(block)).toMatchObject({
      devmajor: 8,
      devminor: 1,
      format: 'ustar',
      gid: 100,
      mode: 0o4755,
      mtime: 1_700_000_000,
      size: 12_345,
      typeflag: '0',
      uid: 1000,
    })
  })

  it('refuses a value its field cannot hold instead of writing another name or number', () => {
    const fields = {gid: 0, mode: 0o644, mtime: 0, name: 'a', size: 0, typeflag: '0', uid: 0}
    expect(() => encodeTarHeader({...fields, name: 'n'.repeat(101)})).toThrow(RangeError)
    expect(() => encodeTarHeader({...fields, size: 0o1_0000_0000_0000})).toThrow(RangeError)
    expect(() => encodeTarHeader({...fields, name: 'n'.repeat(100)})).not.toThrow()
  })

  it('writes pax records whose length counts its own digits, read back byte for byte', () => {
    // ' a=bcd\n' is 7 bytes: with one digit, 8
    const short = encodePaxRecord('a', 'bcd')
    expect(short.toString()).toBe('8 a=bcd\n')
    // ' ab=cdef\n' is 9 bytes: 10 would take two digits, so the length settles on 11
    const settled = encodePaxRecord('ab', 'cdef')
    expect(settled.toString()).toBe('11 ab=cdef\n')
    const binary = Buffer.from([0x01, 0x00, 0xff, 0x0a])
    const records = parsePaxRecords(Buffer.concat([encodePaxRecord('SCHILY.xattr.security.capability', binary), short]))
    expect(records?.get('SCHILY.xattr.security.capability')).toEqual(binary)
    expect(records?.get('a')?.toString()).toBe('bcd')
  })
})
