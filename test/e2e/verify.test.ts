// `transship verify` as users run it: a container-structure-test file against the bed's busybox image on the
// local engine and on the remote one over SSH, JUnit XML that a parser reads, a failing check (exit 5, the
// expected and actual values), a broken test file (exit 2 with its line), and recipes/verify.yaml applied:
// copy, then the checks on both hosts.
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {edgeSshConfig, repoRoot, transship} from '../helpers/cli.js'
import {describeE2E, run, tempHome, type TempHome} from '../helpers/testbed.js'

const TESTS = path.join(repoRoot, 'recipes', 'tests', 'busybox.yaml')

interface ReportJson {
  host: string
  imageId: string
  results: Array<{name: string; status: string; suite: string}>
}

describeE2E('transship verify', (bed) => {
  let home: TempHome
  let work: string
  let options: {dockerHost: string; home: string}
  const remote = () => `ssh://${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}${bed.engines.remote.socket}`

  beforeAll(async () => {
    home = await tempHome({identity: true, sshConfig: edgeSshConfig(bed)})
    work = await mkdtemp(path.join(os.tmpdir(), 'transship-verify-'))
    options = {dockerHost: bed.engines.classic.host, home: home.home}
  })

  afterAll(async () => {
    await rm(work, {force: true, recursive: true})
    await home.cleanup()
  })

  it('passes the example checks on the local engine and on a host over SSH, and writes JUnit XML', async () => {
    const junit = path.join(work, 'report.xml')
    const result = await transship(
      [
        'verify',
        '--config',
        TESTS,
        bed.images.busybox,
        '--host',
        'local',
        '--host',
        remote(),
        '--junit',
        junit,
        '--json',
      ],
      options,
    )
    expect(result.code, result.stderr).toBe(0)
    const reports = JSON.parse(result.stdout) as ReportJson[]
    expect(reports.map((report) => report.host)).toEqual(['local', remote()])
    for (const report of reports) {
      expect(report.imageId).toMatch(/^sha256:/)
      expect(report.results.length).toBeGreaterThanOrEqual(6)
      expect(report.results.filter((item) => item.status !== 'pass')).toEqual([])
    }

    // a JUnit parser reads it: Python's ElementTree, counting what the report says
    const parsed = await run('python3', [
      '-c',
      'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(r.tag, r.get("tests"), r.get("failures"), len(r.findall("testsuite")), len(r.findall("testsuite/testcase")))',
      junit,
    ])
    expect(parsed.code, parsed.stderr).toBe(0)
    const total = reports.reduce((sum, report) => sum + report.results.length, 0)
    expect(parsed.stdout.trim()).toBe(`testsuites ${total} 0 2 ${total}`)
  })

  it('fails a check with the expected and actual values, exit 5, and names the failure in JUnit', async () => {
    const failing = path.join(work, 'failing.yaml')
    await writeFile(
      failing,
      [
        'schemaVersion: 2.0.0',
        'commandTests:',
        '  - name: says goodbye',
        '    command: echo',
        '    args: [hello]',
        "    expectedOutput: ['^goodbye$']",
        'fileExistenceTests:',
        '  - name: busybox is setuid',
        '    path: /bin/busybox',
        '    permissions: -rwsr-xr-x',
        '',
      ].join('\n'),
    )
    const junit = path.join(work, 'failing.xml')
    const result = await transship(['verify', '--config', failing, bed.images.busybox, '--junit', junit], options)
    expect(result.code).toBe(5)
    expect(result.stdout).toMatch(/FAIL.*says goodbye/)
    expect(result.stdout).toContain('goodbye')
    expect(result.stdout).toMatch(/FAIL.*busybox is setuid/)
    expect(result.stdout).toContain('-rwxr-xr-x')
    const xml = await readFile(junit, 'utf8')
    expect(xml).toContain('failures="2"')
    expect(xml).toContain('<failure')
  })

  it('refuses a test file with an unknown key or a broken regex, naming the line', async () => {
    const broken = path.join(work, 'broken.yaml')
    await writeFile(
      broken,
      [
        'schemaVersion: 2.0.0',
        'commandTests:',
        '  - name: a',
        '    command: echo',
        "    expectedOuput: ['(unclosed']",
        '',
      ].join('\n'),
    )
    const result = await transship(['verify', '--config', broken, bed.images.busybox], options)
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/broken\.yaml:5:\d+/)
    expect(result.stderr).toContain('expectedOutput')
  })

  it('says which image is missing on a host', async () => {
    const result = await transship(['verify', '--config', TESTS, 'transship-test/nosuch:1'], options)
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('transship-test/nosuch:1')
  })

  it('applies recipes/verify.yaml: the copy, then the checks on both hosts; verify runs them alone', async () => {
    const recipe = path.join(repoRoot, 'recipes', 'verify.yaml')
    const apply = await transship(['apply', recipe, '--json'], options)
    expect(apply.code, apply.stderr).toBe(0)
    const applied = JSON.parse(apply.stdout) as {steps: Array<{host: string; id: string; status: string}>}
    const checks = applied.steps.filter((step) => step.id.startsWith('verify:'))
    expect(checks.map((step) => `${step.host}:${step.status}`).sort()).toEqual(['edge:done', 'edge:done', 'local:done'])

    // the same checks alone, from the recipe
    const alone = await transship(['verify', recipe, '--json'], options)
    expect(alone.code, alone.stderr).toBe(0)
    expect((JSON.parse(alone.stdout) as ReportJson[]).map((report) => report.host)).toEqual(['local', 'edge', 'edge'])
  })
})
