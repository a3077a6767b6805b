// The image commands against real engines: a local one and an ad-hoc ssh:// host.
import {afterAll, beforeAll, expect, it} from 'vitest'

import {transship} from '../helpers/cli.js'
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
})
