import type {Hosts, ImageProduct, Step} from '@transship/kit'

import {formatBytes, formatDuration, formatTable} from '@transship/kit/ui'

import type {StepReport} from '../plan/apply.js'

export interface PlannedStep {
  bytes?: number
  dependsOn: string[]
  detail?: Record<string, unknown>
  host: string
  id: string
  /** the images the step leaves, with their IDs when known (absent: to be built) */
  produces: ImageProduct[]
  section: string
  title: string
}

export function plannedSteps(steps: Step[]): PlannedStep[] {
  return steps.map((step) => ({
    bytes: step.bytes,
    dependsOn: step.dependsOn ?? [],
    detail: step.detail,
    host: step.host,
    id: step.id,
    produces: step.produces?.images ?? [],
    section: step.section,
    title: step.title,
  }))
}

/**
 * The plan, grouped per host: what would change where. When steps wait for others, each says its number in
 * the order they can run and the numbers of those it waits for.
 */
export function renderPlan(recipeFile: string, steps: PlannedStep[], hosts: Hosts): string {
  if (steps.length === 0) return `Nothing to do: every host is up to date with ${recipeFile}.`
  const number = new Map(steps.map((step, index) => [step.id, index + 1]))
  const ordered = steps.some((step) => step.dependsOn.length > 0)
  const byHost = groupByHost(steps)
  const lines = [`Plan for ${recipeFile}: ${count(steps.length, 'step')} on ${count(byHost.size, 'host')}.`]
  for (const [host, hostSteps] of byHost) {
    const bytes = hostSteps.reduce((sum, step) => sum + (step.bytes ?? 0), 0)
    lines.push('', `${host} (${hosts.describe(host).target})${bytes > 0 ? `: ${formatBytes(bytes)} to move` : ''}`)
    for (const step of hostSteps) {
      const after = step.dependsOn
        .map((id) => number.get(id))
        .filter((item) => item !== undefined)
        .sort((a, b) => a - b)
      const order = ordered
        ? ` (step ${number.get(step.id)}${after.length > 0 ? `, after ${after.join(', ')}` : ''})`
        : ''
      lines.push(`  + [${step.section}] ${step.title}${order}`)
    }
  }

  return lines.join('\n')
}

export function renderReports(reports: StepReport[]): string {
  const rows = reports.map((report) => [
    report.host,
    report.status,
    report.title,
    formatDuration(report.duration),
    report.error ? report.error.message : (report.outcome?.summary ?? ''),
  ])
  const failed = reports.filter((report) => report.status !== 'done').length
  const summary =
    failed === 0
      ? `Applied ${count(reports.length, 'step')}.`
      : `${count(failed, 'step')} of ${reports.length} did not complete.`
  return `${formatTable(['HOST', 'STATUS', 'STEP', 'TIME', 'RESULT'], rows)}\n\n${summary}`
}

function groupByHost(steps: PlannedStep[]): Map<string, PlannedStep[]> {
  const byHost = new Map<string, PlannedStep[]>()
  for (const step of steps) byHost.set(step.host, [...(byHost.get(step.host) ?? []), step])
  return byHost
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}
