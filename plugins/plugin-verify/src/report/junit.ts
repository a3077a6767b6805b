/**
 * JUnit XML, the format CI systems read: one <testsuite> per host and image, one <testcase> per test, with
 * <failure> or <error> carrying the message and the expected-vs-actual lines.
 */
import type {VerifyReport} from '../config/types.js'

function escape(text: string): string {
  return (
    text
      // characters XML 1.0 cannot hold at all
      // eslint-disable-next-line no-control-regex
      .replaceAll(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '')
      .replaceAll('&', '&amp;')
      .replaceAll('<', '&lt;')
      .replaceAll('>', '&gt;')
      .replaceAll('"', '&quot;')
      .replaceAll("'", '&apos;')
  )
}

export function junitXml(reports: VerifyReport[]): string {
  const count = (status: string) =>
    reports.reduce((sum, report) => sum + report.results.filter((result) => result.status === status).length, 0)
  const tests = reports.reduce((sum, report) => sum + report.results.length, 0)
  const time = reports.reduce((sum, report) => sum + report.seconds, 0)
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="transship verify" tests="${tests}" failures="${count('fail')}" errors="${count('error')}" skipped="${count('skip')}" time="${time.toFixed(3)}">`,
  ]
  for (const report of reports) {
    const suiteCount = (status: string) => report.results.filter((result) => result.status === status).length
    lines.push(
      `  <testsuite name="${escape(`${report.host}: ${report.image}`)}" tests="${report.results.length}" failures="${suiteCount('fail')}" errors="${suiteCount('error')}" skipped="${suiteCount('skip')}" time="${report.seconds.toFixed(3)}">`,
      `    <properties>`,
      `      <property name="host" value="${escape(report.host)}"/>`,
      `      <property name="image" value="${escape(report.image)}"/>`,
      `      <property name="imageId" value="${escape(report.imageId)}"/>`,
      ...report.repoDigests.map((digest) => `      <property name="repoDigest" value="${escape(digest)}"/>`),
      `    </properties>`,
    )
    for (const result of report.results) {
      const open = `    <testcase classname="${escape(result.suite)}" name="${escape(result.name)}" time="${result.seconds.toFixed(3)}"`
      const warnings = result.warnings?.length
        ? [
            `      <system-err>${escape(result.warnings.map((warning) => `warning: ${warning}`).join('\n'))}</system-err>`,
          ]
        : []
      if (result.status === 'pass') {
        lines.push(...(warnings.length > 0 ? [`${open}>`, ...warnings, '    </testcase>'] : [`${open}/>`]))
        continue
      }

      const body = escape([result.message ?? '', ...(result.diff ?? [])].filter(Boolean).join('\n'))
      const element =
        result.status === 'skip'
          ? `      <skipped message="${escape(result.message ?? '')}"/>`
          : `      <${result.status === 'fail' ? 'failure' : 'error'} message="${escape(result.message ?? result.status)}">${body}</${result.status === 'fail' ? 'failure' : 'error'}>`
      lines.push(`${open}>`, element, ...warnings, '    </testcase>')
    }

    lines.push('  </testsuite>')
  }

  lines.push('</testsuites>', '')
  return lines.join('\n')
}
