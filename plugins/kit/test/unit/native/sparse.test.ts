import {dataSegments} from '@transship/kit/native'
import {closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync} from 'node:fs'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {addon, scratch} from './helpers.js'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

let dir: string
let remove: () => void
const fds: number[] = []
beforeEach(() => {
  ;({dir, remove} = scratch('sparse'))
})
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd)
  remove()
})

function open(name: string): number {
  const fd = openSync(path.join(dir, name), 'w+')
  fds.push(fd)
  return fd
}

/** The filesystem's block size: segment boundaries fall on multiples of it. */
function blockSize(fd: number): number {
  return fstatSync(fd).blksize
}

describe('dataSegments', () => {
  it('finds exactly the two written regions of a 64 MiB sparse file', () => {
    const fd = open('sparse')
    ftruncateSync(fd, 64 * MiB)
    const data = Buffer.alloc(4 * KiB, 0x5a)
    writeSync(fd, data, 0, data.length, 0)
    writeSync(fd, data, 0, data.length, 32 * MiB)

    const segments = dataSegments(fd, 64 * MiB)
    expect(segments).toHaveLength(2)
    const [first, second] = segments as [{length: number; offset: number}, {length: number; offset: number}]
    const block = blockSize(fd)
    for (const segment of segments) {
      expect(segment.offset % block).toBe(0)
      expect((segment.offset + segment.length) % block).toBe(0)
    }

    expect(first.offset).toBe(0)
    expect(first.offset + first.length).toBeGreaterThanOrEqual(4 * KiB)
    expect(second.offset).toBeLessThanOrEqual(32 * MiB)
    expect(second.offset).toBeGreaterThan(first.offset + first.length)
    expect(second.offset + second.length).toBeGreaterThanOrEqual(32 * MiB + 4 * KiB)
    expect(first.length + second.length).toBeLessThan(4 * MiB)
  })

  it('reports a file without holes as one segment', () => {
    const fd = open('dense')
    const data = Buffer.alloc(100 * KiB + 7, 1)
    writeSync(fd, data)
    expect(dataSegments(fd, data.length)).toEqual([{length: data.length, offset: 0}])
  })

  it('reports no segments for an all-hole or empty file', () => {
    const hole = open('hole')
    ftruncateSync(hole, 16 * MiB)
    expect(dataSegments(hole, 16 * MiB)).toEqual([])
    expect(dataSegments(open('empty'), 0)).toEqual([])
  })

  it('handles offsets beyond 4 GiB', () => {
    const fd = open('huge')
    ftruncateSync(fd, 8 * GiB)
    const data = Buffer.alloc(4 * KiB, 0x33)
    writeSync(fd, data, 0, data.length, 5 * GiB)

    const segments = dataSegments(fd, 8 * GiB)
    expect(segments).toHaveLength(1)
    expect(segments[0]!.offset).toBeLessThanOrEqual(5 * GiB)
    expect(segments[0]!.offset).toBeGreaterThan(4 * GiB)
    expect(segments[0]!.offset + segments[0]!.length).toBeGreaterThanOrEqual(5 * GiB + 4 * KiB)
  })

  it('clamps to the size the caller saw', () => {
    const fd = open('grown')
    writeSync(fd, Buffer.alloc(64 * KiB, 2))
    expect(dataSegments(fd, 10 * KiB)).toEqual([{length: 10 * KiB, offset: 0}])
  })
})

describe('seekData / seekHole', () => {
  it('returns -1 where there is no more data and leaves the file position alone', () => {
    const native = addon()
    const fd = open('seek')
    ftruncateSync(fd, MiB)
    writeSync(fd, 'abc') // the file position is 3 afterwards

    expect(native.seekData(fd, 0)).toBe(0)
    expect(native.seekHole(fd, 0)).toBeGreaterThanOrEqual(3)
    expect(native.seekData(fd, 512 * KiB)).toBe(-1)
    expect(native.seekHole(fd, 512 * KiB)).toBe(512 * KiB)
    expect(native.seekData(fd, 2 * MiB)).toBe(-1)
    expect(native.seekHole(fd, 2 * MiB)).toBe(-1)

    const next = Buffer.alloc(1)
    writeSync(fd, Buffer.from('d')) // at the current position, which must still be 3
    readSync(fd, next, 0, 1, 3)
    expect(next.toString()).toBe('d')
  })

  it('throws EBADF for a closed fd', () => {
    const native = addon()
    const fd = openSync(path.join(dir, 'closed'), 'w+')
    closeSync(fd)
    expect(() => native.seekData(fd, 0)).toThrow(expect.objectContaining({code: 'EBADF', syscall: 'lseek'}))
  })
})
