// The image commands against real engines: a local one and an ad-hoc ssh:// host.
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {transship} from '../helpers/cli.js'
import {exists} from '../helpers/files.js'
import {recipeYaml} from '../helpers/recipe.js'
import {describeE2E, dockerCli, tempHome, type TempHome} from '../helpers/testbed.js'

describeE2E('transship image', (bed) => {
  let home: TempHome
  beforeAll(async () => {
    home = await tempHome({identity: true})
  })
  afterAll(async () => home.cleanup())

  const remote = () => `ssh://${bed.ssh.user}@${bed.ssh.host}:${bed.ssh.port}${bed.engines.remote.socket}`

  it('lists the images of a host reached with an ad-hoc ssh:// address', async () => {
    const result = await transship(['image', 'ls', '--host', remote(), '--json'], {home: home.home})
    expect(result.code).toBe(0)
    const images = JSON.parse(result.stdout) as Array<{id: string; tags: string[]}>
    const app = images.find((image) => image.tags.includes(bed.images.app))
    const expected = (await dockerCli('remote', ['image', 'inspect', '--format', '{{.Id}}', bed.images.app])).trim()
    expect(app?.id).toBe(expected)
  })

  it('tags an image on a remote host, by ID', async () => {
    await dockerCli('remote', ['image', 'rm', '--no-prune', 'adhoc/app:tagged']).catch(() => '')
    const result = await transship(['image', 'tag', bed.images.app, 'adhoc/app:tagged', '--host', remote()], {
      home: home.home,
    })
    expect(result.code).toBe(0)
    const source = (await dockerCli('remote', ['image', 'inspect', '--format', '{{.Id}}', bed.images.app])).trim()
    const tagged = (await dockerCli('remote', ['image', 'inspect', '--format', '{{.Id}}', 'adhoc/app:tagged'])).trim()
    expect(tagged).toBe(source)
  })

  it('says which image is missing, and exits 1', async () => {
    const result = await transship(['image', 'tag', 'transship-test/none:1', 'x/y:1'], {
      dockerHost: bed.engines.classic.host,
      home: home.home,
    })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('image transship-test/none:1 is not on host "local"')
  })

  it('refuses a bad reference as a usage error', async () => {
    const result = await transship(['image', 'tag', bed.images.app, 'Not A Ref'], {
      dockerHost: bed.engines.classic.host,
      home: home.home,
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('is not a valid image reference')
  })

  it('refuses bad references in every command before any host is asked, naming the rule', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'transship-refs-'))
    // an unreachable engine: a refused reference must not need one
    const options = {dockerHost: 'unix:///nonexistent/docker.sock', home: home.home}
    const long = `app:${'x'.repeat(200)}`
    const cases: Array<{args: string[]; rule: string; shown: string}> = [
      {args: ['image', 'save', 'App:1', '-o', path.join(dir, 'a.tar')], rule: 'lower-case', shown: '"App:1"'},
      {
        args: ['image', 'save', bed.images.app, long, '-o', path.join(dir, 'b.tar')],
        rule: 'the tag is 200',
        shown: '"app:xxx',
      },
      {args: ['image', 'history', 'app:.x'], rule: 'the tag ".x" is not valid', shown: '"app:.x"'},
      {
        args: ['image', 'history', `app@sha256:${'0'.repeat(63)}`],
        rule: 'a sha256 digest has 64',
        shown: '"app@sha256:',
      },
      {args: ['image', 'tag', 'App', 'app:2'], rule: 'lower-case', shown: '"App"'},
      {
        args: ['image', 'push', 'app:1', '--to', 'localhost:5000', '--as', 'Team/app:1'],
        rule: 'lower-case',
        shown: '"localhost:5000/Team/app:1"',
      },
      {
        args: ['image', 'manifest', 'create', 'localhost:5000/app:1', 'localhost:5000/app:-1'],
        rule: 'the tag "-1"',
        shown: '"localhost:5000/app:-1"',
      },
      {
        args: ['verify', '--config', path.join(dir, 'none.yaml'), 'app::1'],
        rule: 'is not a valid path component',
        shown: '"app::1"',
      },
      {
        args: ['rootfs', 'build', '--dir', dir, '--tag', 'base/debian:bookworm!'],
        rule: 'is not valid',
        shown: '"base/debian:bookworm!"',
      },
    ]
    try {
      await writeFile(path.join(dir, 'none.yaml'), 'schemaVersion: 2.0.0\n')
      for (const {args, rule, shown} of cases) {
        const result = await transship(args, options)
        expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2)
        expect(result.stderr).toContain(`${shown}`)
        expect(result.stderr).toContain('is not a valid image reference')
        expect(result.stderr).toContain(rule)
        expect(result.stderr).not.toContain('/nonexistent/docker.sock')
      }

      expect(await exists(path.join(dir, 'a.tar'))).toBe(false)
    } finally {
      await rm(dir, {force: true, recursive: true})
    }
  })

  it('refuses a huge reference in a recipe with its file:line:col, quickly and cut short', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'transship-refs-'))
    try {
      const recipe = path.join(dir, 'huge.yaml')
      // as long as a recipe may be (a 52 MB one is refused by its size before anything is parsed)
      const huge = 'x'.repeat(400 * 1024)
      await recipeYaml({images: [{push: ['Bad.Registry_/x:1'], ref: 'app:1', tags: ['ok:1', huge]}]}).write(recipe)
      const started = performance.now()
      const result = await transship(['recipe', 'validate', recipe], {home: home.home})
      const seconds = (performance.now() - started) / 1000
      console.log(
        `recipe validate of a 400 kB reference: ${seconds.toFixed(2)} s, ${result.stderr.length} characters of errors`,
      )
      expect(result.code, result.stderr).toBe(2)
      // written in block style, ref first: push[0] is the item on line 5, tags[1] on line 8
      expect(result.stderr).toContain(`${recipe}:8:9 images[0].tags[1]: "xxxxxxxxxxxx`)
      expect(result.stderr).toContain(
        `(${huge.length} characters) is not a valid image reference: it is ${huge.length} characters long`,
      )
      expect(result.stderr).toContain(
        `${recipe}:5:9 images[0].push[0]: "Bad.Registry_/x:1" is not a valid image reference`,
      )
      expect(result.stderr.length).toBeLessThan(2000)
    } finally {
      await rm(dir, {force: true, recursive: true})
    }
  })
})
