// Helpers for the archive tests: the fixture files, in-memory archives and stream plumbing.
import {createReadStream} from 'node:fs'
import path from 'node:path'
import {Readable} from 'node:stream'
import {fileURLToPath} from 'node:url'
import tar from 'tar-stream'

export const fixtures = fileURLToPath(new URL('../fixtures/archives/', import.meta.url))

export function fixture(name: string): Readable {
  return createReadStream(path.join(fixtures, name))
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export interface TarEntry {
  content?: Buffer | string
  linkname?: string
  name: string
  type?: 'directory' | 'file' | 'link' | 'symlink'
}

/** A tar archive of `entries`, in memory. */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack()
  const done = readAll(pack as unknown as AsyncIterable<Buffer>)
  for (const entry of entries) {
    const type = entry.type ?? 'file'
    await new Promise<void>((resolve, reject) => {
      const callback = (error?: Error | null) => (error ? reject(error) : resolve())
      if (type === 'file') {
        pack.entry({mtime: new Date(0), name: entry.name}, Buffer.from(entry.content ?? ''), callback)
      } else {
        pack.entry({linkname: entry.linkname, mtime: new Date(0), name: entry.name, type}, callback)
      }
    })
  }

  pack.finalize()
  return done
}

export function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value))
}

/** A layer body: some bytes (not compressed, so its digest is its diffID). */
export function layerBytes(label: string, size = 1536): Buffer {
  const text = Buffer.from(`layer ${label}\n`)
  const bytes = Buffer.alloc(size)
  for (let offset = 0; offset < size; offset += text.length) text.copy(bytes, offset)
  return bytes
}

/** An image config for these diffIDs. */
export function configFor(diffIDs: string[], extra: Record<string, unknown> = {}): Buffer {
  // eslint-disable-next-line camelcase
  return json({architecture: 'amd64', os: 'linux', rootfs: {diff_ids: diffIDs, type: 'layers'}, ...extra})
}
