import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {
  appendHostKey,
  checkHostKey,
  fingerprint,
  hashHostName,
  hostMatches,
  keyTypeOf,
  knownHostKeyTypes,
  knownHostsName,
  parseKnownHosts,
} from '../../../src/ssh/known-hosts.js'

// made with OpenSSH 9.2: ssh-keygen -t ed25519 / -t ecdsa, fingerprints by ssh-keygen -lf, the hashed line by ssh-keygen -H
const ED25519 = 'AAAAC3NzaC1lZDI1NTE5AAAAILoxrvkIh0iYx3qqg6V58LkACq12ATHU/zkroOY37WL3'
const ED25519_FINGERPRINT = 'SHA256:kJdDE/T77g+coaCJcCgUEK+MxBjRy4sz+QVqfS4zIS4'
const ECDSA =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJhmZocfgPVVcNKgBphbad3/4KCmTe9ZEslotcu9pjwJk8SL8fbxR0Nzf5wp5gLCq2oUlZvf2koOc7+xVb7r9Q4='
const ECDSA_FINGERPRINT = 'SHA256:cpZ88VIrbYazFqBFdCh5vNcxOnbv2o3JyakESNR2SGo'
const HASHED_EDGE_2222 = '|1|nbTPnTeWCOVX3EGCHsObhQyMmK0=|//XMp+YNNXZScqDzb69it3/aXmM='
// a second ed25519 key: the same type, another key
const OTHER_ED25519 = 'AAAAC3NzaC1lZDI1NTE5AAAAIIbG30L38ZJdx26MIo5JW5+k4qfarYpAkBsHCbNQ5eG+'

const ed25519 = Buffer.from(ED25519, 'base64')
const ecdsa = Buffer.from(ECDSA, 'base64')

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'transship-known-hosts-'))
})
afterEach(async () => {
  await rm(dir, {force: true, recursive: true})
})

async function knownHosts(...lines: string[]): Promise<string> {
  const file = path.join(dir, 'known_hosts')
  await writeFile(file, lines.join('\n') + '\n')
  return file
}

describe('fingerprint and key types', () => {
  it('prints SHA256 fingerprints as ssh-keygen -l does', () => {
    expect(fingerprint(ed25519)).toBe(ED25519_FINGERPRINT)
    expect(fingerprint(ecdsa)).toBe(ECDSA_FINGERPRINT)
  })

  it('reads the key type inside a wire-format key', () => {
    expect(keyTypeOf(ed25519)).toBe('ssh-ed25519')
    expect(keyTypeOf(ecdsa)).toBe('ecdsa-sha2-nistp256')
    expect(keyTypeOf(Buffer.from([0, 0]))).toBe('')
  })

  it('names hosts as known_hosts does', () => {
    expect(knownHostsName('Edge', 22)).toBe('edge')
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222')
  })
})

describe('hostMatches', () => {
  it('matches comma lists, globs and negations case-insensitively', () => {
    expect(hostMatches('edge,10.0.0.7', 'edge')).toBe(true)
    expect(hostMatches('edge,10.0.0.7', '10.0.0.7')).toBe(true)
    expect(hostMatches('EDGE', 'edge')).toBe(true)
    expect(hostMatches('*.example.com', 'a.example.com')).toBe(true)
    expect(hostMatches('*.example.com', 'example.com')).toBe(false)
    expect(hostMatches('web?', 'web1')).toBe(true)
    expect(hostMatches('web?', 'web10')).toBe(false)
    expect(hostMatches('*.example.com,!secret.example.com', 'secret.example.com')).toBe(false)
    expect(hostMatches('!secret.example.com', 'other.example.com')).toBe(false)
    expect(hostMatches('[edge]:2222', '[edge]:2222')).toBe(true)
    expect(hostMatches('edge', '[edge]:2222')).toBe(false)
    expect(hostMatches('[*.example.com]:2222', '[a.example.com]:2222')).toBe(true)
  })

  it('matches hashed entries written by ssh-keygen -H', () => {
    expect(hostMatches(HASHED_EDGE_2222, '[edge.example.com]:2222')).toBe(true)
    expect(hostMatches(HASHED_EDGE_2222, '[EDGE.example.com]:2222')).toBe(true)
    expect(hostMatches(HASHED_EDGE_2222, 'edge.example.com')).toBe(false)
    expect(hostMatches('|1|bad', 'edge')).toBe(false)
    expect(hostMatches(hashHostName('[edge]:2222'), '[edge]:2222')).toBe(true)
  })
})

describe('parseKnownHosts', () => {
  it('reads markers, skips comments, blank, malformed and mistyped lines', () => {
    const entries = parseKnownHosts(
      [
        '# a comment',
        '',
        `edge ssh-ed25519 ${ED25519} a comment`,
        `@revoked * ssh-ed25519 ${OTHER_ED25519}`,
        `@cert-authority *.example.com ssh-ed25519 ${ED25519}`,
        `@unknown edge ssh-ed25519 ${ED25519}`,
        'edge ssh-ed25519',
        `edge ssh-rsa ${ED25519}`,
        `   indented ecdsa-sha2-nistp256 ${ECDSA}`,
      ].join('\n'),
      'kh',
    )
    expect(entries.map((entry) => [entry.line, entry.patterns, entry.keyType, entry.marker])).toEqual([
      [3, 'edge', 'ssh-ed25519', undefined],
      [4, '*', 'ssh-ed25519', '@revoked'],
      [5, '*.example.com', 'ssh-ed25519', '@cert-authority'],
      [9, 'indented', 'ecdsa-sha2-nistp256', undefined],
    ])
  })
})

