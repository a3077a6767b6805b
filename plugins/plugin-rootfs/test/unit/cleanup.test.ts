import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import {describe, expect, it} from 'vitest'

import type {RootfsEntry} from '../../src/source/entry.js'

import {clampShadow, cleanEntries, isRemoved} from '../../src/pack/cleanup.js'

const DAY = 86_400
const EPOCH = 20_000 * DAY

function entry(path: string, type: RootfsEntry['type'], extra: Partial<RootfsEntry> = {}): RootfsEntry {
  return {gid: 0, mode: 0o755, mtime: EPOCH - 10, path, size: 0, type, uid: 0, xattrs: new Map(), ...extra}
}

function file(path: string, content: string, extra: Partial<RootfsEntry> = {}): RootfsEntry {
  const bytes = Buffer.from(content)
  return entry(path, 'file', {mode: 0o600, open: () => Readable.from([bytes]), size: bytes.length, ...extra})
}

async function* iterate(entries: RootfsEntry[]): AsyncIterable<RootfsEntry> {
  yield* entries
}

interface Cleaned {
  content?: string
  entry: RootfsEntry
}

async function clean(entries: RootfsEntry[], cleanup?: boolean): Promise<Map<string, Cleaned>> {
  const result = new Map<string, Cleaned>()
  for await (const cleaned of cleanEntries(iterate(entries), {cleanup, epoch: EPOCH})) {
    const item: Cleaned = {entry: cleaned}
    if (cleaned.open) {
      const content = (await buffer(cleaned.open())).toString()
      item.content = content
      expect(Buffer.byteLength(content)).toBe(cleaned.size)
      if (cleaned.readAll) expect(cleaned.readAll().toString()).toBe(content)
    }

    result.set(cleaned.path, item)
  }

  return result
}

describe('isRemoved', () => {
  it('removes logs, caches and the contents of runtime directories', () => {
    for (const path of [
      'var/log/dpkg.log',
      'var/cache/ldconfig/aux-cache',
      'tmp/x',
      'tmp/a/b',
      'var/lib/apt/lists/foo',
      'var/cache/apt/archives/x.deb',
      'var/cache/apt/pkgcache.bin',
      'dev/null',
      'proc/1',
      'sys/kernel',
      'debootstrap',
      'debootstrap/debootstrap.log',
    ]) {
      expect(isRemoved(path), path).toBe(true)
    }
  })

  it('keeps the directories themselves and what apt expects', () => {
    for (const path of [
      'dev',
      'proc',
      'sys',
      'tmp',
      'var/lib/apt/lists',
      'var/lib/apt/lists/partial',
      'var/cache/apt',
      'var/cache/apt/archives',
      'var/cache/apt/archives/partial',
      'var/log',
      'var/log/apt',
      'etc/hostname',
      'tmpfile',
      'devices/x',
      'usr/tmp/x',
    ]) {
      expect(isRemoved(path), path).toBe(false)
    }
  })
})

describe('clampShadow', () => {
  it('clamps days of last change after the epoch, leaves older and empty ones', () => {
    const shadow = [
      'root:*:20400:0:99999:7:::',
      'daemon:*:19000:0:99999:7:::',
      'nobody:*::0:99999:7:::',
      'same:*:20000:0:99999:7:::',
      '',
    ].join('\n')
    expect(clampShadow(shadow, EPOCH + DAY - 1)).toBe(
      [
        'root:*:20000:0:99999:7:::',
        'daemon:*:19000:0:99999:7:::',
        'nobody:*::0:99999:7:::',
        'same:*:20000:0:99999:7:::',
        '',
      ].join('\n'),
    )
  })

  it('leaves lines that are not shadow entries', () => {
    expect(clampShadow('garbage\nx:y\n', EPOCH)).toBe('garbage\nx:y\n')
  })
})

