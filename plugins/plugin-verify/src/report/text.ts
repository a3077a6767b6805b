/** The readable report: one line per test, the expected-vs-actual lines under a failure, totals. */
import type {VerifyReport} from '../config/types.js'

const MARKS = {error: 'ERROR', fail: 'FAIL ', pass: 'PASS ', skip: 'SKIP '} as const

export function formatReport(report: VerifyReport): string[] {
  const lines = [`${report.image} on ${report.host} (${report.imageId})`]
  for (const result of report.results) {
    lines.push(`  ${MARKS[result.status]} ${result.suite}: ${result.name} (${result.seconds.toFixed(1)} s)`)
    for (const warning of result.warnings ?? []) lines.push(`         warning: ${warning}`)
    if (result.status === 'pass') continue
    if (result.message) lines.push(`         ${result.message}`)
    for (const line of result.diff ?? []) lines.push(`         ${line}`)
  }

  const count = (status: string) => report.results.filter((result) => result.status === status).length
  if (report.results.length === 0) lines.push('  no checks ran: the test file has no tests (a failure, as in CST)')
  lines.push(
    `  ${count('pass')} passed, ${count('fail')} failed, ${count('error')} errors${count('skip') ? `, ${count('skip')} skipped` : ''} in ${report.seconds.toFixed(1)} s`,
  )
  return lines
}

/** Whether every test passed (skipped ones aside); a run of no test at all fails, as in CST. */
export function passed(report: VerifyReport): boolean {
  return (
    report.results.length > 0 && report.results.every((result) => result.status === 'pass' || result.status === 'skip')
  )
}
