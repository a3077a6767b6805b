import type {Hosts, Logger, PlanContext, PlannedImage, PlannedProducts, SectionProvider, Step} from '@transship/kit'

import {ExitCode, StepFailedError, TransshipError} from '@transship/kit'
import {formatReference, parseReference} from '@transship/kit/reference'

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
 * Asks each section's plugin what it would do, a section after those it names in `after`, so that it sees
 * what their steps will produce (context.planned). Pure: plugins only read the world here. The result is
 * checked: step ids are unique, dependencies exist, and there is no cycle.
 */
export async function makePlan(
  sections: RecipeSection[],
  context: Omit<PlanContext, 'hosts' | 'log' | 'planned'> & {hosts: Hosts; log: Logger},
): Promise<Plan> {
  const steps: Step[] = []
  const products = new PlannedImages()
  for (const section of orderSections(sections)) {
    const planned = await section.provider.plan(section.value, {...context, planned: products})
    for (const step of planned) {
      const complete = {...step, run: step.run, section: step.section ?? section.provider.section}
      steps.push(complete)
      products.add(complete)
    }
  }

  // a step may run after every step of other sections (checks run on what the copies brought)
  const withSections = steps.map((step) =>
    step.afterSections?.length
      ? {
          ...step,
          dependsOn: [
            ...new Set([
              ...(step.dependsOn ?? []),
              ...steps.filter((other) => step.afterSections!.includes(other.section)).map((other) => other.id),
            ]),
          ],
          run: step.run,
        }
      : step,
  )
  return {steps: orderSteps(withSections)}
}

/** The images the steps planned so far will leave, by host and normalised name. */
export class PlannedImages implements PlannedProducts {
  private readonly images = new Map<string, PlannedImage>()

  add(step: Step): void {
    for (const product of step.produces?.images ?? []) {
      const ref = normalise(product.ref)
      const key = `${product.host}\0${ref}`
      const known = this.images.get(key)
      this.images.set(key, {
        host: product.host,
        id: product.id,
        ref,
        steps: [...(known?.steps ?? []), step.id],
      })
    }
  }

  image(host: string, ref: string): PlannedImage | undefined {
    const found = this.images.get(`${host}\0${normalise(ref)}`)
    return found && {...found, steps: [...found.steps]}
  }
}

function normalise(ref: string): string {
  return formatReference(parseReference(ref))
}

/** The sections in the order to plan them: after those they name in `after`, else in the order given. */
export function orderSections(sections: RecipeSection[]): RecipeSection[] {
  const byName = new Map(sections.map((section) => [section.provider.section, section]))
  const ordered: RecipeSection[] = []
  const visiting = new Set<string>()
  const visit = (section: RecipeSection, chain: string[]): void => {
    const name = section.provider.section
    if (ordered.includes(section)) return
    if (visiting.has(name)) {
      throw new TransshipError(
        'PLAN_INVALID',
        ExitCode.Failed,
        `the sections ${[...chain, name].join(' → ')} each want to be planned after the other`,
      )
    }

    visiting.add(name)
    for (const before of section.provider.after ?? []) {
      const other = byName.get(before)
      if (other) visit(other, [...chain, name])
    }

    visiting.delete(name)
    ordered.push(section)
  }

  for (const section of sections) visit(section, [])
  return ordered
}

/** Topological order (Kahn), stable with respect to the order the plugins gave. */
export function orderSteps(steps: Step[]): Step[] {
  const byId = new Map<string, Step>()
  for (const step of steps) {
    if (byId.has(step.id))
      throw new TransshipError('PLAN_INVALID', ExitCode.Failed, `two steps have the id "${step.id}"`)
    byId.set(step.id, step)
  }

  const remaining = new Map<string, number>()
  const dependents = new Map<string, string[]>()
  for (const step of steps) {
    const needs = step.dependsOn ?? []
    for (const need of needs) {
      if (!byId.has(need)) {
        throw new TransshipError(
          'PLAN_INVALID',
          ExitCode.Failed,
          `step "${step.id}" depends on "${need}", which is not in the plan`,
        )
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
