// `image push`, `image pull`, `registry ls` and `image manifest` against the bed's two Distribution registries
// (plain HTTP on localhost:5000, TLS with htpasswd on localhost:5443): pushes through an engine and straight
// from a docker-archive or an OCI layout keep their digests (checked with skopeo and the registry's own log:
// blobs skipped and mounted, not uploaded again), pulls come back into Docker 26.1 (containerd store) and into
// OCI layouts, wrong or missing credentials and an unknown or unreachable registry fail with the right exit
// code and never print the password, and a two-platform list is an OCI index that Docker pulls.
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {gzipSync} from 'node:zlib'
import tar from 'tar-stream'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {readAll} from '../helpers/archive-fixtures.js'
import {repoRoot, transship} from '../helpers/cli.js'
import {sha256} from '../helpers/digests.js'
import {exists} from '../helpers/files.js'
import {imageId, layers, removeImages} from '../helpers/images.js'
import {recipeYaml} from '../helpers/recipe.js'
import {describeE2E, dockerCli, type EngineName, run, tempHome, type TempHome} from '../helpers/testbed.js'

interface PushResult {
  blobs?: {bytes: number; mounted: number; skipped: number; uploaded: number}
  digest: string
  seconds: number
  target: string
  via: 'engine' | 'registry API'
}

interface PullResult {
  blobs?: number
  bytes?: number
  digest?: string
  id?: string
}

interface JsonError {
  error: {code: string; exit: number; message: string; suggestions?: string[]}
}

interface Descriptor {
  digest: string
  mediaType: string
  platform?: {architecture: string; os: string; variant?: string}
  size: number
}

const escapeRegExp = (text: string) => text.replaceAll(/[$()*+.?[\\\]^{|}]/g, String.raw`\$&`)

async function skopeo(args: string[]): Promise<string> {
  const result = await run('skopeo', args)
  if (result.code !== 0) throw new Error(`skopeo ${args.join(' ')} failed with exit ${result.code}: ${result.stderr}`)
  return result.stdout
}

/** The manifest digest of an OCI layout's first image (index.json), and that manifest's bytes. */
async function layoutManifest(dir: string): Promise<{body: Buffer; digest: string}> {
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as {manifests: Descriptor[]}
  const {digest} = index.manifests[0]!
  return {body: await readFile(path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length))), digest}
}

/** A tar.gz holding only /bin/busybox (the host's): the smallest image that runs. */
async function busyboxTarball(): Promise<Buffer> {
  const pack = tar.pack()
  const done = readAll(pack as unknown as AsyncIterable<Buffer>)
  const mtime = new Date(1_700_000_000_000)
  await new Promise<void>((resolve, reject) => {
    pack.entry({mode: 0o755, mtime, name: 'bin/', type: 'directory'}, (error) => (error ? reject(error) : resolve()))
  })
  const busybox = await readFile('/bin/busybox')
  await new Promise<void>((resolve, reject) => {
    pack.entry({mode: 0o755, mtime, name: 'bin/busybox', type: 'file'}, busybox, (error) =>
      error ? reject(error) : resolve(),
    )
  })
  pack.finalize()
  return gzipSync(await done)
}

