// container-structure-test's v2 files, unchanged, against images built on the bed from CST's test Dockerfiles
// (adapted to busybox): every test's verdict is the one CST gives (each name starts with it), on the classic
// and the containerd engine. Also what can only be shown on the bed: the default network is the engine's
// (as `docker run` without --network), a named network and `none`, bind mounts, allocateTty output.
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {parseVerifyConfig} from '../../plugins/plugin-verify/src/config/load.js'
import {runVerification} from '../../plugins/plugin-verify/src/run/run-verification.js'
import {HttpEngineClient} from '../../src/engine/client.js'
import {unixSocketTransport} from '../../src/engine/transport.js'
import {repoRoot, transship} from '../helpers/cli.js'
import {describeE2E, dockerCli, type EngineName, run} from '../helpers/testbed.js'

const FIXTURES = path.join(repoRoot, 'test', 'fixtures', 'cst')

interface Result {
  diff?: string[]
  message?: string
  name: string
  status: 'error' | 'fail' | 'pass' | 'skip'
  suite: string
  warnings?: string[]
}

interface Report {
  imageId: string
  results: Result[]
}

/** `transship verify --json`: the reports, whether the checks passed (exit 0) or not (exit 5). */
async function verify(
  engine: {host: string},
  config: string,
  image: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{code: null | number; reports: Report[]; stderr: string; stdout: string}> {
  const home = os.tmpdir()
  const result = await transship(['verify', '--config', config, image, '--json'], {dockerHost: engine.host, env, home})
  const parsed = JSON.parse(result.stdout || 'null') as null | Report[] | {error: {details?: {reports?: Report[]}}}
  const reports = Array.isArray(parsed) ? parsed : (parsed?.error.details?.reports ?? [])
  return {code: result.code, reports, stderr: result.stderr, stdout: result.stdout}
}

/** name → status, for the tests whose name says CST's verdict; an error is a failure (CST knows only these two). */
function verdicts(report: Report): Record<string, string> {
  return Object.fromEntries(
    report.results
      .filter((result) => /^(pass|fail):/.test(result.name))
      .map((result) => [result.name, result.status === 'error' ? 'fail' : result.status]),
  )
}

/** What CST says, from the names: `pass: …` passes, `fail: …` fails. */
function expected(names: string[]): Record<string, string> {
  return Object.fromEntries(names.map((name) => [name, name.slice(0, 4)]))
}

/** The test names of a fixture, in order (its `name:` lines). */
async function fixtureNames(file: string): Promise<string[]> {
  const text = await readFile(path.join(FIXTURES, file), 'utf8')
  return [...text.matchAll(/"?[Nn]ame"?: ['"]((?:pass|fail):[^'"]*)['"]/g)].map((match) => match[1]!)
}

function tag(name: string, engineName: string): string {
  return `transship-test/verify-cst-${name}:${process.pid}-${engineName}`
}

describeE2E('container-structure-test files, unchanged', (bed) => {
  let work: string

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'transship-verify-cst-'))
  })

  afterAll(async () => {
    await rm(work, {force: true, recursive: true})
  })

  for (const engineName of ['classic', 'containerd'] as EngineName[]) {
    describe(`on the ${engineName} engine`, () => {
      const engine = () => bed.engines[engineName]
      const images = {
        app: tag('app', engineName),
        licenseBad: tag('license-bad', engineName),
        metadata: tag('metadata', engineName),
        unprivileged: tag('unprivileged', engineName),
      }
      const network = `transship-verify-cst-${process.pid}-${engineName}`

      beforeAll(async () => {
        const build = async (dockerfile: string, image: string, base = bed.images.busybox) =>
          dockerCli(engineName, [
            'build',
            '--network',
            'none',
            '-q',
            '--build-arg',
            `BASE=${base}`,
            '-f',
            path.join(FIXTURES, dockerfile),
            '-t',
            image,
            FIXTURES,
          ])
        await build('Dockerfile.app', images.app)
        await build('Dockerfile.license-bad', images.licenseBad, images.app)
        await build('Dockerfile.metadata', images.metadata)
        await build('Dockerfile.unprivileged', images.unprivileged)
        await dockerCli(engineName, ['network', 'create', network])
      })

      afterAll(async () => {
        for (const image of Object.values(images)) {
          await dockerCli(engineName, ['image', 'rm', '--force', image]).catch(() => '')
        }

        await dockerCli(engineName, ['network', 'rm', network]).catch(() => '')
      })

      it('app_test.yaml: files, contents, commands and global env vars, as CST judges them', async () => {
        const {reports, stderr} = await verify(engine(), path.join(FIXTURES, 'app_test.yaml'), images.app)
        expect(reports, stderr).toHaveLength(1)
        const names = await fixtureNames('app_test.yaml')
        expect(names.length).toBeGreaterThan(40)
        expect(verdicts(reports[0]!)).toEqual(expected(names))
        const byName = new Map(reports[0]!.results.map((result) => [result.name, result]))
        expect(byName.get('pass: a setup command exit code is not checked')?.warnings?.[0]).toMatch(
          /^setup command \["false"\] exited with 1/,
        )
        expect(byName.get('pass: teardown does not change the verdict')?.warnings?.[0]).toMatch(
          /^teardown command \["false"\] exited with 1/,
        )
      })

      it('app_test.json: the JSON form, with the keys and defaults encoding/json gives', async () => {
        const {reports, stderr} = await verify(engine(), path.join(FIXTURES, 'app_test.json'), images.app)
        expect(reports, stderr).toHaveLength(1)
        const names = await fixtureNames('app_test.json')
        expect(names).toHaveLength(6)
        expect(verdicts(reports[0]!)).toEqual(expected(names))
      })

      it('metadata_test.yaml passes, and each of its fields can fail', async () => {
        const file = path.join(FIXTURES, 'metadata_test.yaml')
        const passing = await verify(engine(), file, images.metadata)
        expect(passing.code, passing.stderr).toBe(0)
        expect(passing.reports[0]?.results.map((result) => [result.name, result.status])).toEqual([
          ['Metadata Test', 'pass'],
        ])

        const text = await readFile(file, 'utf8')
        const variants: Array<[string, string, string]> = [
          ["value: 'SOME_VAL'", "value: 'OTHER_VAL'", 'env var SOME_KEY'],
          ["- key: 'EMPTY_VAR'", "- key: 'MISSING_VAR'", 'env var MISSING_VAR'],
          [String.raw`value: '[a-z]+-2\.1\.*'`, String.raw`value: '^2\.1'`, 'env var REGEX_VAR to match'],
          ["- key: 'BAR_FOO'", "- key: 'SOME_KEY'", 'env var SOME_KEY to be unset'],
          ["value: 'my .+ label'", "value: '^your'", 'label localnet.my-domain.my-label'],
          ["exposedPorts: ['8080', '9000']", "exposedPorts: ['8080', '9001']", 'port 9001 to be exposed'],
          ["unexposedPorts: ['80']", "unexposedPorts: ['9000']", 'port 9000 not to be exposed'],
          ["volumes: ['/data']", "volumes: ['/data', '/srv']", 'volume /srv'],
          ["unmountedVolumes: ['/root']", "unmountedVolumes: ['/data']", 'no volume /data'],
          ["entrypoint: ['/bin/sh', '-c']", 'entrypoint: []', 'entrypoint []'],
          ["cmd: ['echo hi']", "cmd: ['echo', 'hi']", 'cmd ["echo","hi"]'],
          ["workdir: '/srv'", "workdir: '/'", 'workdir /'],
          ["user: '1001'", "user: 'root'", 'user root'],
        ]
        // through the runner (the command above proved the way there): one variant a field
        const client = await HttpEngineClient.connect(engineName, unixSocketTransport(engine().socket))
        for (const [from, to, says] of variants) {
          expect(text).toContain(from)
          const config = parseVerifyConfig(text.replace(from, to), 'metadata_test.yaml')
          const failing = await runVerification(client, images.metadata, config, {
            host: engineName,
            signal: AbortSignal.timeout(30_000),
          })
          const result = failing.results[0]
          expect(result?.status, to).toBe('fail')
          expect(result?.diff?.join('\n'), to).toContain(says)
        }
      })

      it('runopts_test.yaml: user, capabilities, envFile (relative to the working directory), envVars', async () => {
        const {reports, stderr} = await verify(
          engine(),
          path.join(FIXTURES, 'runopts_test.yaml'),
          images.unprivileged,
          {
            EMPTY_FROM_HOST: '',
            FOO_FROM_HOST: 'passed',
          },
        )
        expect(reports, stderr).toHaveLength(1)
        const names = await fixtureNames('runopts_test.yaml')
        expect(names).toHaveLength(2)
        expect(verdicts(reports[0]!)).toEqual(expected(names))
      })

      it('privileged and capabilities reach the engine', async () => {
        const plain = await capEff(engineName, images.app, '{}')
        const added = await capEff(engineName, images.app, '{capabilities: [sys_admin]}')
        // CAP_SYS_ADMIN is bit 21; CST sends the list where engines ignore it, transship adds them (--cap-add)
        expect(Math.floor(plain / 2 ** 21) % 2).toBe(0)
        expect(Math.floor(added / 2 ** 21) % 2).toBe(1)
        // without privileged, mount is refused; with it, it works (or, on the bed, whose engines cannot grant
        // every capability, the engine refuses to start the container)
        expect((await mount(engineName, images.app, false))?.status).toBe('fail')
        const privileged = await mount(engineName, images.app, true)
        expect(
          privileged?.status === 'pass' || /apply caps/.test(privileged?.message ?? ''),
          JSON.stringify(privileged),
        ).toBe(true)
      })

      it('bindMounts: a directory of the engine host, seen by commands and (as in CST) by file tests', async () => {
        const bound = await mkdtemp(path.join(os.tmpdir(), 'transship-verify-bind-'))
        const marker = `bound ${process.pid} ${engineName}`
        await writeFile(path.join(bound, 'hello'), `${marker}\n`)
        const file = path.join(work, `bind-${engineName}.yaml`)
        await writeFile(
          file,
          [
            "schemaVersion: '2.0.0'",
            `containerRunOptions: {bindMounts: ['${bound}:/mnt/bound:ro']}`,
            'commandTests:',
            `  - {name: 'pass: read', command: cat, args: [/mnt/bound/hello], expectedOutput: ['^${marker}\\n$']}`,
            "  - {name: 'fail: read-only', command: touch, args: [/mnt/bound/new]}",
            'fileExistenceTests:',
            "  - {name: 'pass: the file tests see it', path: /mnt/bound/hello}",
            'fileContentTests:',
            `  - {name: 'pass: and read it', path: /mnt/bound/hello, expectedContents: ['${marker}']}`,
          ].join('\n'),
        )
        try {
          const {reports, stderr} = await verify(engine(), file, images.app)
          expect(reports, stderr).toHaveLength(1)
          expect(verdicts(reports[0]!)).toEqual(
            expected(['pass: read', 'fail: read-only', 'pass: the file tests see it', 'pass: and read it']),
          )
        } finally {
          await rm(bound, {force: true, recursive: true})
        }
      })

      it('tty_test.yaml: allocateTty gives the command a terminal; its output all comes as stdout', async () => {
        const {reports, stderr} = await verify(engine(), path.join(FIXTURES, 'tty_test.yaml'), images.app)
        expect(verdicts(reports[0]!), stderr).toEqual({'pass: stdout is a terminal': 'pass'})
        // without the option the same command fails
        const plain = path.join(work, `no-tty-${engineName}.yaml`)
        await writeFile(
          plain,
          (await readFile(path.join(FIXTURES, 'tty_test.yaml'), 'utf8')).replace(
            'allocateTty: true',
            'allocateTty: false',
          ),
        )
        expect((await verify(engine(), plain, images.app)).reports[0]?.results[0]?.status).toBe('fail')
        // with a TTY the output is one stream, with CRLF line ends (CST's reader cannot read it; see README)
        const output = path.join(work, `tty-output-${engineName}.yaml`)
        await writeFile(
          output,
          [
            "schemaVersion: '2.0.0'",
            'containerRunOptions: {allocateTty: true}',
            'commandTests:',
            String.raw`  - {name: both streams, command: sh, args: ['-c', 'echo out; echo err >&2'], expectedOutput: ['^out\r\nerr\r\n$'], excludedError: ['.']}`,
          ].join('\n'),
        )
        const tty = await verify(engine(), output, images.app)
        expect(tty.reports[0]?.results[0]?.status, JSON.stringify(tty.reports)).toBe('pass')
      })

      it('license_test.yaml and license_bad_test.yaml: copyright files against the banned licenses', async () => {
        const good = await verify(engine(), path.join(FIXTURES, 'license_test.yaml'), images.app)
        expect(good.code, good.stderr).toBe(0)
        expect(good.reports[0]?.results.map((result) => [result.name, result.status])).toEqual([
          ['License Test 1', 'pass'],
          ['License Test 2', 'pass'],
        ])
        const bad = await verify(engine(), path.join(FIXTURES, 'license_bad_test.yaml'), images.licenseBad)
        expect(bad.code, bad.stderr).toBe(5)
        const [debian, strict, fine] = bad.reports[0]?.results ?? []
        expect([debian?.status, strict?.status, fine?.status]).toEqual(['fail', 'fail', 'pass'])
        expect(debian?.diff).toEqual([
          'cannot read the license file /usr/share/doc/nocopyright/copyright: expected /usr/share/doc/nocopyright/copyright to exist, got: no such file or directory',
          'invalid license in /usr/share/doc/strict/copyright: it contains AGPL',
        ])
      })

      it('the static checks give the same verdicts on docker-archive, oci-archive and oci layouts, without an engine', async () => {
        // app_test.yaml without its command tests; the metadata and license files as they are
        const app = (await readFile(path.join(FIXTURES, 'app_test.yaml'), 'utf8')).replace(
          /\ncommandTests:[\s\S]*$/,
          '\n',
        )
        const staticFile = path.join(work, `static-${engineName}.yaml`)
        await writeFile(staticFile, app)
        const saved = path.join(work, `app-${engineName}.tar`)
        await dockerCli(engineName, ['save', '-o', saved, images.app])
        const ociArchive = path.join(work, `app-${engineName}.oci.tar`)
        const ociDir = path.join(work, `app-${engineName}-layout`)
        for (const target of [`oci-archive:${ociArchive}`, `oci:${ociDir}:app`]) {
          const copied = await run('skopeo', ['copy', '-q', `docker-archive:${saved}`, target])
          expect(copied.code, copied.stderr).toBe(0)
        }

        const onEngine = await verify(engine(), staticFile, images.app)
        const names = (await fixtureNames('app_test.yaml')).filter((name) =>
          onEngine.reports[0]?.results.some((result) => result.name === name),
        )
        expect(names.length).toBeGreaterThan(25)
        expect(verdicts(onEngine.reports[0]!)).toEqual(expected(names))
        for (const target of [`docker-archive:${saved}`, `oci-archive:${ociArchive}`, `oci:${ociDir}:app`]) {
          // no engine at all: DOCKER_HOST points nowhere
          const archived = await verify({host: 'unix:///nonexistent.sock'}, staticFile, target)
          expect(archived.code, `${target}: ${archived.stderr}${archived.stdout}`).toBe(5)
          expect(verdicts(archived.reports[0]!), target).toEqual(expected(names))
          const license = await verify(
            {host: 'unix:///nonexistent.sock'},
            path.join(FIXTURES, 'license_test.yaml'),
            target,
          )
          expect(license.code, license.stderr).toBe(0)
        }

        // command tests need an engine: exit 2, naming them
        const withCommands = await transship(
          ['verify', '--config', path.join(FIXTURES, 'app_test.yaml'), `docker-archive:${saved}`],
          {
            dockerHost: 'unix:///nonexistent.sock',
            home: work,
          },
        )
        expect(withCommands.code).toBe(2)
        expect(withCommands.stderr).toContain('commandTests "pass: the exit code"')
      })

      it('commands join the engine default network, a named one, or none', async () => {
        // what `docker run` without --network gives on this engine (on the bed: the engines run with
        // --bridge=none, so the default network has no interface but the loopback)
        const runDefault = await dockerCli(engineName, [
          'run',
          '--rm',
          '--entrypoint',
          '',
          images.app,
          'sh',
          '-c',
          LINKS,
        ])
        expect(await outputOf(engineName, images.app, LINKS)).toBe(runDefault)
        expect(await outputOf(engineName, images.app, LINKS, {network: 'none'})).toBe('lo\n')
        // a named network gives an eth0 with an address of its subnet
        const subnet = JSON.parse(
          await dockerCli(engineName, ['network', 'inspect', '--format', '{{json .IPAM.Config}}', network]),
        ) as Array<{Subnet: string}>
        const prefix = subnet[0]!.Subnet.split('.')
          .slice(0, 3)
          .join(String.raw`\.`)
        const named = await outputOf(engineName, images.app, 'ip -o -4 addr show eth0', {network})
        expect(named).toMatch(new RegExp(`eth0\\s+inet ${prefix}\\.`))
      })
    })
  }

  /** The effective capabilities of a command run with these containerRunOptions. */
  async function capEff(engineName: EngineName, image: string, options: string): Promise<number> {
    const output = await outputOf(engineName, image, 'grep CapEff /proc/self/status', {options})
    return Number.parseInt(/CapEff:\s+([\da-f]+)/.exec(output)?.[1] ?? '', 16)
  }

  /** The result of mounting a tmpfs, with or without privileged. */
  async function mount(engineName: EngineName, image: string, privileged: boolean): Promise<Result | undefined> {
    const file = path.join(work, `privileged-${engineName}.yaml`)
    await writeFile(
      file,
      [
        "schemaVersion: '2.0.0'",
        `containerRunOptions: {privileged: ${privileged}}`,
        'commandTests:',
        '  - {name: mount, command: sh, args: [-c, "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m"]}',
      ].join('\n'),
    )
    return (await verify(bed.engines[engineName], file, image)).reports[0]?.results[0]
  }

  /** The stdout of `sh -c SCRIPT` run as a command test by transship (expectedOutput ['^$'] fails and shows it). */
  async function outputOf(
    engineName: EngineName,
    image: string,
    script: string,
    {network, options = '{}'}: {network?: string; options?: string} = {},
  ): Promise<string> {
    const file = path.join(work, `output-${engineName}.yaml`)
    await writeFile(
      file,
      [
        "schemaVersion: '2.0.0'",
        `containerRunOptions: ${options}`,
        'commandTests:',
        `  - {name: show, command: sh, args: [-c, '${script}'], expectedOutput: ['^$']${network ? `, network: ${network}` : ''}}`,
      ].join('\n'),
    )
    const {reports, stderr} = await verify(bed.engines[engineName], file, image)
    const result = reports[0]?.results[0]
    expect(result?.status, `${stderr} ${JSON.stringify(result)}`).toBe('fail')
    return (result?.diff?.[0] ?? '').replace(/^expected output to match \/\^\$\/, got: /, '')
  }
})

/** The container's network interfaces, one name a line. */
const LINKS = 'ip -o link | cut -d: -f2 | tr -d " "'
