import type {ErrorCode, RunContext, Step, StepOutcome} from '@transship/kit'

import {InterruptedError, isTransshipError} from '@transship/kit'

import type {Plan} from './plan.js'

export type StepStatus = 'done' | 'failed' | 'interrupted' | 'skipped'

export interface StepReport {
  error?: {code: ErrorCode; message: string}
  host: string
  id: string
  /** milliseconds */
  duration: number
  outcome?: StepOutcome
  section: string
  status: StepStatus
  title: string
}

export interface ApplyOptions {
  /** how many steps may run at once */
  concurrency: number
  onStepEnd?(report: StepReport): void
  onStepStart?(step: Step): void
}

/**
 * Runs a plan as a DAG: a step starts once the steps it depends on are done, at most `concurrency` at a
 * time. A failed step skips its dependents and lets independent steps finish. An abort stops new steps
 * and lets the running ones see the signal and clean up; their reports say "interrupted".
 */
export async function applyPlan(plan: Plan, context: RunContext, options: ApplyOptions): Promise<StepReport[]> {
  const reports = new Map<string, StepReport>()
  const pending = [...plan.steps]
  const running = new Map<string, Promise<void>>()

  const blockedBy = (step: Step): StepReport | undefined =>
    (step.dependsOn ?? []).map((id) => reports.get(id)).find((report) => report && report.status !== 'done')
  const isReady = (step: Step): boolean => (step.dependsOn ?? []).every((id) => reports.get(id)?.status === 'done')

  const start = (step: Step): void => {
    options.onStepStart?.(step)
    const began = Date.now()
    const run = (async () => {
      let report: StepReport
      try {
        context.signal.throwIfAborted()
        const outcome = (await step.run(context)) ?? undefined
        report = {...base(step), duration: Date.now() - began, outcome, status: 'done'}
      } catch (error) {
        const interrupted = context.signal.aborted
        report = {
          ...base(step),
          duration: Date.now() - began,
          error: describeError(error, interrupted),
          status: interrupted ? 'interrupted' : 'failed',
        }
      }

      reports.set(step.id, report)
      options.onStepEnd?.(report)
      running.delete(step.id)
    })()
    running.set(step.id, run)
  }

  while (pending.length > 0 || running.size > 0) {
    for (let index = 0; index < pending.length;) {
      const step = pending[index]!
      const blocker = blockedBy(step)
      if (blocker || context.signal.aborted) {
        pending.splice(index, 1)
        const report: StepReport = {
          ...base(step),
          duration: 0,
          error: context.signal.aborted
            ? {code: 'INTERRUPTED', message: 'not started: the run was interrupted'}
            : {code: 'SKIPPED', message: `not started: "${blocker!.title}" did not complete`},
          status: 'skipped',
        }
        reports.set(step.id, report)
        options.onStepEnd?.(report)
        continue
      }

      if (running.size < options.concurrency && isReady(step)) {
        pending.splice(index, 1)
        start(step)
        continue
      }

      index++
    }

    if (running.size > 0) await Promise.race(running.values())
  }

  return plan.steps.map((step) => reports.get(step.id)!)
}

function base(step: Step): Pick<StepReport, 'host' | 'id' | 'section' | 'title'> {
  return {host: step.host, id: step.id, section: step.section, title: step.title}
}

function describeError(error: unknown, interrupted: boolean): {code: ErrorCode; message: string} {
  if (interrupted) return {code: new InterruptedError().code, message: 'interrupted'}
  if (isTransshipError(error)) return {code: error.code, message: error.message}
  return {code: 'UNEXPECTED', message: error instanceof Error ? error.message : String(error)}
}