describeE2E('registry push, pull, ls and manifest lists', (bed) => {
  const {plain: plainRegistry, secure} = bed.registries
  const plain = plainRegistry.host
  const id = randomBytes(4).toString('hex')
  const repo = `e2e-reg-${id}`
  const otherRepo = `e2e-reg-${id}-mount`
  /** every tag this file makes in a registry, removed afterwards */
  const made: string[] = []
  /** every image this file makes in an engine */
  const pulled: Array<{engine: EngineName; ref: string}> = []
  let home: TempHome
  let options: {dockerHost: string; env: NodeJS.ProcessEnv; home: string}
  let work: string
  let archive: string
  let layout: string

  const creds = () => `${secure.username}:${secure.password}`

  async function push(source: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<PushResult> {
    const result = await transship(['image', 'push', source, ...args, '--json'], {
      ...options,
      env: {...options.env, ...env},
    })
    expect(result.code, result.stderr).toBe(0)
    const [pushed] = JSON.parse(result.stdout) as PushResult[]
    made.push(pushed!.target)
    return pushed!
  }

  async function inspect(ref: string): Promise<{Digest: string; Layers: string[]}> {
    const flags = ref.startsWith(`${secure.host}/`) ? ['--creds', creds()] : ['--tls-verify=false']
    return JSON.parse(await skopeo(['inspect', ...flags, `docker://${ref}`])) as {Digest: string; Layers: string[]}
  }

  /** POSTs to /v2/REPOSITORY/blobs/uploads/ in the plain registry's access log: uploads, and mounts that took. */
  async function blobPosts(repository: string): Promise<{mounts: number; uploads: number}> {
    const log = await readFile(plainRegistry.log, 'utf8')
    const pattern = new RegExp(
      `"POST /v2/${escapeRegExp(repository)}/blobs/uploads/(\\?\\S*)? HTTP/[\\d.]+" (\\d{3})`,
      'g',
    )
    let mounts = 0
    let uploads = 0
    for (const [, query, status] of log.matchAll(pattern)) {
      if (query?.includes('mount=')) {
        if (status === '201') mounts++
      } else uploads++
    }

    return {mounts, uploads}
  }

  beforeAll(async () => {
    home = await tempHome()
    // the manifest-list drafts and the blob-location cache under the temporary HOME, no docker login
    options = {
      dockerHost: bed.engines.classic.host,
      env: {DOCKER_CONFIG: undefined, XDG_CACHE_HOME: undefined},
      home: home.home,
    }
    work = await mkdtemp(path.join('/var/tmp', 'transship-e2e-registry-'))
    archive = path.join(work, 'busybox.tar')
    const save = await transship(['image', 'save', bed.images.busybox, '-o', archive], options)
    expect(save.code, save.stderr).toBe(0)
    const tarball = path.join(work, 'tiny.tar.gz')
    await writeFile(tarball, await busyboxTarball())
    layout = path.join(work, 'tiny-oci')
    const build = await transship(
      [
        'rootfs',
        'build',
        '--tarball',
        tarball,
        '--tag',
        'e2e-reg/tiny:1',
        '--cmd',
        '["/bin/busybox","sh"]',
        '-o',
        `oci:${layout}`,
      ],
      options,
    )
    expect(build.code, build.stderr).toBe(0)
  })

  afterAll(async () => {
    for (const ref of made.reverse()) {
      const flags = ref.startsWith(`${secure.host}/`) ? ['--creds', creds()] : ['--tls-verify=false']
      // a tag sharing its manifest with one removed before is gone already
      await run('skopeo', ['delete', ...flags, `docker://${ref}`])
    }

    for (const {engine, ref} of pulled) await dockerCli(engine, ['image', 'rm', ref]).catch(() => '')
    if (work) await rm(work, {force: true, recursive: true})
    await home?.cleanup()
  })

  it('pushes an image through the engine to a plain registry, and again in well under a second', async () => {
    const ref = `${plain}/${repo}/busybox:1`
    // the pull test leaves this name on the engine; a name the user had is rightly kept by a push
    await dockerCli('classic', ['image', 'rm', ref]).catch(() => '')
    const first = await push(bed.images.busybox, ['--to', plain, '--as', `${repo}/busybox:1`])
    expect(first.via).toBe('engine')
    expect(first.target).toBe(ref)
    expect(first.digest).toMatch(/^sha256:[\da-f]{64}$/)
    expect((await inspect(ref)).Digest).toBe(first.digest)
    // the name made for the engine's push is not left behind in the engine
    expect(await imageId('classic', ref)).toBeUndefined()

    const again = await push(bed.images.busybox, ['--to', plain, '--as', `${repo}/busybox:1`])
    console.log(`re-push through the engine: ${again.seconds.toFixed(3)} s (first push ${first.seconds.toFixed(3)} s)`)
    expect(again.digest).toBe(first.digest)
    expect(again.seconds).toBeLessThan(1)
  })

  it('removes the name it made for a push when Ctrl-C stops the push, and a later push removes one a killed push left', async () => {
    const big = 'transship-test/push-big:1'
    if (!(await imageId('classic', big))) {
      const dockerfile = `FROM ${bed.images.busybox}\nRUN head -c 268435456 /dev/urandom > /big.bin\n`
      await dockerCli('classic', ['build', '--network', 'none', '-t', big, '-'], {input: dockerfile})
    }

    const bigId = await imageId('classic', big)
    const name = `${repo}/interrupted:1`
    const target = `${plain}/${name}`
    made.push(target)
    const bin = path.join(repoRoot, 'bin', 'run.js')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DOCKER_HOST: bed.engines.classic.host,
      HOME: home.home,
      NO_COLOR: '1',
    }
    delete env.DOCKER_CONFIG
    delete env.XDG_CACHE_HOME
    /** starts a push, and stops it with `signal` once the engine holds the name made for it */
    const interruptedPush = async (signal: NodeJS.Signals) => {
      const child = spawn(process.execPath, [bin, 'image', 'push', big, '--to', plain, '--as', name], {env})
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
      })
      child.stdout.resume()
      const exited = new Promise<null | number>((resolve) => {
        child.on('close', (code, killed) => resolve(code ?? (killed === 'SIGKILL' ? 137 : null)))
      })
      for (let tries = 0; tries < 300 && (await imageId('classic', target)) !== bigId; tries++) {
        await new Promise((resolve) => {
          setTimeout(resolve, 50)
        })
      }

      expect(await imageId('classic', target)).toBe(bigId)
      // the engine is uploading 256 MiB of random bytes: well under way, far from done
      await new Promise((resolve) => {
        setTimeout(resolve, 300)
      })
      const killed = performance.now()
      child.kill(signal)
      const code = await exited
      return {code, seconds: (performance.now() - killed) / 1000, stderr: () => stderr}
    }

    const interrupted = await interruptedPush('SIGINT')
    expect(interrupted.code, interrupted.stderr()).toBe(130)
    console.log(`push interrupted: exit ${interrupted.code} ${interrupted.seconds.toFixed(2)} s after SIGINT`)
    // the cleanup has a bound of its own (10 s); here it is a few requests to a local engine
    expect(interrupted.seconds).toBeLessThan(10)
    expect(interrupted.stderr()).toContain('interrupted')
    expect(await imageId('classic', target)).toBeUndefined()

    // killed: no cleanup can run, the name stays; the next push of the image there recognises it as its own
    const killed = await interruptedPush('SIGKILL')
    expect(killed.code).toBe(137)
    expect(await imageId('classic', target)).toBe(bigId)
    const pushed = await push(big, ['--to', plain, '--as', name])
    expect((await inspect(target)).Digest).toBe(pushed.digest)
    expect(await imageId('classic', target)).toBeUndefined()
    const names = await dockerCli('classic', ['image', 'inspect', '--format', '{{json .RepoTags}}', big])
    expect(JSON.parse(names)).toEqual([big])

    // a name the user made is theirs: a push under it leaves it as it was
    await dockerCli('classic', ['tag', big, target])
    await push(big, ['--to', plain, '--as', name])
    expect(await imageId('classic', target)).toBe(bigId)
    await dockerCli('classic', ['image', 'rm', target])
    await removeImages('classic', big)
  })

  it('pushes a docker-archive without an engine: uploads once, then skips, then mounts into another repository', async () => {
    const [saved] = JSON.parse((await run('tar', ['-xOf', archive, 'manifest.json'])).stdout) as Array<{
      Config: string
      Layers: string[]
    }>
    const blobCount = 1 + saved!.Layers.length
    const ref = `${plain}/${repo}/arch:1`

    const first = await push(`docker-archive:${archive}`, ['--to', plain, '--as', `${repo}/arch:1`])
    expect(first.via).toBe('registry API')
    expect(first.target).toBe(ref)
    expect(first.blobs).toMatchObject({mounted: 0, skipped: 0, uploaded: blobCount})
    expect(first.blobs!.bytes).toBeGreaterThan(0)
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])
    expect(sha256(raw)).toBe(first.digest)
    const held = await inspect(ref)
    expect(held.Digest).toBe(first.digest)
    // the layers are the archive's tars as they are: their digests are the image's diff IDs, nothing recompressed
    expect(held.Layers).toEqual(await layers('classic', bed.images.busybox))
    const fromArchive = JSON.parse(await skopeo(['inspect', `docker-archive:${archive}`])) as {Layers: string[]}
    expect(held.Layers).toEqual(fromArchive.Layers)
    expect(await blobPosts(`${repo}/arch`)).toEqual({mounts: 0, uploads: blobCount})

    // again: the repository has every blob
    const again = await push(`docker-archive:${archive}`, ['--to', plain, '--as', `${repo}/arch:1`])
    expect(again.digest).toBe(first.digest)
    expect(again.blobs).toEqual({bytes: 0, mounted: 0, skipped: blobCount, uploaded: 0})
    expect(await blobPosts(`${repo}/arch`)).toEqual({mounts: 0, uploads: blobCount})

    // another repository of the same registry: every blob mounted from the first, none uploaded
    const other = await push(`docker-archive:${archive}`, ['--to', plain, '--as', `${otherRepo}/arch:1`])
    expect(other.digest).toBe(first.digest)
    expect(other.blobs).toEqual({bytes: 0, mounted: blobCount, skipped: 0, uploaded: 0})
    expect((await inspect(`${plain}/${otherRepo}/arch:1`)).Digest).toBe(first.digest)
    expect(await blobPosts(`${otherRepo}/arch`)).toEqual({mounts: blobCount, uploads: 0})
  })

  it('pushes an OCI layout from `rootfs build` byte for byte', async () => {
    const {body, digest} = await layoutManifest(layout)
    const manifest = JSON.parse(body.toString('utf8')) as {layers: Descriptor[]}
    const pushed = await push(`oci:${layout}`, ['--to', plain, '--as', `${repo}/tiny:1`])
    expect(pushed.via).toBe('registry API')
    expect(pushed.digest).toBe(digest)
    const blobs = pushed.blobs!
    expect(blobs.uploaded + blobs.skipped + blobs.mounted).toBe(1 + manifest.layers.length)
    expect((await inspect(`${plain}/${repo}/tiny:1`)).Digest).toBe(digest)
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${plain}/${repo}/tiny:1`])
    expect(Buffer.from(raw)).toEqual(body)
  })

  it('pulls back into the containerd engine, into an OCI layout, an OCI archive and a docker-archive', async () => {
    const ref = `${plain}/${repo}/busybox:1`
    const {digest} = await push(bed.images.busybox, ['--to', plain, '--as', `${repo}/busybox:1`])
    await dockerCli('containerd', ['image', 'rm', ref]).catch(() => '')

    pulled.push({engine: 'containerd', ref})
    const intoEngine = await transship(['image', 'pull', ref, '--json'], {
      ...options,
      dockerHost: bed.engines.containerd.host,
    })
    expect(intoEngine.code, intoEngine.stderr).toBe(0)
    const engineResult = JSON.parse(intoEngine.stdout) as PullResult
    expect(engineResult.digest).toBe(digest)
    expect(engineResult.id).toMatch(/^sha256:[\da-f]{64}$/)
    expect(await imageId('containerd', ref)).toBe(engineResult.id)
    expect(await dockerCli('containerd', ['run', '--rm', '--network', 'none', ref, 'sh', '-c', 'echo pulled'])).toBe(
      'pulled\n',
    )

    const dir = path.join(work, 'pulled-oci')
    const intoLayout = await transship(['image', 'pull', ref, '-o', `oci:${dir}`, '--json'], options)
    expect(intoLayout.code, intoLayout.stderr).toBe(0)
    expect((JSON.parse(intoLayout.stdout) as PullResult).digest).toBe(digest)
    const {body} = await layoutManifest(dir)
    expect((await layoutManifest(dir)).digest).toBe(digest)
    expect(sha256(body)).toBe(digest)
    expect((JSON.parse(await skopeo(['inspect', `oci:${dir}`])) as {Digest: string}).Digest).toBe(digest)

    // oci:DIR:REF names the image REF in the layout, as skopeo copy does (it is not a directory named DIR:REF)
    const named = path.join(work, 'pulled-named')
    const intoNamed = await transship(['image', 'pull', ref, '-o', `oci:${named}:stable`], options)
    expect(intoNamed.code, intoNamed.stderr).toBe(0)
    expect(await exists(`${named}:stable`)).toBe(false)
    const namedIndex = JSON.parse(await readFile(path.join(named, 'index.json'), 'utf8')) as {
      manifests: Array<{annotations: Record<string, string>; digest: string}>
    }
    expect(namedIndex.manifests).toEqual([
      expect.objectContaining({
        annotations: {'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': 'stable'},
        digest,
      }),
    ])
    // (skopeo selects by ref name only among OCI-typed entries; the engine pushed a Docker manifest)
    expect((JSON.parse(await skopeo(['inspect', `oci:${named}`])) as {Digest: string}).Digest).toBe(digest)

    const file = path.join(work, 'pulled.oci.tar')
    const intoArchive = await transship(['image', 'pull', ref, '-o', `oci-archive:${file}`, '--json'], options)
    expect(intoArchive.code, intoArchive.stderr).toBe(0)
    expect((JSON.parse(intoArchive.stdout) as PullResult).digest).toBe(digest)
    expect(await exists(file)).toBe(true)
    expect((JSON.parse(await skopeo(['inspect', `oci-archive:${file}`])) as {Digest: string}).Digest).toBe(digest)

    // a docker-archive that Docker 20.10 loads (it reads no OCI archive): the same image as the source
    const dockerArchive = path.join(work, 'pulled.tar')
    const intoDocker = await transship(['image', 'pull', ref, '-o', `docker-archive:${dockerArchive}`], options)
    expect(intoDocker.code, intoDocker.stderr).toBe(0)
    await dockerCli('classic', ['image', 'rm', ref]).catch(() => '')
    pulled.push({engine: 'classic', ref})
    expect(await dockerCli('classic', ['load', '-i', dockerArchive])).toContain(ref)
    expect(await imageId('classic', ref)).toBe(await imageId('classic', bed.images.busybox))
  })

  it('pushes to the TLS registry with the credentials of the recipe, and refuses wrong or missing ones', async () => {
    const recipe = path.join(work, 'registry.yaml')
    await recipeYaml({
      registries: {
        secure: {
          auth: {passwordEnv: 'E2E_SECURE_PASSWORD', username: secure.username},
          ca: secure.ca,
          url: secure.host,
        },
      },
    }).write(recipe)
    const right = {E2E_SECURE_PASSWORD: secure.password}

    const viaEngine = await push(
      bed.images.busybox,
      ['--recipe', recipe, '--to', 'secure', '--as', `${repo}/busybox:1`],
      right,
    )
    expect(viaEngine.via).toBe('engine')
    expect(viaEngine.target).toBe(`${secure.host}/${repo}/busybox:1`)
    expect((await inspect(viaEngine.target)).Digest).toBe(viaEngine.digest)

    const {digest} = await layoutManifest(layout)
    const direct = await push(`oci:${layout}`, ['--recipe', recipe, '--to', 'secure', '--as', `${repo}/tiny:1`], right)
    expect(direct.via).toBe('registry API')
    expect(direct.digest).toBe(digest)
    expect((await inspect(direct.target)).Digest).toBe(digest)

    // a wrong password: exit 4, the credentials named, the password itself never printed
    const wrong = `wrong-${randomBytes(6).toString('hex')}`
    const basic = Buffer.from(`${secure.username}:${wrong}`).toString('base64')
    for (const source of [bed.images.busybox, `oci:${layout}`]) {
      for (const json of [false, true]) {
        const result = await transship(
          [
            'image',
            'push',
            source,
            '--recipe',
            recipe,
            '--to',
            'secure',
            '--as',
            `${repo}/denied:1`,
            ...(json ? ['--json'] : []),
          ],
          {...options, env: {...options.env, E2E_SECURE_PASSWORD: wrong}},
        )
        const output = result.stdout + result.stderr
        expect(result.code, `${source} ${json ? '--json' : ''}: ${output}`).toBe(4)
        const message = json ? (JSON.parse(result.stdout) as JsonError).error.message : result.stderr
        expect(message).toMatch(/credentials/)
        expect(output).not.toContain(wrong)
        expect(output).not.toContain(basic)
      }
    }

    // a registry the recipe does not have: a usage error that names the ones it has
    const unknown = await transship(
      ['image', 'push', bed.images.busybox, '--recipe', recipe, '--to', 'nosuch', '--as', `${repo}/busybox:1`],
      {...options, env: {...options.env, ...right}},
    )
    expect(unknown.code, unknown.stderr).toBe(2)
    expect(unknown.stderr).toContain('"nosuch"')
    expect(unknown.stderr).toContain("the recipe's registries: secure")

    // no recipe and no docker login (the CA is trusted as Docker trusts it, from /etc/docker/certs.d)
    const bare = await tempHome()
    try {
      for (const source of [bed.images.busybox, `oci:${layout}`]) {
        const result = await transship(['image', 'push', source, '--to', secure.host, '--as', `${repo}/anonymous:1`], {
          ...options,
          home: bare.home,
        })
        expect(result.code, `${source}: ${result.stderr}`).toBe(4)
        expect(result.stderr).toContain(`the registry ${secure.host} requires authentication`)
      }
    } finally {
      await bare.cleanup()
    }
  })

  it('says a registry that is down cannot be reached, and exits 3', async () => {
    for (const source of [bed.images.busybox, `oci:${layout}`]) {
      const result = await transship(
        ['image', 'push', source, '--to', 'localhost:5999', '--as', `${repo}/down:1`],
        options,
      )
      expect(result.code, `${source}: ${result.stderr}`).toBe(3)
      expect(result.stderr).toContain('cannot reach the registry localhost:5999')
    }
  })

  it('lists the repositories of a registry and the tags of a repository', async () => {
    await push(bed.images.busybox, ['--to', plain, '--as', `${repo}/busybox:1`])
    await push(`oci:${layout}`, ['--to', plain, '--as', `${repo}/tiny:1`])

    const text = await transship(['registry', 'ls', plain], options)
    expect(text.code, text.stderr).toBe(0)
    const lines = text.stdout.split('\n')
    expect(lines).toContain(`${repo}/busybox`)
    expect(lines).toContain(`${repo}/tiny`)

    const json = await transship(['registry', 'ls', plain, '--json'], options)
    expect(json.code, json.stderr).toBe(0)
    const {repositories} = JSON.parse(json.stdout) as {repositories: string[]}
    expect(repositories).toEqual(expect.arrayContaining([`${repo}/busybox`, `${repo}/tiny`]))
    expect(repositories.filter((name) => name.startsWith(`${repo}/`))).toEqual(
      lines.filter((name) => name.startsWith(`${repo}/`)),
    )

    const tags = await transship(['registry', 'ls', plain, `${repo}/busybox`, '--json'], options)
    expect(tags.code, tags.stderr).toBe(0)
    expect((JSON.parse(tags.stdout) as {tags: string[]}).tags).toEqual(['1'])
    const tagsText = await transship(['registry', 'ls', plain, `${repo}/busybox`], options)
    expect(tagsText.stdout.trim()).toBe('1')
  })

  it('makes a two-platform list that is an OCI index, and Docker pulls the amd64 image of it', async () => {
    const amd64 = await push(bed.images.busybox, ['--to', plain, '--as', `${repo}/multi:amd64`])
    const other = await push(`oci:${layout}`, ['--to', `${plain}/${repo}/multi:other`])
    const list = `${plain}/${repo}/multi:1`
    const drafts = path.join(home.home, '.cache', 'transship', 'manifests')

    const create = await transship(['image', 'manifest', 'create', list, amd64.target, other.target], options)
    expect(create.code, create.stderr).toBe(0)
    expect(await readdir(drafts)).toHaveLength(1)
    const annotate = await transship(
      ['image', 'manifest', 'annotate', list, other.target, '--arch', 'arm64', '--variant', 'v8'],
      options,
    )
    expect(annotate.code, annotate.stderr).toBe(0)
    const pushList = await transship(['image', 'manifest', 'push', list, '--json'], options)
    expect(pushList.code, pushList.stderr).toBe(0)
    made.push(list)
    const {digest} = JSON.parse(pushList.stdout) as {digest: string}
    expect(digest).toMatch(/^sha256:[\da-f]{64}$/)
    // the draft is gone once pushed
    expect(await readdir(drafts)).toHaveLength(0)

    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${list}`])
    expect(sha256(raw)).toBe(digest)
    const index = JSON.parse(raw) as {manifests: Descriptor[]; mediaType: string}
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(index.manifests).toHaveLength(2)
    expect(index.manifests.map((entry) => [entry.digest, entry.platform])).toEqual([
      [amd64.digest, {architecture: 'amd64', os: 'linux'}],
      [other.digest, {architecture: 'arm64', os: 'linux', variant: 'v8'}],
    ])

    pulled.push({engine: 'classic', ref: list})
    await dockerCli('classic', ['pull', list])
    expect(await imageId('classic', list)).toBe(await imageId('classic', bed.images.busybox))
    const repoDigests = JSON.parse(
      await dockerCli('classic', ['image', 'inspect', '--format', '{{json .RepoDigests}}', list]),
    ) as string[]
    expect(repoDigests).toContain(`${plain}/${repo}/multi@${digest}`)

    // an image the registry does not have
    const missing = await transship(
      ['image', 'manifest', 'create', `${plain}/${repo}/multi:2`, amd64.target, `${plain}/${repo}/multi:nope`],
      options,
    )
    expect(missing.code, missing.stderr).toBe(2)
    expect(missing.stderr).toContain(`${plain}/${repo}/multi:nope is not in ${plain}`)
  })
})