function rootfs(): RootfsEntry[] {
  return [
    entry('dev', 'directory', {mtime: EPOCH + 100}),
    entry('dev/null', 'character-device', {devmajor: 1, devminor: 3}),
    entry('etc', 'directory'),
    file('etc/hostname', 'buildhost\n', {gid: 5, mtime: EPOCH + 100, uid: 1000}),
    file('etc/machine-id', '0123456789abcdef\n'),
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n', {mtime: EPOCH - 3 * DAY}),
    file('etc/resolv.conf', 'nameserver 10.0.0.1\n'),
    file('etc/shadow', 'root:*:20400:0:99999:7:::\n'),
    entry('tmp', 'directory', {mode: 0o1777}),
    file('tmp/x', 'scratch'),
    entry('var', 'directory'),
    entry('var/log', 'directory'),
    file('var/log/dpkg.log', 'the log'),
    entry('var/log/dpkg.link', 'link', {linkname: 'var/log/dpkg.log'}),
  ]
}

describe('cleanEntries', () => {
  it('removes, fixes and clamps', async () => {
    const cleaned = await clean(rootfs())
    expect([...cleaned.keys()]).toEqual([
      'dev',
      'etc',
      'etc/hostname',
      'etc/machine-id',
      'etc/passwd',
      'etc/resolv.conf',
      'etc/shadow',
      'tmp',
      'var',
      'var/log',
      'var/log/dpkg.link',
    ])
    for (const {entry: item} of cleaned.values()) expect(item.mtime).toBeLessThanOrEqual(EPOCH)
    expect(cleaned.get('dev')!.entry.mtime).toBe(EPOCH)
    expect(cleaned.get('etc/passwd')!.entry.mtime).toBe(EPOCH - 3 * DAY)
    expect(cleaned.get('etc/hostname')).toMatchObject({
      content: 'localhost\n',
      entry: {gid: 0, mode: 0o644, mtime: EPOCH, size: 10, uid: 0},
    })
    expect(cleaned.get('etc/resolv.conf')).toMatchObject({content: '', entry: {size: 0}})
    expect(cleaned.get('etc/machine-id')).toMatchObject({content: '', entry: {size: 0}})
    expect(cleaned.get('etc/shadow')!.content).toBe('root:*:20000:0:99999:7:::\n')
    expect(cleaned.get('etc/passwd')!.content).toBe('root:x:0:0:root:/root:/bin/bash\n')
  })

  it('turns a hardlink whose first name was removed into the file', async () => {
    const cleaned = await clean(rootfs())
    const link = cleaned.get('var/log/dpkg.link')!
    expect(link.entry.type).toBe('file')
    expect(link.entry.linkname).toBeUndefined()
    expect(link).toMatchObject({content: 'the log', entry: {mode: 0o600, size: 7}})
  })

  // A second hardlink to the same removed file still names the removed path: the layer then holds a hardlink
  // to a file it does not contain (GNU tar: "Cannot hard link"). Expected: a link to the first kept name.
  it('points further hardlinks to a removed file at the name that became the file', async () => {
    const cleaned = await clean([
      file('tmp/a', 'content'),
      entry('x', 'link', {linkname: 'tmp/a'}),
      entry('y', 'link', {linkname: 'tmp/a'}),
    ])
    expect(cleaned.get('x')!.entry.type).toBe('file')
    expect(cleaned.get('y')!.entry).toMatchObject({linkname: 'x', type: 'link'})
  })

  it('keeps everything with cleanup: false, and still clamps times', async () => {
    const cleaned = await clean(rootfs(), false)
    expect([...cleaned.keys()]).toEqual(rootfs().map((item) => item.path))
    for (const {entry: item} of cleaned.values()) expect(item.mtime).toBeLessThanOrEqual(EPOCH)
    expect(cleaned.get('etc/hostname')).toMatchObject({
      content: 'buildhost\n',
      entry: {gid: 5, mode: 0o600, mtime: EPOCH, uid: 1000},
    })
    expect(cleaned.get('etc/shadow')!.content).toBe('root:*:20400:0:99999:7:::\n')
    expect(cleaned.get('var/log/dpkg.link')!.entry).toMatchObject({linkname: 'var/log/dpkg.log', type: 'link'})
  })
})
