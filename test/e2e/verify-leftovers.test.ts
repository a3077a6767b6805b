// A verify run killed outright (SIGKILL, mid-command) cannot remove its containers and committed images: the
// next run on that engine does, by their labels, and only those of runs that are provably over, never a live
// run's, another machine's recent one, or anything else that merely looks alike.
import {spawn} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {ownerLabels} from '../../plugins/plugin-verify/src/run/leftovers.js'
import {repoRoot, transship} from '../helpers/cli.js'
import {describeE2E, dockerCli} from '../helpers/testbed.js'

interface Inspected {
  Config?: {Labels?: null | Record<string, string>}
  HostConfig?: {NetworkMode?: string}
}

describeE2E('verify leftovers of a killed run', (bed) => {
  const engineName = 'classic'
  let work: string
  const lookalikes: string[] = []

  /** The IDs of the containers (all) or images carrying label=value. */
  const labelled = async (kind: 'container' | 'image', label: string): Promise<string[]> => {
    const args = kind === 'container' ? ['ps', '-a', '-q', '--no-trunc'] : ['image', 'ls', '-a', '-q', '--no-trunc']
    const out = await dockerCli(engineName, [...args, '--filter', `label=${label}`])
    return out.split('\n').filter(Boolean)
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'transship-verify-leftovers-'))
  })

  afterAll(async () => {
    for (const id of lookalikes) await dockerCli(engineName, ['rm', '--force', id]).catch(() => '')
    await rm(work, {force: true, recursive: true})
  })

  it('removes what a SIGKILLed run left, and nothing else', async () => {
    const config = path.join(work, 'sleeps.yaml')
    await writeFile(
      config,
      [
        "schemaVersion: '2.0.0'",
        'commandTests:',
        "  - {name: sleeps, setup: [[touch, /prepared]], command: sleep, args: ['600'], timeout: 900}",
      ].join('\n'),
    )
    const child = spawn(
      process.execPath,
      [path.join(repoRoot, 'bin', 'run.js'), 'verify', '--config', config, bed.images.busybox],
      {
        env: {...process.env, DOCKER_HOST: bed.engines[engineName].host, HOME: work, NO_COLOR: '1'},
        stdio: 'ignore',
      },
    )
    const exited = new Promise<NodeJS.Signals | null>((resolve) => {
      child.on('exit', (_code, signal) => resolve(signal))
    })
    const pidLabel = `io.transship.verify.pid=${child.pid}`
    // wait until the command's container runs: the setup's image is committed, and a container runs again (the
    // setup's own container, running for a moment before that, is not the one to wait for)
    let containers: string[] = []
    let images: string[] = []
    for (let tries = 0; tries < 120 && (containers.length === 0 || images.length === 0); tries++) {
      await sleep(500)
      images = await labelled('image', pidLabel)
      const running = await dockerCli(engineName, ['ps', '-q', '--no-trunc', '--filter', `label=${pidLabel}`])
      containers = images.length === 0 ? [] : running.split('\n').filter(Boolean)
    }

    expect(containers).toHaveLength(1)
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')
    expect((await labelled('image', pidLabel)).length).toBeGreaterThan(0)

    // what the run left shows how it ran: the engine's default network (not --network none), and who made it
    const [inspected] = JSON.parse(await dockerCli(engineName, ['inspect', containers[0]!])) as Inspected[]
    expect(inspected?.HostConfig?.NetworkMode).toMatch(/^(default|bridge)$/)
    expect(inspected?.Config?.Labels).toMatchObject({
      'io.transship.verify': 'runner',
      'io.transship.verify.host': os.hostname(),
      'io.transship.verify.pid': String(child.pid),
    })

    // look-alikes that must survive: another label, a similar name, a live run's, another machine's recent run's
    const create = async (...args: string[]) =>
      (await dockerCli(engineName, ['create', ...args, bed.images.busybox, 'true'])).trim()
    lookalikes.push(
      await create('--name', `io.transship.verify-${process.pid}`, '--label', 'io.transship.verify.other=1'),
      // labelled as by a run of this (live) test process
      await create(...Object.entries(ownerLabels()).flatMap(([key, value]) => ['--label', `${key}=${value}`])),
      await create(
        '--label',
        'io.transship.verify=runner',
        '--label',
        'io.transship.verify.host=another-machine',
        '--label',
        'io.transship.verify.pid=99999999',
      ),
    )

    const next = path.join(work, 'next.yaml')
    await writeFile(next, "schemaVersion: '2.0.0'\nmetadataTest:\n  cmd: ['/bin/sh']\n")
    const result = await transship(['verify', '--config', next, bed.images.busybox], {
      dockerHost: bed.engines[engineName].host,
      home: work,
    })
    expect(result.code, result.stderr).toBe(0)
    expect(await labelled('container', pidLabel)).toEqual([])
    expect(await labelled('image', pidLabel)).toEqual([])
    for (const id of lookalikes) {
      expect((await dockerCli(engineName, ['inspect', '--format', '{{.Id}}', id])).trim()).toBe(id)
    }
  })
})
