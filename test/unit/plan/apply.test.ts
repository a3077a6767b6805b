import type {RunContext, Step} from '@transship/kit'

import {describe, expect, it} from 'vitest'

import {applyPlan} from '../../../src/plan/apply.js'
import {orderSteps} from '../../../src/plan/plan.js'

const noop = () => {}
function context(signal = new AbortController().signal): RunContext {
  return {
    hosts: {} as RunContext['hosts'],
    log: {debug: noop, info: noop, warn: noop},
    progress: {task: () => ({done: noop, tick: noop, total: noop})},
    signal,
  }
}

function step(id: string, run: Step['run'], dependsOn?: string[]): Step {
  return {dependsOn, host: 'local', id, run, section: 'test', title: id}
}

describe('plan order and apply', () => {
  it('orders steps after what they depend on, and refuses cycles and unknown dependencies', () => {
    const steps = [step('b', async () => {}, ['a']), step('a', async () => {}), step('c', async () => {}, ['b'])]
    expect(orderSteps(steps).map((s) => s.id)).toEqual(['a', 'b', 'c'])
    expect(() => orderSteps([step('a', async () => {}, ['b']), step('b', async () => {}, ['a'])])).toThrow(/cycle/)
    expect(() => orderSteps([step('a', async () => {}, ['zz'])])).toThrow(/not in the plan/)
    expect(() => orderSteps([step('a', async () => {}), step('a', async () => {})])).toThrow(/two steps/)
  })

  it('runs at most `concurrency` steps at once', async () => {
    let running = 0
    let peak = 0
    const work = async () => {
      running++
      peak = Math.max(peak, running)
      await new Promise((resolve) => {
        setTimeout(resolve, 20)
      })
      running--
    }

    const steps = Array.from({length: 10}, (_, index) => step(`s${index}`, work))
    const reports = await applyPlan({steps}, context(), {concurrency: 3})
    expect(peak).toBe(3)
    expect(reports.every((report) => report.status === 'done')).toBe(true)
  })

  it('skips the dependents of a failed step and still runs independent ones', async () => {
    const ran: string[] = []
    const steps = orderSteps([
      step('fail', async () => {
        throw new Error('boom')
      }),
      step(
        'after-fail',
        async () => {
          ran.push('after-fail')
        },
        ['fail'],
      ),
      step('independent', async () => {
        ran.push('independent')
      }),
    ])
    const reports = await applyPlan({steps}, context(), {concurrency: 1})
    expect(ran).toEqual(['independent'])
    expect(Object.fromEntries(reports.map((report) => [report.id, report.status]))).toEqual({
      'after-fail': 'skipped',
      fail: 'failed',
      independent: 'done',
    })
    expect(reports.find((report) => report.id === 'fail')?.error).toEqual({code: 'UNEXPECTED', message: 'boom'})
  })

  it('on abort, starts nothing new and lets the running steps see the signal', async () => {
    const controller = new AbortController()
    let sawAbort = false
    const steps = [
      step('long', async ({signal}) => {
        await new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            sawAbort = true
            resolve()
          })
        })
        signal.throwIfAborted()
      }),
      step('next', async () => {}, ['long']),
    ]
    setTimeout(() => controller.abort(new Error('interrupted')), 20)
    const reports = await applyPlan({steps}, context(controller.signal), {concurrency: 2})
    expect(sawAbort).toBe(true)
    expect(reports.map((report) => report.status)).toEqual(['interrupted', 'skipped'])
  })
})
