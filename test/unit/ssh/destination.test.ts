import {UsageError} from '@transship/kit'
import {describe, expect, it} from 'vitest'

import {formatDestination, parseDestination} from '../../../src/ssh/destination.js'

describe('parseDestination', () => {
  it.each([
    ['edge', {host: 'edge'}],
    ['deploy@edge', {host: 'edge', user: 'deploy'}],
    ['deploy@edge:2222', {host: 'edge', port: 2222, user: 'deploy'}],
    ['edge.example.com:22', {host: 'edge.example.com', port: 22}],
    ['10.0.0.7', {host: '10.0.0.7'}],
    ['ssh://deploy@edge', {host: 'edge', user: 'deploy'}],
    ['ssh://deploy@edge:2222', {host: 'edge', port: 2222, user: 'deploy'}],
    ['ssh://edge:2222/', {host: 'edge', port: 2222}],
    ['SSH://edge', {host: 'edge'}],
    ['ssh://first.last%40corp@edge', {host: 'edge', user: 'first.last@corp'}],
    ['first@corp@edge', {host: 'edge', user: 'first@corp'}],
    ['[::1]:2222', {host: '::1', port: 2222}],
    ['root@[::1]', {host: '::1', user: 'root'}],
    ['ssh://root@[fe80::1]:2200', {host: 'fe80::1', port: 2200, user: 'root'}],
    ['::1', {host: '::1'}],
  ])('parses %s', (input, expected) => {
    expect(parseDestination(input)).toEqual(expected)
  })

  it.each([
    ['', /is empty/],
    ['  edge  ', /spaces or control characters/],
    ['ssh://', /host is empty/],
    ['@edge', /user before "@" is empty/],
    ['deploy@', /host is empty/],
    ['edge:', /"" is not a port number/],
    ['edge:ssh', /"ssh" is not a port number/],
    ['edge:0', /out of range/],
    ['edge:65536', /out of range/],
    ['edge:-1', /not a port number/],
    ['-oProxyCommand=x', /not a valid host name|must not start/],
    ['ed ge', /spaces or control characters/],
    ['[::1', /without its "]"/],
    ['[::1]x', /unexpected "x"/],
    ['1:2:3:zz', /not a valid IPv6 address/],
    ['ssh://deploy:secret@edge', /passwords are not supported/],
    ['ssh://edge/var/run/docker.sock', /no path/],
    ['tcp://edge:2375', /only the ssh:\/\/ scheme/],
    ['-deploy@edge', /must not start with "-"/],
  ])('refuses %j', (input, message) => {
    let error: unknown
    try {
      parseDestination(input)
    } catch (error_) {
      error = error_
    }

    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).code).toBe('SSH_DESTINATION_INVALID')
    expect((error as UsageError).message).toMatch(message)
    expect((error as UsageError).message).toContain(`"${input}"`)
  })
})

describe('formatDestination', () => {
  it('brackets IPv6 hosts and leaves out port 22', () => {
    expect(formatDestination({host: '::1', port: 2222, user: 'root'})).toBe('root@[::1]:2222')
    expect(formatDestination({host: 'edge', port: 22})).toBe('edge')
  })
})