describe('checkHostKey', () => {
  it('knows a key listed for the host, in any of the files', async () => {
    const empty = path.join(dir, 'missing')
    const file = await knownHosts(`other ssh-ed25519 ${OTHER_ED25519}`, `edge,10.0.0.7 ssh-ed25519 ${ED25519}`)
    expect(await checkHostKey({files: [empty, file], host: 'edge', key: ed25519, port: 22})).toEqual({
      file,
      line: 2,
      status: 'known',
    })
  })

  it('uses the [host]:port form for other ports', async () => {
    const file = await knownHosts(`[edge]:2222 ssh-ed25519 ${ED25519}`)
    expect((await checkHostKey({files: [file], host: 'edge', key: ed25519, port: 2222})).status).toBe('known')
    expect((await checkHostKey({files: [file], host: 'edge', key: ed25519, port: 22})).status).toBe('unknown')
  })

  it('matches hashed entries', async () => {
    const file = await knownHosts(`${HASHED_EDGE_2222} ssh-ed25519 ${ED25519}`)
    expect((await checkHostKey({files: [file], host: 'edge.example.com', key: ed25519, port: 2222})).status).toBe(
      'known',
    )
  })

  it('reports a different key of the same type as a mismatch, naming the line', async () => {
    const file = await knownHosts(`other ssh-ed25519 ${ED25519}`, `edge ssh-ed25519 ${OTHER_ED25519}`)
    expect(await checkHostKey({files: [file], host: 'edge', key: ed25519, port: 22})).toEqual({
      file,
      knownKeyTypes: ['ssh-ed25519'],
      line: 2,
      status: 'mismatch',
    })
  })

  it('reports a key when the host is only known with keys of other types as a mismatch', async () => {
    const file = await knownHosts(`edge ecdsa-sha2-nistp256 ${ECDSA}`)
    expect(await checkHostKey({files: [file], host: 'edge', key: ed25519, port: 22})).toEqual({
      file,
      knownKeyTypes: ['ecdsa-sha2-nistp256'],
      line: 1,
      status: 'mismatch',
    })
  })

  it('accepts the key when one of several keys of the host matches', async () => {
    const file = await knownHosts(`edge ecdsa-sha2-nistp256 ${ECDSA}`, `edge ssh-ed25519 ${ED25519}`)
    expect((await checkHostKey({files: [file], host: 'edge', key: ed25519, port: 22})).status).toBe('known')
  })

  it('refuses a revoked key even when it is also listed as known', async () => {
    const file = await knownHosts(`edge ssh-ed25519 ${ED25519}`, `@revoked * ssh-ed25519 ${ED25519}`)
    expect(await checkHostKey({files: [file], host: 'edge', key: ed25519, port: 22})).toEqual({
      file,
      line: 2,
      status: 'revoked',
    })
  })

  it('ignores @cert-authority lines: the host stays unknown', async () => {
    const file = await knownHosts(`@cert-authority * ssh-ed25519 ${ED25519}`)
    expect((await checkHostKey({files: [file], host: 'edge', key: ed25519, port: 22})).status).toBe('unknown')
  })

  it('does not match a host excluded by a negated pattern', async () => {
    const file = await knownHosts(`*.example.com,!secret.example.com ssh-ed25519 ${OTHER_ED25519}`)
    expect((await checkHostKey({files: [file], host: 'secret.example.com', key: ed25519, port: 22})).status).toBe(
      'unknown',
    )
    expect((await checkHostKey({files: [file], host: 'web.example.com', key: ed25519, port: 22})).status).toBe(
      'mismatch',
    )
  })

  it('lists the key types known for a host', async () => {
    const file = await knownHosts(`edge ecdsa-sha2-nistp256 ${ECDSA}`, `@revoked edge ssh-ed25519 ${ED25519}`)
    expect(await knownHostKeyTypes({files: [file], host: 'edge', port: 22})).toEqual(['ecdsa-sha2-nistp256'])
  })
})

describe('appendHostKey', () => {
  it('creates the directory (0700) and the file (0600), and adds each key once', async () => {
    const file = path.join(dir, 'home', '.ssh', 'known_hosts')
    await appendHostKey(file, '127.0.0.1', 2222, 'ssh-ed25519', ED25519)
    await appendHostKey(file, '127.0.0.1', 2222, 'ssh-ed25519', ED25519)
    expect(await readFile(file, 'utf8')).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${ED25519}\n`)
    expect((await stat(file)).mode % 0o1000).toBe(0o600)
    expect((await stat(path.dirname(file))).mode % 0o1000).toBe(0o700)
    expect((await checkHostKey({files: [file], host: '127.0.0.1', key: ed25519, port: 2222})).status).toBe('known')
  })

  it('starts a new line when the file does not end with one, and can hash the host', async () => {
    const file = path.join(dir, 'known_hosts')
    await writeFile(file, `other ssh-ed25519 ${OTHER_ED25519}`)
    await appendHostKey(file, 'edge', 22, 'ssh-ed25519', ED25519, {hash: true})
    const lines = (await readFile(file, 'utf8')).split('\n')
    expect(lines[0]).toBe(`other ssh-ed25519 ${OTHER_ED25519}`)
    expect(lines[1]).toMatch(/^\|1\|[^ ]+ ssh-ed25519 /)
    expect(lines[1]).not.toContain('edge')
    expect((await checkHostKey({files: [file], host: 'edge', key: ed25519, port: 22})).status).toBe('known')
  })
})
