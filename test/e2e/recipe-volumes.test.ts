// recipes/volumes.yaml: a volume with a writer container on the bed's classic engine is copied to the remote
// engine over SSH, the writer is stopped for the copy and running again after, the copy equals the source
// (checked here with sha256sum on both mount points), and a second apply syncs only what the writer changed.
import {writeFile} from 'node:fs/promises'
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {edgeSshConfig, repoRoot, transship} from '../helpers/cli.js'
import {describeE2E, dockerCli, run, tempHome, type TempHome} from '../helpers/testbed.js'

const VOLUME = 'volumes-demo-data'
const WRITER = 'volumes-demo-writer'

async function checksums(mountpoint: string): Promise<string> {
  const result = await run('sh', [
    '-c',
    `cd '${mountpoint}' && find . -type f ! -name .transship-incomplete -print0 | sort -z | xargs -0 sha256sum`,
  ])
  return result.stdout
}

async function cleanup(): Promise<void> {
  await dockerCli('classic', ['rm', '-f', WRITER]).catch(() => '')
  await dockerCli('classic', ['volume', 'rm', '-f', VOLUME]).catch(() => '')
  await dockerCli('remote', ['volume', 'rm', '-f', VOLUME]).catch(() => '')
}

describeE2E('recipes/volumes.yaml', (bed) => {
  let home: TempHome
  const recipe = path.join(repoRoot, 'recipes', 'volumes.yaml')

  beforeAll(async () => {
    home = await tempHome({identity: true, sshConfig: edgeSshConfig(bed)})
    await cleanup()
    await dockerCli('classic', ['volume', 'create', '--label', 'com.docker.compose.project=demo', VOLUME])
    const mountpoint = (await dockerCli('classic', ['volume', 'inspect', '-f', '{{.Mountpoint}}', VOLUME])).trim()
    await writeFile(path.join(mountpoint, 'seed.txt'), 'seed\n')
    await dockerCli('classic', [
      'run',
      '-d',
      // tini as PID 1: the shell then stops on SIGTERM instead of waiting out the grace period
      '--init',
      '--name',
      WRITER,
      '--network',
      'none',
      '-v',
      `${VOLUME}:/data`,
      bed.images.busybox,
      'sh',
      '-c',
      'while true; do date >> /data/log; sleep 0.2; done',
    ])
  })

  afterAll(async () => {
    await cleanup()
    await home.cleanup()
  })

  it('copies the volume with its writer stopped meanwhile, then syncs only what changed on the second apply', async () => {
    const options = {dockerHost: bed.engines.classic.host, home: home.home}
    const apply = await transship(['apply', recipe], options)
    expect(apply.code, apply.stderr).toBe(0)
    expect(apply.stdout).toContain('verified equal')
    expect(apply.stdout).toContain(`${WRITER} restarted`)
    const running = await dockerCli('classic', ['inspect', '-f', '{{.State.Running}}', WRITER])
    expect(running.trim()).toBe('true')

    const source = (await dockerCli('classic', ['volume', 'inspect', '-f', '{{.Mountpoint}}', VOLUME])).trim()
    const copy = (await dockerCli('remote', ['volume', 'inspect', '-f', '{{.Mountpoint}}', VOLUME])).trim()
    const labels = await dockerCli('remote', ['volume', 'inspect', '-f', '{{json .Labels}}', VOLUME])
    expect(JSON.parse(labels)).toEqual({'com.docker.compose.project': 'demo'})
    // the writer has appended since the copy: compare the file it does not touch
    expect((await checksums(copy)).split('\n').find((line) => line.endsWith('./seed.txt'))).toBe(
      (await checksums(source)).split('\n').find((line) => line.endsWith('./seed.txt')),
    )

    // the writer went on appending: a second apply (mode sync) sends only that, and verifies again
    const again = await transship(['apply', recipe, '--debug'], options)
    expect(again.code, again.stderr).toBe(0)
    // the listings of both hosts say what changed: the log alone is sent, not the volume again
    const sync = /sync: (\d+) files to send \((\d+) bytes at most\), (\d+) entries to remove, of (\d+)/.exec(
      again.stderr,
    )
    expect(sync, again.stderr).not.toBeNull()
    expect(Number(sync![1])).toBe(1) // the log
    expect(Number(sync![3])).toBe(0)
    expect(Number(sync![4])).toBeGreaterThanOrEqual(3)
    expect(again.stdout).toContain('verified equal')
  })
})
