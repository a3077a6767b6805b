// The verify runner against real engines (Docker 20.10 classic store, 26.1 containerd store): a passing and a
// failing check of every kind on busybox (pushed to the bed's plain registry first, so that it has a repo digest
// to report), static checks on an image without a shell, and nothing left behind.
import type {EngineClient} from '@transship/kit'

import {readFile} from 'node:fs/promises'
import os from 'node:os'
import tar from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {TestResult, VerifyConfig} from '../../plugins/plugin-verify/src/config/types.js'

import {runVerification} from '../../plugins/plugin-verify/src/run/run-verification.js'
import {HttpEngineClient} from '../../src/engine/client.js'
import {unixSocketTransport} from '../../src/engine/transport.js'
import {sha256Hex} from '../helpers/digests.js'
import {describeE2E, dockerCli, type EngineName} from '../helpers/testbed.js'

interface Listed {
  Id: string
  Labels?: null | Record<string, string>
}

/** The containers (all) and images (all) of an engine, by ID. */
async function inventory(engine: EngineClient): Promise<{containers: Listed[]; images: Listed[]}> {
  const containers = await engine.json<Listed[]>({path: '/containers/json', query: {all: true}})
  const images = await engine.json<Listed[]>({path: '/images/json', query: {all: true}})
  return {containers, images}
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk)
  return Buffer.concat(chunks)
}

async function tarOf(entries: Array<Parameters<tar.Pack['entry']>[0] & {content?: Buffer | string}>): Promise<Buffer> {
  const pack = tar.pack()
  const done = readAll(pack as unknown as AsyncIterable<Buffer>)
  const mtime = new Date(1_700_000_000_000)
  for (const {content, ...header} of entries) {
    await new Promise<void>((resolve, reject) => {
      const callback = (error?: Error | null) => (error ? reject(error) : resolve())
      if (content === undefined) pack.entry({mtime, ...header}, callback)
      else pack.entry({mtime, ...header}, content, callback)
    })
  }

  pack.finalize()
  return done
}

/** A docker-archive of a one-layer image without a shell: /hello (busybox), a symlink, a sticky /tmp, … */
async function shellLessArchive(reference: string, arch: string, busybox: Buffer): Promise<Buffer> {
  const layer = await tarOf([
    {content: busybox, mode: 0o755, name: 'hello', type: 'file'},
    {linkname: 'hello', mode: 0o777, name: 'link', type: 'symlink'},
    {mode: 0o1777, name: 'tmp/', type: 'directory'},
    {content: 'x', mode: 0o4755, name: 'suid', type: 'file'},
    {mode: 0o755, name: 'etc/', type: 'directory'},
    {content: 'welcome\nversion=3\n', gid: 1000, mode: 0o640, name: 'etc/motd', type: 'file', uid: 1000},
  ])
  const config = JSON.stringify({
    architecture: arch,
    config: {
      Cmd: ['echo', 'hi'],
      Entrypoint: ['/hello'],
      Env: ['PATH=/', 'APP_VERSION=3.1.4'],
      ExposedPorts: {'8080/tcp': {}},
      Healthcheck: {Test: ['CMD', '/hello', 'true']},
      Labels: {'org.opencontainers.image.source': 'https://example.com/hello'},
      User: '1000',
      Volumes: {'/data': {}},
      WorkingDir: '/etc',
    },
    created: '2023-11-14T22:13:20Z',
    os: 'linux',
    // eslint-disable-next-line camelcase -- the image config's field
    rootfs: {diff_ids: [`sha256:${sha256Hex(layer)}`], type: 'layers'},
  })
  const manifest = JSON.stringify([{Config: 'config.json', Layers: ['layer.tar'], RepoTags: [reference]}])
  return tarOf([
    {content: config, mode: 0o644, name: 'config.json', type: 'file'},
    {content: layer, mode: 0o644, name: 'layer.tar', type: 'file'},
    {content: manifest, mode: 0o644, name: 'manifest.json', type: 'file'},
  ])
}

/** made by this process's runs: its containers, and the images committed from them, carry its labels */
const ours = (item: Listed) =>
  item.Labels?.['io.transship.verify'] !== undefined &&
  item.Labels['io.transship.verify.pid'] === String(process.pid) &&
  item.Labels['io.transship.verify.host'] === os.hostname()

