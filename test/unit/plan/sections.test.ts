import type {Interfaces} from '@oclif/core'
import type {SectionProvider} from '@transship/kit'

import {describe, expect, it} from 'vitest'
import {z} from 'zod'

import {sectionProviders} from '../../../src/sections.js'

const noop = () => {}
const log = {debug: noop, info: noop, warn: noop}

function provider(section: string, plugin: string): SectionProvider {
  return {plan: async () => [], plugin, schema: z.unknown(), section}
}

/** An oclif config whose plugins' hooks answered in `answered` order. */
function config(declared: string[], answered: string[]): Interfaces.Config {
  return {
    pjson: {oclif: {plugins: declared}},
    runHook: async () => ({
      failures: [],
      successes: answered.map((name) => ({plugin: {name}, result: [provider(name.split('-').at(-1)!, name)]})),
    }),
  } as unknown as Interfaces.Config
}

describe('sectionProviders', () => {
  it('gives the sections in the order the plugins are declared, whatever order their hooks answered in', async () => {
    const declared = ['@oclif/plugin-help', '@t/plugin-images', '@t/plugin-rootfs', '@t/plugin-verify']
    const first = await sectionProviders(
      config(declared, ['@t/plugin-verify', '@t/plugin-images', '@t/plugin-rootfs']),
      log,
    )
    const second = await sectionProviders(
      config(declared, ['@t/plugin-rootfs', '@t/plugin-verify', '@t/plugin-images']),
      log,
    )
    expect(first.map((item) => item.section)).toEqual(['images', 'rootfs', 'verify'])
    expect(second.map((item) => item.section)).toEqual(['images', 'rootfs', 'verify'])
  })

  it('puts plugins installed by the user after the declared ones, by name', async () => {
    const found = await sectionProviders(
      config(['@t/plugin-images'], ['@x/plugin-zeta', '@t/plugin-images', '@x/plugin-alpha']),
      log,
    )
    expect(found.map((item) => item.section)).toEqual(['images', 'alpha', 'zeta'])
  })
})
