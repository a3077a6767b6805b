import {describe, expect, it} from 'vitest'

import {
  debianArchitecture,
  epochTime,
  imageConfig,
  type ImageConfigInput,
  type ImageConfigOptions,
  imageConfigSchema,
} from '../../src/image/config.js'

const EPOCH = 1_700_000_000
const DIFF_ID = `sha256:${'ab'.repeat(32)}`

function options(spec: ImageConfigInput = {}): ImageConfigOptions {
  return {
    architecture: 'amd64',
    createdBy: 'debootstrap bookworm (minbase)',
    diffIDs: [DIFF_ID],
    epoch: EPOCH,
    spec: imageConfigSchema.parse(spec),
  }
}

interface ParsedConfig {
  architecture: string
  config: Record<string, unknown>
  created: string
  history: Array<Record<string, unknown>>
  os: string
  rootfs: {diff_ids: string[]; type: string}
  variant?: string
}

function parsed(spec: ImageConfigInput = {}, extra: Partial<ImageConfigOptions> = {}): ParsedConfig {
  return JSON.parse(imageConfig({...options(spec), ...extra}).toString()) as ParsedConfig
}

describe('epochTime', () => {
  it('writes RFC 3339 UTC without a fraction', () => {
    expect(epochTime(EPOCH)).toBe('2023-11-14T22:13:20Z')
    expect(epochTime(0)).toBe('1970-01-01T00:00:00Z')
  })
})

// the image spec's own key names
/* eslint-disable camelcase */
describe('imageConfig', () => {
  const spec: ImageConfigInput = {
    cmd: 'echo hi',
    entrypoint: ['/usr/bin/tini', '--'],
    env: {LANG: 'C.UTF-8', PATH: '/usr/bin:/bin'},
    healthcheck: {
      interval: '30s',
      retries: 3,
      startPeriod: '1.5s',
      test: 'curl -f http://localhost/',
      timeout: '500ms',
    },
    labels: {'org.b': '2', 'org.a': '1'},
    ports: ['80', '53/udp', '80/tcp'],
    stopSignal: 'SIGQUIT',
    user: 'app:app',
    volumes: ['/data', '/cache', '/data'],
    workdir: '/srv',
  }

  it('gives the same bytes for the same spec', () => {
    expect(imageConfig(options(spec)).equals(imageConfig(options(spec)))).toBe(true)
    const reordered: ImageConfigInput = Object.fromEntries(Object.entries(spec).reverse())
    expect(imageConfig(options(reordered)).equals(imageConfig(options(spec)))).toBe(true)
    expect(imageConfig(options(spec)).toString()).not.toMatch(/\s"|\n/)
  })

  it('writes created, history, rootfs and the platform', () => {
    const config = parsed({}, {architecture: 'arm64', variant: 'v8'})
    expect(config).toEqual({
      architecture: 'arm64',
      config: {},
      created: '2023-11-14T22:13:20Z',
      history: [{comment: 'transship rootfs build', created: '2023-11-14T22:13:20Z', created_by: options().createdBy}],
      os: 'linux',
      rootfs: {diff_ids: [DIFF_ID], type: 'layers'},
      variant: 'v8',
    })
    expect(parsed()).not.toHaveProperty('variant')
  })

  it('writes the runtime settings as Docker does', () => {
    const {config} = parsed(spec)
    expect(config).toEqual({
      Cmd: ['/bin/sh', '-c', 'echo hi'],
      Entrypoint: ['/usr/bin/tini', '--'],
      Env: ['LANG=C.UTF-8', 'PATH=/usr/bin:/bin'],
      ExposedPorts: {'53/udp': {}, '80/tcp': {}},
      Healthcheck: {
        Interval: 30_000_000_000,
        Retries: 3,
        StartPeriod: 1_500_000_000,
        Test: ['CMD-SHELL', 'curl -f http://localhost/'],
        Timeout: 500_000_000,
      },
      Labels: {'org.a': '1', 'org.b': '2'},
      StopSignal: 'SIGQUIT',
      User: 'app:app',
      Volumes: {'/cache': {}, '/data': {}},
      WorkingDir: '/srv',
    })
    expect(Object.keys(config.ExposedPorts as object)).toEqual(['53/udp', '80/tcp'])
    expect(Object.keys(config.Labels as object)).toEqual(['org.a', 'org.b'])
  })

  it('keeps an exec form and an empty entrypoint, and writes an exec form healthcheck as CMD', () => {
    const {config} = parsed({
      cmd: ['nginx', '-g', 'daemon off;'],
      entrypoint: [],
      healthcheck: {interval: '2m', test: ['pg_isready']},
    })
    expect(config).toEqual({
      Cmd: ['nginx', '-g', 'daemon off;'],
      Entrypoint: [],
      Healthcheck: {Interval: 120_000_000_000, Test: ['CMD', 'pg_isready']},
    })
  })

  it('converts every duration unit to nanoseconds', () => {
    const {config} = parsed({healthcheck: {interval: '1h', startInterval: '5s', test: 'true', timeout: '250ms'}})
    expect(config.Healthcheck).toMatchObject({Interval: 3.6e12, StartInterval: 5e9, Timeout: 2.5e8})
  })
})

/* eslint-enable camelcase */

describe('imageConfigSchema', () => {
  it('refuses unknown keys, relative paths, bad durations, ports and variable names', () => {
    for (const bad of [
      {command: 'x'},
      {workdir: 'srv'},
      {volumes: ['data']},
      {healthcheck: {interval: '30', test: 'true'}},
      {healthcheck: {interval: '1d', test: 'true'}},
      {healthcheck: {test: 'true', unknown: 1}},
      {healthcheck: {interval: '30s'}},
      {ports: ['http']},
      {ports: ['80/icmp']},
      {env: {'A=B': 'c'}},
      {cmd: ''},
    ]) {
      expect(imageConfigSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false)
    }

    expect(imageConfigSchema.safeParse({ports: ['65535/sctp'], workdir: '/'}).success).toBe(true)
    expect(imageConfigSchema.safeParse({ports: ['65536']}).success).toBe(false)
    expect(imageConfigSchema.safeParse({ports: ['0/udp']}).success).toBe(false)
  })
})

describe('debianArchitecture', () => {
  it('maps Debian names to image platforms', () => {
    expect(debianArchitecture('armhf')).toEqual({architecture: 'arm', variant: 'v7'})
    expect(debianArchitecture('ppc64el')).toEqual({architecture: 'ppc64le'})
    expect(debianArchitecture('loong64')).toEqual({architecture: 'loong64'})
  })
})
