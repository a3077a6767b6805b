import {closest, LISTED_NAMES, unknownKeyMessage} from '@transship/kit/yaml'
import {describe, expect, it} from 'vitest'

describe('did-you-mean', () => {
  it('suggests close names, transpositions and case included', () => {
    expect(closest('imgaes', ['version', 'hosts', 'images'])).toBe('images')
    expect(closest('Hosts', ['version', 'hosts'])).toBe('hosts')
    expect(closest('registry', ['registries'])).toBe('registries')
    expect(closest('expectedOuput', ['expectedOutput', 'excludedOutput'])).toBe('expectedOutput')
    expect(closest('zzz', ['version', 'hosts'])).toBeUndefined()
  })

  it('suggests a name only when at most 40% of it differs', () => {
    // "abcdefghij" vs "abcdefxxxx": 4 of 10 differ; one more and it is not close
    expect(closest('abcdefxxxx', ['abcdefghij'])).toBe('abcdefghij')
    expect(closest('abcdexxxxx', ['abcdefghij'])).toBeUndefined()
    // a short name: one edit is always allowed
    expect(closest('sh', ['ssh'])).toBe('ssh')
  })

  it('gives up on a long name at once', () => {
    const started = performance.now()
    for (let i = 0; i < 100; i++)
      expect(closest(`${'k'.repeat(400_000)}${i}`, ['commandTests', 'kkkk'])).toBeUndefined()
    // an unbounded edit distance takes about 0.1 s for each of these
    expect(performance.now() - started).toBeLessThan(1000)
  })

  it('words an unknown key: did you mean, else the keys allowed there', () => {
    expect(unknownKeyMessage('sssh', ['ssh', 'engine'])).toBe('unknown key "sssh" (did you mean "ssh"?)')
    expect(unknownKeyMessage('wat', ['ssh', 'engine'])).toBe('unknown key "wat" (allowed: engine, ssh)')
    expect(unknownKeyMessage('wat', [])).toBe('unknown key "wat"')
  })

  it('suggests names that are not listed as allowed', () => {
    expect(unknownKeyMessage('rotfs', ['images'], ['rootfs'])).toBe('unknown key "rotfs" (did you mean "rootfs"?)')
    expect(unknownKeyMessage('zzz', ['images'], ['rootfs'])).toBe('unknown key "zzz" (allowed: images)')
  })

  it('lists at most LISTED_NAMES allowed keys, and counts the others', () => {
    const allowed = Array.from({length: LISTED_NAMES + 5}, (_, i) => `key${String(i).padStart(2, '0')}`)
    const message = unknownKeyMessage('zzzzzzzz', allowed)
    expect(message).toBe(`unknown key "zzzzzzzz" (allowed: ${allowed.slice(0, LISTED_NAMES).join(', ')} and 5 more)`)
  })

  it('escapes and shortens the key it quotes', () => {
    expect(unknownKeyMessage(`\u001B[2J${'k'.repeat(100)}`, [])).toBe(`unknown key "\\u001b[2J${'k'.repeat(33)}..."`)
  })
})
