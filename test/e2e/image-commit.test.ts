// `image commit` and `image history` against real engines: a container's changes become an image with one more
// layer, on Docker 20.10 (local and over SSH) and 26.1 (containerd store); history lists the layers.
import {afterAll, beforeAll, expect, it} from 'vitest'

import {transship} from '../helpers/cli.js'
import {imageId, layers, removeImages} from '../helpers/images.js'
import {describeE2E, dockerCli, type EngineName, tempHome, type TempHome} from '../helpers/testbed.js'

interface CommitJson {
  container: {id: string; name: string}
  host: string
  id: string
  layers: number
  ref: string
}

interface HistoryJson {
  diffIDs: string[]
  history: Array<{comment: string; createdBy: string; diffID?: string; id?: string; size: number}>
  id: string
}

interface ErrorJson {
  error: {code: string; exit: number; message: string}
}

describeE2E('transship image commit and history', (bed) => {
  let home: TempHome
  const remote = `ssh://${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}${bed.engines.remote.socket}`
  const suffix = `${process.pid}`
  /** containers and images the tests make, removed afterwards */
  const containers: Array<[EngineName, string]> = []
  const images: Array<[EngineName, string]> = []

  beforeAll(async () => {
    home = await tempHome({identity: true})
  })

  afterAll(async () => {
    for (const [engine, name] of containers) await dockerCli(engine, ['rm', '--force', name]).catch(() => '')
    for (const [engine, ref] of images) await removeImages(engine, ref)
    await home.cleanup()
  })

  /** the CLI with `engine` as the local engine (remote: over SSH, with classic as the local one) */
  const cli = (engine: EngineName, args: string[]) =>
    transship(engine === 'remote' ? [...args, '--host', remote] : args, {
      dockerHost: bed.engines[engine === 'remote' ? 'classic' : engine].host,
      home: home.home,
    })

  /** a container of busybox that wrote /hello and exited (or keeps running, with `running`) */
  async function container(engine: EngineName, name: string, options: {running?: boolean} = {}): Promise<string> {
    const full = `${name}-${suffix}`
    await dockerCli(engine, ['rm', '--force', full]).catch(() => '')
    containers.push([engine, full])
    const script = options.running ? 'echo hi > /hello && exec sleep 300' : 'echo hi > /hello'
    await dockerCli(engine, [
      'run',
      ...(options.running ? ['--detach'] : []),
      '--name',
      full,
      '--network',
      'none',
      bed.images.busybox,
      'sh',
      '-c',
      script,
    ])
    if (options.running) {
      // the file is written once the shell started
      for (let attempt = 0; attempt < 50; attempt++) {
        const found = await dockerCli(engine, ['exec', full, 'cat', '/hello']).catch(() => '')
        if (found.trim() === 'hi') break
        await new Promise((resolve) => {
          setTimeout(resolve, 100)
        })
      }
    }

    return full
  }

  for (const engine of ['classic', 'remote'] as const) {
    it(`commits an exited container on ${engine === 'classic' ? 'the local 20.10 engine' : '20.10 over ssh://'}, with a message, an author and a change`, async () => {
      const name = await container(engine, 'transship-commit')
      const ref = `transship-test/committed-${engine}:1`
      images.push([engine, ref])
      await removeImages(engine, ref)
      const result = await cli(engine, [
        'image',
        'commit',
        name,
        ref,
        '--message',
        'wrote /hello',
        '--author',
        'Test <test@example.com>',
        '--change',
        'CMD ["cat", "/hello"]',
        '--change',
        'ENV COMMITTED=yes',
        '--json',
      ])
      expect(result.stderr).not.toMatch(/Error/)
      expect(result.code).toBe(0)
      const output = JSON.parse(result.stdout) as CommitJson
      expect(output.ref).toBe(ref)
      expect(output.container.name).toBe(name)
      expect(output.id).toBe(await imageId(engine, ref))

      const base = await layers(engine, bed.images.busybox)
      const committed = await layers(engine, ref)
      expect(committed).toHaveLength(base.length + 1)
      expect(committed.slice(0, base.length)).toEqual(base)
      expect(output.layers).toBe(committed.length)
      // the new layer holds /hello; CMD and ENV were applied
      expect((await dockerCli(engine, ['run', '--rm', '--network', 'none', ref])).trim()).toBe('hi')
      expect(
        (await dockerCli(engine, ['run', '--rm', '--network', 'none', ref, 'sh', '-c', 'echo $COMMITTED'])).trim(),
      ).toBe('yes')
      const inspected = JSON.parse(await dockerCli(engine, ['image', 'inspect', '--format', '{{json .}}', ref])) as {
        Author: string
        Comment: string
      }
      expect(inspected).toMatchObject({Author: 'Test <test@example.com>', Comment: 'wrote /hello'})

      // the human form prints the ID alone on stdout
      const again = await cli(engine, ['image', 'commit', name, `${ref.slice(0, -2)}:2`])
      images.push([engine, `${ref.slice(0, -2)}:2`])
      expect(again.code).toBe(0)
      expect(again.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/)
      expect(again.stdout.trim()).toBe(await imageId(engine, `${ref.slice(0, -2)}:2`))

      const history = await cli(engine, ['image', 'history', ref, '--json'])
      expect(history.code).toBe(0)
      const report = JSON.parse(history.stdout) as HistoryJson
      expect(report.id).toBe(output.id)
      expect(report.diffIDs).toEqual(committed)
      const [newest] = report.history
      expect(newest).toMatchObject({comment: 'wrote /hello', diffID: committed.at(-1), id: output.id})
      expect(newest!.createdBy).toContain('echo hi > /hello')
      expect(newest!.size).toBeGreaterThan(0)
      // every layer is named by one entry, bottom first from the oldest
      expect(
        report.history
          .filter((entry) => entry.diffID)
          .map((entry) => entry.diffID)
          .reverse(),
      ).toEqual(committed)

      const table = await cli(engine, ['image', 'history', ref])
      expect(table.code).toBe(0)
      expect(table.stdout).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+LAYER\s+COMMENT$/m)
      expect(table.stdout).toContain(output.id.slice(7, 19))
      expect(table.stdout).toContain('wrote /hello')
      expect(table.stdout).toContain(`${committed.length} layers`)
    })
  }

  it('commits a running container on a containerd-store engine (paused meanwhile), and one without a pause', async () => {
    const name = await container('containerd', 'transship-commit-running', {running: true})
    const ref = 'transship-test/committed-running:1'
    const unpaused = 'transship-test/committed-running:2'
    images.push(['containerd', ref], ['containerd', unpaused])
    await removeImages('containerd', ref, unpaused)
    const result = await cli('containerd', ['image', 'commit', name, ref, '--json'])
    expect(result.stderr).not.toMatch(/Error/)
    expect(result.code).toBe(0)
    const output = JSON.parse(result.stdout) as CommitJson
    expect(output.id).toBe(await imageId('containerd', ref))
    expect(await layers('containerd', ref)).toHaveLength((await layers('containerd', bed.images.busybox)).length + 1)
    expect((await dockerCli('containerd', ['run', '--rm', '--network', 'none', ref, 'cat', '/hello'])).trim()).toBe(
      'hi',
    )
    // still running: a pause is undone
    expect((await dockerCli('containerd', ['inspect', '--format', '{{.State.Status}}', name])).trim()).toBe('running')

    const again = await cli('containerd', ['image', 'commit', name, unpaused, '--no-pause', '--json'])
    expect(again.code).toBe(0)
    expect((JSON.parse(again.stdout) as CommitJson).id).toBe(await imageId('containerd', unpaused))

    const history = await cli('containerd', ['image', 'history', ref, '--json'])
    expect(history.code).toBe(0)
    expect((JSON.parse(history.stdout) as HistoryJson).diffIDs).toEqual(await layers('containerd', ref))
  })

  it('says which container is missing (exit 1), and refuses a bad name or change (exit 2)', async () => {
    const missing = await cli('remote', ['image', 'commit', 'transship-no-such-container', 'transship-test/x:1'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain(`no container transship-no-such-container on host "${remote}"`)

    const json = await cli('classic', [
      'image',
      'commit',
      'transship-no-such-container',
      'transship-test/x:1',
      '--json',
    ])
    expect(json.code).toBe(1)
    expect((JSON.parse(json.stdout) as ErrorJson).error).toMatchObject({code: 'CONTAINER_NOT_FOUND', exit: 1})

    const name = await container('classic', 'transship-commit-refused')
    const badRef = await cli('classic', ['image', 'commit', name, 'Not A Ref'])
    expect(badRef.code).toBe(2)
    expect(badRef.stderr).toContain('is not a valid image reference')
    const digestRef = await cli('classic', ['image', 'commit', name, `app@sha256:${'a'.repeat(64)}`, '--json'])
    expect(digestRef.code).toBe(2)
    expect((JSON.parse(digestRef.stdout) as ErrorJson).error).toMatchObject({code: 'REFERENCE_INVALID', exit: 2})

    const badChange = await cli('classic', ['image', 'commit', name, 'transship-test/x:1', '--change', 'RUN rm -rf /'])
    expect(badChange.code).toBe(2)
    expect(badChange.stderr).toContain('a commit applies only the instructions')
    const bareChange = await cli('classic', [
      'image',
      'commit',
      name,
      'transship-test/x:1',
      '--change',
      'CMD',
      '--json',
    ])
    expect(bareChange.code).toBe(2)
    expect((JSON.parse(bareChange.stdout) as ErrorJson).error).toMatchObject({code: 'CHANGE_INVALID', exit: 2})
    expect(await imageId('classic', 'transship-test/x:1')).toBeUndefined()

    const noImage = await cli('classic', ['image', 'history', 'transship-test/none:1'])
    expect(noImage.code).toBe(1)
    expect(noImage.stderr).toContain('image transship-test/none:1 is not on host "local"')
  })
})
