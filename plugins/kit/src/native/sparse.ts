/**
 * The data segments of a sparse file, found with lseek SEEK_DATA / SEEK_HOLE, so that holes are neither
 * read nor sent. Granularity is the filesystem's block (or extent) size: a segment may start before and end
 * after the bytes actually written, and a region of written zeros is data.
 */
import {requireNative} from './addon.js'

interface DataSegment {
  length: number
  offset: number
}

/**
 * The data segments of the open file `fd` (a Node fd, from fs.open) within its first `size` bytes, in
 * order and non-overlapping. A file without holes is one segment [0, size); a file that is all hole has
 * none. On filesystems without SEEK_DATA support the kernel reports the whole file as data. The fd's file
 * position is not moved.
 */
export function dataSegments(fd: number, size: number): DataSegment[] {
  const addon = requireNative('sparse files cannot be detected')
  const segments: DataSegment[] = []
  let offset = 0
  while (offset < size) {
    const start = addon.seekData(fd, offset)
    if (start < 0 || start >= size) break
    let end = addon.seekHole(fd, start)
    if (end < 0 || end > size) end = size // past EOF (the file shrank) or grew: clamp to what the caller saw
    if (end <= start) break
    segments.push({length: end - start, offset: start})
    offset = end
  }

  return segments
}
