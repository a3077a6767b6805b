/**
 * Where each entry's content is in an uncompressed tar file, read from the headers alone (content is
 * skipped with positioned reads), so that any entry can later be streamed on its own and from any offset:
 * what pushing blobs out of an archive, with retries that resume, needs.
 */
import {open} from 'node:fs/promises'

import {decodeTarName, type TarEntry, TarFramer} from '../tar/index.js'

export interface TarIndexEntry {
  /** hard link target or symlink target, as stored */
  linkname?: string
  /** byte offset of the content in the file */
  offset: number
  size: number
  /** tar type flag: '0' file, '1' hard link, '2' symlink, '5' directory, ... */
  type: string
}

/** Read at once: the headers of many small entries, or the start of a large one (the rest is skipped). */
const READ_SIZE = 64 * 1024

function normalise(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/^\/+/, '')
}

/** Every entry of the tar at `file` by normalised name (no leading `./`; directories keep their trailing `/`). */
export async function indexTarFile(file: string, signal?: AbortSignal): Promise<Map<string, TarIndexEntry>> {
  const entries = new Map<string, TarIndexEntry>()
  const add = (entry: TarEntry) => {
    const linkname = entry.linkname.length > 0 ? decodeTarName(entry.linkname) : undefined
    entries.set(normalise(entry.name.toString('utf8')), {
      linkname,
      offset: entry.dataOffset,
      size: entry.declaredSize,
      type: entry.typeflag === '\0' ? '0' : entry.typeflag,
    })
  }

  const framer = new TarFramer({entry: add}, {endMarker: 'optional', label: file})
  const handle = await open(file, 'r')
  try {
    const {size: fileSize} = await handle.stat()
    const buffer = Buffer.alloc(READ_SIZE)
    let position = 0
    while (!framer.ended) {
      signal?.throwIfAborted()
      // the rest of a large entry's content is skipped, as far as the file goes
      position += framer.skip(fileSize - position)
      const {bytesRead} = await handle.read(buffer, 0, READ_SIZE, position)
      if (bytesRead === 0) break
      const chunk = buffer.subarray(0, bytesRead)
      for (let offset = 0; offset < bytesRead;) offset = framer.write(chunk, offset)
      position += bytesRead
    }

    framer.end()
  } finally {
    await handle.close()
  }

  return entries
}
