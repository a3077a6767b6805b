import {describe, expect, it} from 'vitest'

import {formatHostEndpoint, isOnThisMachine} from '../../../src/hosts/host-endpoint.js'

const ssh = (host: string) => ({host, kind: 'ssh' as const, port: 22, socket: '/var/run/docker.sock', user: 'root'})

describe('a resolved host endpoint', () => {
  it('is on this machine for a local socket and a loopback address, not for another machine', () => {
    expect(isOnThisMachine({kind: 'unix', socket: '/var/run/docker.sock'})).toBe(true)
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '0:0:0:0:0:0:0:1']) {
      expect(isOnThisMachine(ssh(host)), host).toBe(true)
    }

    for (const host of ['edge.example.com', '10.0.0.1', '128.0.0.1', '::2', 'localhost.example.com']) {
      expect(isOnThisMachine(ssh(host)), host).toBe(false)
    }

    expect(isOnThisMachine({host: '127.0.0.1', kind: 'tcp', port: 2375})).toBe(true)
    expect(isOnThisMachine({host: 'build.example.com', kind: 'tcp', port: 2375})).toBe(false)
  })

  it('is written as one address', () => {
    expect(formatHostEndpoint({kind: 'unix', socket: '/run/docker.sock'})).toBe('unix:///run/docker.sock')
    expect(formatHostEndpoint({host: '::1', kind: 'tcp', port: 2375})).toBe('tcp://[::1]:2375')
    expect(formatHostEndpoint({...ssh('10.0.0.1'), port: 2222})).toBe('ssh://root@10.0.0.1:2222/var/run/docker.sock')
  })
})