function byName(results: TestResult[]): Map<string, TestResult> {
  return new Map(results.map((result) => [result.name, result]))
}

describeE2E('verify runner', (bed) => {
  for (const engineName of ['classic', 'containerd'] as EngineName[]) {
    describe(`on the ${engineName} engine`, () => {
      let engine: EngineClient
      let before: {containers: Listed[]; images: Listed[]}
      let busybox: Buffer
      const shellLess = `transship-test/verify-noshell:${process.pid}`
      // busybox under a name of its own in the plain registry: pushing it gives it a repo digest
      const pushedRepo = `${bed.registries.plain.host}/transship-test/verify-digest-${process.pid}-${engineName}`
      const pushed = `${pushedRepo}:1`
      let pushedDigest = ''

      beforeAll(async () => {
        engine = await HttpEngineClient.connect(engineName, unixSocketTransport(bed.engines[engineName].socket))
        busybox = await readFile('/bin/busybox')
        const {arch} = await engine.facts()
        await dockerCli(engineName, ['load'], {input: await shellLessArchive(shellLess, arch, busybox)})
        await dockerCli(engineName, ['tag', bed.images.busybox, pushed])
        await dockerCli(engineName, ['push', '-q', pushed])
        const digests = JSON.parse(
          await dockerCli(engineName, ['image', 'inspect', '--format', '{{json .RepoDigests}}', pushed]),
        ) as string[]
        pushedDigest = digests.find((digest) => digest.startsWith(`${pushedRepo}@sha256:`)) ?? ''
        before = await inventory(engine)
      })

      afterAll(async () => {
        await dockerCli(engineName, ['image', 'rm', '--force', shellLess]).catch(() => '')
        await dockerCli(engineName, ['image', 'rm', pushed]).catch(() => '')
        if (pushedDigest) await dockerCli(engineName, ['image', 'rm', pushedDigest]).catch(() => '')
      })

      it('passes and fails every kind of check on busybox', async () => {
        const busyboxSha = sha256Hex(busybox)
        const config: VerifyConfig = {
          commandTests: [
            {
              args: ['-c', 'echo hello; echo oops >&2'],
              command: 'sh',
              excludedError: ['^fatal'],
              excludedOutput: ['bye'],
              expectedError: ['oops'],
              // RE2: $ is the end of the whole text, after the newline echo writes
              expectedOutput: [String.raw`^hello\n$`],
              name: 'output',
            },
            {args: ['-c', 'exit 3'], command: 'sh', exitCode: 3, name: 'exit code'},
            {command: 'false', name: 'wrong exit code'},
            {args: ['hello'], command: 'echo', expectedOutput: ['^bye'], name: 'output mismatch'},
            {args: ['hello'], command: 'echo', excludedOutput: ['hel+o'], name: 'excluded output'},
            {
              args: ['/prepared'],
              command: 'cat',
              expectedOutput: [String.raw`^prepared\nmore\n$`],
              name: 'setup and teardown',
              setup: [
                ['sh', '-c', 'echo prepared > /prepared'],
                ['sh', '-c', 'echo more >> /prepared'],
              ],
              teardown: [['rm', '/prepared']],
            },
            // CST does not check a setup command's exit code: a warning, not a failure
            {args: ['-c', 'exit 0'], command: 'sh', name: 'failing setup', setup: [['false']]},
            {
              command: 'env',
              envVars: [{key: 'GREETING', value: 'hi'}],
              expectedOutput: ['(?m)^GREETING=hi$', '(?m)^GLOBAL=world$'],
              name: 'env',
            },
            {
              // CST expands $NAME in the command line with the image's environment before running it: GLOBAL is
              // committed into the image, GREETING (without setup) is not
              args: ['-c', 'echo $GREETING $GLOBAL'],
              command: 'sh',
              envVars: [{key: 'GREETING', value: 'hi'}],
              expectedOutput: [String.raw`^world\n$`],
              name: 'args expanded',
            },
            {args: ['600'], command: 'sleep', name: 'hangs', timeout: 2},
          ],
          fileContentTests: [
            {excludedContents: ['^hacker:'], expectedContents: ['^root:x:0:0:'], name: 'passwd', path: '/etc/passwd'},
            {expectedContents: ['^nobody-here:'], name: 'passwd mismatch', path: '/etc/passwd'},
          ],
          fileExistenceTests: [
            {
              gid: 0,
              isExecutableBy: 'any',
              name: 'busybox',
              path: '/bin/busybox',
              permissions: '-rwxr-xr-x',
              sha256: busyboxSha,
              uid: 0,
            },
            {linkTarget: 'busybox', name: 'sh link', path: '/bin/sh', permissions: 'Lrwxrwxrwx', sha256: busyboxSha},
            {name: 'sticky tmp', path: '/tmp', permissions: 'dtrwxrwxrwx'},
            {name: 'absent', path: '/nonexistent', shouldExist: false},
            {name: 'missing', path: '/nonexistent'},
            {name: 'present', path: '/bin/busybox', shouldExist: false},
            {name: 'wrong permissions', path: '/etc/passwd', permissions: '-rwxrwxrwx'},
            {name: 'wrong uid', path: '/etc/passwd', uid: 1234},
            {isExecutableBy: 'owner', name: 'not executable', path: '/etc/passwd'},
            {name: 'wrong sha256', path: '/bin/busybox', sha256: '0'.repeat(64)},
            {linkTarget: 'nope', name: 'wrong link', path: '/bin/sh'},
          ],
          globalEnvVars: [{key: 'GLOBAL', value: 'world'}],
          metadataTest: {cmd: ['/bin/sh'], entrypoint: [], unboundEnvVars: [{key: 'HOME', value: ''}]},
          schemaVersion: '2.0.0',
          waitTests: [
            {
              args: ['sh', '-c', 'echo starting; sleep 1; echo ready now; sleep 600'],
              log: '^ready',
              name: 'log line',
              timeout: 30,
            },
            {args: ['sh', '-c', 'echo nope; sleep 600'], log: '^ready', name: 'log never', timeout: 2},
            {args: ['true'], log: '^ready', name: 'exits early', timeout: 30},
            {args: ['nc', '-l', '-p', '8080'], name: 'port', port: 8080, timeout: 30},
            {args: ['sleep', '600'], name: 'no healthcheck', healthy: true, timeout: 5},
          ],
        }
        const report = await runVerification(engine, pushed, config, {
          host: engineName,
          signal: AbortSignal.timeout(170_000),
        })
        const results = byName(report.results)
        const status = Object.fromEntries([...results].map(([name, result]) => [name, result.status]))
        expect(status).toEqual({
          'Metadata Test': 'pass',
          absent: 'pass',
          'args expanded': 'pass',
          busybox: 'pass',
          env: 'pass',
          'excluded output': 'fail',
          'exit code': 'pass',
          'exits early': 'fail',
          'failing setup': 'pass',
          hangs: 'fail',
          'log line': 'pass',
          'log never': 'fail',
          missing: 'fail',
          'no healthcheck': 'error',
          'not executable': 'fail',
          output: 'pass',
          'output mismatch': 'fail',
          passwd: 'pass',
          'passwd mismatch': 'fail',
          port: 'pass',
          present: 'fail',
          'setup and teardown': 'pass',
          'sh link': 'pass',
          'sticky tmp': 'pass',
          'wrong exit code': 'fail',
          'wrong link': 'fail',
          'wrong permissions': 'fail',
          'wrong sha256': 'fail',
          'wrong uid': 'fail',
        })
        expect(results.get('failing setup')?.warnings).toEqual(['setup command ["false"] exited with 1 ()'])
        expect(results.get('hangs')?.message).toBe('timed out after 2s')
        expect(results.get('hangs')?.seconds).toBeLessThan(30)
        expect(results.get('output mismatch')?.diff).toEqual(['expected output to match /^bye/, got: hello\n'])
        expect(results.get('wrong exit code')?.diff?.[0]).toMatch(/^expected exit code 0, got: 1/)
        expect(results.get('wrong permissions')?.diff).toEqual(['expected permissions -rwxrwxrwx, got: -rw-r--r--'])
        expect(results.get('wrong link')?.diff).toEqual(['expected a symlink to nope, got: a symlink to busybox'])
        expect(report.imageId).toMatch(/^sha256:[\da-f]{64}$/)
        expect(pushedDigest).toMatch(/@sha256:[\da-f]{64}$/)
        expect(report.repoDigests).toContain(pushedDigest)
        expect(report.host).toBe(engineName)

        const failing = await runVerification(
          engine,
          bed.images.busybox,
          {
            metadataTest: {cmd: [], exposedPorts: ['80'], healthcheck: true, user: 'nobody', workdir: '/srv'},
            schemaVersion: '2.0.0',
          },
          {host: engineName, signal: AbortSignal.timeout(60_000)},
        )
        expect(failing.results).toHaveLength(1)
        expect(failing.results[0]?.status).toBe('fail')
        expect(failing.results[0]?.diff).toEqual([
          'expected cmd [], got: ["/bin/sh"]',
          'expected port 80 to be exposed, got: []',
          'expected workdir /srv, got: ""',
          'expected user nobody, got: ""',
          'expected a HEALTHCHECK, got: none',
        ])
      })

      it('runs the static checks on an image without a shell', async () => {
        const busyboxSha = sha256Hex(busybox)
        const report = await runVerification(
          engine,
          shellLess,
          {
            fileContentTests: [
              {
                excludedContents: ['(?m)^version=2$'],
                expectedContents: ['(?m)^version=3$'],
                name: 'motd',
                path: '/etc/motd',
              },
            ],
            fileExistenceTests: [
              {gid: 0, name: 'hello', path: '/hello', permissions: '-rwxr-xr-x', sha256: busyboxSha, uid: 0},
              {linkTarget: 'hello', name: 'link', path: '/link', permissions: 'Lrwxrwxrwx', sha256: busyboxSha},
              {name: 'tmp', path: '/tmp', permissions: 'dtrwxrwxrwx'},
              {isExecutableBy: 'other', name: 'suid', path: '/suid', permissions: 'urwxr-xr-x'},
              {gid: 1000, name: 'motd owner', path: '/etc/motd', permissions: '-rw-r-----', uid: 1000},
              {name: 'no shell', path: '/bin/sh', shouldExist: false},
            ],
            metadataTest: {
              cmd: ['echo', 'hi'],
              entrypoint: ['/hello'],
              envVars: [
                {key: 'APP_VERSION', value: '3.1.4'},
                {isRegex: true, key: 'PATH', value: '^/$'},
              ],
              exposedPorts: ['8080'],
              healthcheck: true,
              labels: [{isRegex: true, key: 'org.opencontainers.image.source', value: '^https://'}],
              unboundEnvVars: [{key: 'HOME', value: ''}],
              unexposedPorts: ['9090'],
              unmountedVolumes: ['/srv'],
              user: '1000',
              volumes: ['/data'],
              workdir: '/etc',
            },
            schemaVersion: '2.0.0',
          },
          {host: engineName, signal: AbortSignal.timeout(60_000)},
        )
        expect(report.results.filter((result) => result.status !== 'pass')).toEqual([])
        expect(report.results).toHaveLength(8)
      })

      it('refuses an image the engine does not have, as a usage error', async () => {
        const error = await runVerification(
          engine,
          'transship-test/none:1',
          {schemaVersion: '2.0.0'},
          {host: engineName, signal: AbortSignal.timeout(30_000)},
        ).catch((error_: unknown) => error_)
        expect(error).toMatchObject({code: 'IMAGE_NOT_FOUND', exit: 2})
      })

      it('cleans up when aborted in the middle of a command', async () => {
        const controller = new AbortController()
        setTimeout(() => controller.abort(new Error('stop')), 2000)
        const error = await runVerification(
          engine,
          bed.images.busybox,
          {
            commandTests: [
              {args: ['600'], command: 'sleep', name: 'long', setup: [['sh', '-c', 'touch /x']], timeout: 120},
            ],
            schemaVersion: '2.0.0',
          },
          {host: engineName, signal: controller.signal},
        ).catch((error_: unknown) => error_)
        expect((error as Error).message).toBe('stop')
      })

      it('leaves no container and no image behind', async () => {
        const after = await inventory(engine)
        const beforeContainers = new Set(before.containers.map((container) => container.Id))
        const beforeImages = new Set(before.images.map((image) => image.Id))
        expect(after.containers.filter((container) => !beforeContainers.has(container.Id) && ours(container))).toEqual(
          [],
        )
        expect(after.images.filter((image) => !beforeImages.has(image.Id) && ours(image))).toEqual([])
        // nothing at all of this process's runs
        expect(after.containers.filter((container) => ours(container))).toEqual([])
        expect(after.images.filter((image) => ours(image))).toEqual([])
      })
    })
  }
})
