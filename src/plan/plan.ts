import type {Hosts, Logger, PlanContext, SectionProvider, Step} from '@transship/kit'

import {StepFailedError, TransshipError} from '@transship/kit'

export interface Plan {
  /** the steps, in an order that respects their dependencies */
  steps: Step[]
}

export interface RecipeSection {
  path: string
  provider: SectionProvider
  value: unknown
}

/**
 * Asks each section's plugin what it would do. Pure: plugins only read the world here. The result is
 * checked: step ids are unique, dependencies exist, and there is no cycle.
 */
export async function makePlan(
  sections: RecipeSection[],
  context: Omit<PlanContext, 'hosts' | 'log'> & {hosts: Hosts; log: Logger},
): Promise<Plan> {
  const steps: Step[] = []
  for (const section of sections) {
    const planned = await section.provider.plan(section.value, context)
    for (const step of planned) steps.push({...step, section: step.section ?? section.provider.section, run: step.run})
  }

  // a step may run after every step of other sections (checks run on what the copies brought)
  const withSections = steps.map((step) =>
    step.afterSections?.length
      ? {
          ...step,
          dependsOn: [
            ...(step.dependsOn ?? []),
            ...steps.filter((other) => step.afterSections!.includes(other.section)).map((other) => other.id),
          ],
          run: step.run,
        }
      : step,
  )
  return {steps: orderSteps(withSections)}
}

/** Topological order (Kahn), stable with respect to the order the plugins gave. */
export function orderSteps(steps: Step[]): Step[] {
  const byId = new Map<string, Step>()
  for (const step of steps) {
    if (byId.has(step.id)) throw new TransshipError('PLAN_INVALID', 1, `two steps have the id "${step.id}"`)
    byId.set(step.id, step)
  }

  const remaining = new Map<string, number>()
  const dependents = new Map<string, string[]>()
  for (const step of steps) {
    const needs = step.dependsOn ?? []
    for (const need of needs) {
      if (!byId.has(need)) {
        throw new TransshipError('PLAN_INVALID', 1, `step "${step.id}" depends on "${need}", which is not in the plan`)
      }

      dependents.set(need, [...(dependents.get(need) ?? []), step.id])
    }

    remaining.set(step.id, needs.length)
  }

  const ordered: Step[] = []
  const ready = steps.filter((step) => remaining.get(step.id) === 0)
  while (ready.length > 0) {
    const step = ready.shift()!
    ordered.push(step)
    for (const dependent of dependents.get(step.id) ?? []) {
      const left = remaining.get(dependent)! - 1
      remaining.set(dependent, left)
      if (left === 0) ready.push(byId.get(dependent)!)
    }
  }

  if (ordered.length !== steps.length) {
    const stuck = steps.filter((step) => !ordered.includes(step)).map((step) => step.id)
    throw new StepFailedError(`the plan has a dependency cycle among: ${stuck.join(', ')}`)
  }

  return ordered
}
