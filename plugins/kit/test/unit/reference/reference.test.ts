import {UsageError} from '@transship/kit'
import {checkImageOrId, formatReference, parseReference, referenceProblem} from '@transship/kit/reference'
import {describe, expect, it} from 'vitest'

const SHA256 = `sha256:${'a'.repeat(64)}`

describe('image references (distribution/reference grammar)', () => {
  it.each([
    ['busybox', 'busybox:latest', {domain: 'docker.io', path: 'library/busybox', tag: 'latest'}],
    ['corp/app:1.4', 'corp/app:1.4', {domain: 'docker.io', path: 'corp/app', tag: '1.4'}],
    ['localhost:5000/team/app:1', 'localhost:5000/team/app:1', {domain: 'localhost:5000', path: 'team/app'}],
    ['Registry.Example.com/a/b_c__d---e.f', 'Registry.Example.com/a/b_c__d---e.f:latest', {path: 'a/b_c__d---e.f'}],
    ['[::1]:5000/app:1', '[::1]:5000/app:1', {domain: '[::1]:5000'}],
    ['index.docker.io/library/app:1', 'app:1', {domain: 'docker.io'}],
    [`app@${SHA256}`, `app@${SHA256}`, {digest: SHA256, tag: undefined}],
    [`app:1@${SHA256}`, `app:1@${SHA256}`, {digest: SHA256, tag: '1'}],
    [`a/${'b'.repeat(253)}`, `a/${'b'.repeat(253)}:latest`, {}],
    [`app:${'t'.repeat(128)}`, `app:${'t'.repeat(128)}`, {}],
    [`${'a'.repeat(64)}:1`, `${'a'.repeat(64)}:1`, {}],
  ])('accepts %s', (input, familiar, fields) => {
    const reference = parseReference(input)
    expect(reference).toMatchObject(fields)
    expect(formatReference(reference)).toBe(familiar)
    expect(referenceProblem(input)).toBeUndefined()
  })

  it.each([
    ['', /it is empty/],
    ['App:1', /lower-case: "App"/],
    ['app:1 ', /spaces or control characters/],
    ['app\n', /spaces or control characters/],
    ['app:.hidden', /the tag ".hidden" is not valid/],
    [`app:${'t'.repeat(129)}`, /the tag is 129 characters long \(at most 128\)/],
    [`a/${'b'.repeat(254)}`, /the name is 256 characters long \(at most 255/],
    ['a//b', /empty path component/],
    ['a/', /empty path component/],
    [':1', /repository name is empty/],
    ['app-:1', /"app-" is not a valid path component/],
    ['a..b', /"a..b" is not a valid path component/],
    ['exa_mple.com/app', /"exa_mple.com" is not a registry host/],
    ['-registry.example.com/app', /is not a registry host/],
    ['app@sha256:abc', /"sha256:abc" after "@" is not a digest/],
    [`app@md5:${'a'.repeat(32)}`, /algorithm "md5" is not sha256, sha384 or sha512/],
    [`app@sha256:${'A'.repeat(64)}`, /a sha256 digest has 64 lower-case hex digits/],
    [`app@sha256:${'a'.repeat(63)}`, /a sha256 digest has 64 lower-case hex digits/],
    [`app@${SHA256}@${SHA256}`, /after "@" is not a digest/],
    ['a'.repeat(64), /image ID, not a repository name/],
  ])('refuses %j, naming the rule', (input, rule) => {
    expect(referenceProblem(input)).toMatch(rule)
    let error: unknown
    try {
      parseReference(input)
    } catch (error_) {
      error = error_
    }

    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).exit).toBe(2)
    expect((error as UsageError).code).toBe('REFERENCE_INVALID')
    const shown = input.length <= 100 ? JSON.stringify(input) : JSON.stringify(input.slice(0, 60)).slice(0, -1)
    expect((error as UsageError).message).toContain(shown)
    expect((error as UsageError).message).toContain(' is not a valid image reference: ')
    expect((error as UsageError).message).toMatch(rule)
  })

  it('refuses a huge reference at once, and shows it cut short', () => {
    const huge = `app:${Buffer.alloc(52 * 1024 * 1024, 'x').toString('latin1')}`
    expect(() => parseReference(huge)).toThrow(UsageError) // the first call also flattens the concatenated string
    const started = performance.now()
    expect(() => parseReference(huge)).toThrow(UsageError)
    expect(performance.now() - started).toBeLessThan(50)
    let message = ''
    try {
      parseReference(huge)
    } catch (error) {
      message = (error as Error).message
    }

    expect(message.length).toBeLessThan(400)
    expect(message).toContain(`"app:xxxxxxxx`)
    expect(message).toContain(`(${huge.length} characters)`)
    expect(message).toContain(`it is ${huge.length} characters long; a reference is at most 520`)
  })

  it('takes image IDs where an image of an engine is named', () => {
    expect(() => checkImageOrId(SHA256)).not.toThrow()
    expect(() => checkImageOrId('a'.repeat(64))).not.toThrow()
    expect(() => checkImageOrId('3f57d9401f8d')).not.toThrow()
    expect(() => checkImageOrId('app:1')).not.toThrow()
    expect(() => checkImageOrId('App:1')).toThrow(/lower-case/)
  })
})
