import type {PlanContext, PlannedImage, SectionProvider, Step} from '@transship/kit'

import {isTransshipError} from '@transship/kit'
import {describe, expect, it} from 'vitest'
import {z} from 'zod'

import {makePlan, type RecipeSection} from '../../../src/plan/plan.js'

const noop = () => {}
const context = {
  hosts: {} as PlanContext['hosts'],
  log: {debug: noop, info: noop, warn: noop},
  recipe: {dir: '/recipes', file: '/recipes/r.yaml', hosts: ['local'], registries: [], registrySpecs: {}},
  signal: new AbortController().signal,
}

function section(provider: Omit<SectionProvider, 'plugin' | 'schema'>): RecipeSection {
  return {path: provider.section, provider: {...provider, plugin: 'test', schema: z.unknown()}, value: undefined}
}

function step(id: string, fields: Partial<Step> = {}): Step {
  return {host: 'local', id, async run() {}, section: id.split(':')[0]!, title: id, ...fields}
}

/** A section that builds app:1 on local (ID unknown) and tags it on edge (ID known). */
const builder = section({
  async plan() {
    return [
      step('build:app', {produces: {images: [{host: 'local', ref: 'app:1'}]}}),
      step('build:edge', {host: 'edge', produces: {images: [{host: 'edge', id: 'sha256:abc', ref: 'app:1'}]}}),
    ]
  },
  section: 'build',
})

describe('makePlan', () => {
  it('plans a section after those it names, which see what their steps will produce', async () => {
    const seen: Record<string, PlannedImage | undefined> = {}
    const user = section({
      after: ['build'],
      async plan(_value, planContext) {
        seen.local = planContext.planned.image('local', 'app:1')
        // the same name written otherwise
        seen.full = planContext.planned.image('local', 'docker.io/library/app:1')
        seen.edge = planContext.planned.image('edge', 'app:1')
        seen.elsewhere = planContext.planned.image('other', 'app:1')
        seen.otherTag = planContext.planned.image('local', 'app:2')
        return [step('use:app', {dependsOn: seen.local?.steps})]
      },
      section: 'use',
    })

    // the recipe's order puts the user first: `after` decides
    const plan = await makePlan([user, builder], context)
    expect(plan.steps.map((item) => item.id)).toEqual(['build:app', 'build:edge', 'use:app'])
    expect(seen.local).toEqual({host: 'local', id: undefined, ref: 'app:1', steps: ['build:app']})
    expect(seen.full).toEqual(seen.local)
    expect(seen.edge).toEqual({host: 'edge', id: 'sha256:abc', ref: 'app:1', steps: ['build:edge']})
    expect(seen.elsewhere).toBeUndefined()
    expect(seen.otherTag).toBeUndefined()
    expect(plan.steps.at(-1)?.dependsOn).toEqual(['build:app'])
  })

  it('gives every step that makes the same image, the last one naming its ID', async () => {
    let seen: PlannedImage | undefined
    const retag = section({
      after: ['build'],
      async plan() {
        return [step('retag:app', {produces: {images: [{host: 'local', id: 'sha256:def', ref: 'app:1'}]}})]
      },
      section: 'retag',
    })
    const user = section({
      after: ['retag', 'build'],
      async plan(_value, planContext) {
        seen = planContext.planned.image('local', 'app:1')
        return []
      },
      section: 'use',
    })
    await makePlan([user, retag, builder], context)
    expect(seen).toEqual({host: 'local', id: 'sha256:def', ref: 'app:1', steps: ['build:app', 'retag:app']})
  })

  it('sees nothing of a section it does not name', async () => {
    let seen: PlannedImage | undefined
    const user = section({
      async plan(_value, planContext) {
        seen = planContext.planned.image('local', 'app:1')
        return []
      },
      section: 'use',
    })
    await makePlan([user, builder], context)
    expect(seen).toBeUndefined()
  })

  it('refuses sections that want to be planned after each other', async () => {
    const a = section({after: ['b'], plan: async () => [], section: 'a'})
    const b = section({after: ['a'], plan: async () => [], section: 'b'})
    const error = await makePlan([a, b], context).catch((error_: unknown) => error_)
    expect(isTransshipError(error) && error.code).toBe('PLAN_INVALID')
    expect((error as Error).message).toContain('a → b → a')
  })
})
