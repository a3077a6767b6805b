import {Args, Flags} from '@oclif/core'
import {
  BaseCommand,
  coreServices,
  ExitCode,
  openHosts,
  recipeHostFlags,
  TransshipError,
  UsageError,
} from '@transship/kit'
import {checkImageOrId} from '@transship/kit/reference'
import {writeFile} from 'node:fs/promises'

import type {VerifyConfig, VerifyReport} from '../config/types.js'

import {junitXml} from '../report/junit.js'
import {formatReport, passed} from '../report/text.js'
import {isArchiveTarget, runArchiveVerification} from '../run/archive-driver.js'
import {runVerification} from '../run/run-verification.js'
import {type VerifyEntry} from '../section.js'
import {filesConfig, recipeJobs, type VerifyJob} from '../verify-jobs.js'

export default class Verify extends BaseCommand<typeof Verify> {
  static override args = {
    target: Args.string({
      description:
        'With --config: the image to check, on an engine, or an archive read without one (docker-archive:FILE, oci-archive:FILE, oci:DIR). Without: a recipe whose `verify` section to run.',
      required: true,
    }),
  }
  static override description = `Prove an image works where it landed: file existence, permissions, owners and content, the image's metadata, and commands run in containers, in container-structure-test's v2 schema (its test files work unchanged), plus a file's sha256, a symlink's target, waiting for a log line, a healthy state or a TCP port, and "the image has a healthcheck".

Files are read as CST reads them (YAML 1.1 for .yaml, encoding/json's rules for .json), regexes are Go's (RE2: ^ and $ are the start and end of the whole text unless (?m)), and $NAME in command lines and file paths is expanded with the image's environment. Static checks read the image through the engine without starting anything, so they work on images without a shell; an archive (docker-archive:FILE, oci-archive:FILE, oci:DIR) is checked without any engine, its layers streamed (command tests need an engine: exit 2). Commands run on the engine's default network (containerRunOptions.network or a test's network: none, host, bridge or a network's name), with every containerRunOptions field (user, privileged, capabilities, bindMounts, envVars, envFile, allocateTty), a timeout each; every container and temporary image is removed afterwards, also on failure, timeout or Ctrl-C, and what a killed run left is removed by the next run on that engine. Hosts reached over SSH run the same checks through their engine. Exit 5 when a check fails (or none ran).`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> --config tests/app.yaml app:1',
    '<%= config.bin %> <%= command.id %> --config tests/app.yaml app:1 --host ssh://deploy@edge.example.com --junit report.xml',
    '<%= config.bin %> <%= command.id %> recipes/verify.yaml',
    '<%= config.bin %> <%= command.id %> --config tests/app.yaml docker-archive:app.tar',
    '<%= config.bin %> <%= command.id %> --config tests/app.yaml oci:out/layout:app',
  ]
  static override flags = {
    ...recipeHostFlags,
    config: Flags.string({
      char: 'c',
      description: "A test file (container-structure-test's v2 schema).",
      multiple: true,
      multipleNonGreedy: true,
    }),
    host: Flags.string({
      description: 'Hosts to check the image on (default local).',
      multiple: true,
      multipleNonGreedy: true,
    }),
    junit: Flags.string({description: 'Also write the results as JUnit XML to this file.'}),
  }
  static override summary = 'Run checks on an image, on any host.'

  async run(): Promise<VerifyReport[]> {
    if (this.flags.config && isArchiveTarget(this.args.target)) return this.archive()
    const jobs = this.flags.config ? await this.flagJobs() : await this.recipeJobs(this.args.target)
    const hostNames = [...new Set(jobs.map((job) => job.host))]
    // a recipe's checks name the recipe's hosts
    const recipe = this.flags.config ? this.flags.recipe : this.args.target
    await using hosts = await openHosts(this.config, {...this.flags, recipe}, hostNames)
    const reports: VerifyReport[] = []
    for (const job of jobs) {
      const engine = await hosts.engine(job.host, this.signal)
      const report = await runVerification(engine, job.image, job.config, {
        host: job.host,
        log: this.logger(),
        signal: this.signal,
      })
      reports.push(report)
      if (!this.jsonEnabled()) this.log(formatReport(report).join('\n'))
    }

    return this.finish(reports)
  }

  /** The static checks on an image archive or layout, without an engine. */
  private async archive(): Promise<VerifyReport[]> {
    if (this.flags.host) {
      throw new UsageError(`${this.args.target} is read on this machine: --host does not apply to an archive`, {
        code: 'VERIFY_INPUT',
        suggestions: ['leave --host out, or give an image on that host instead of a file'],
      })
    }

    const config = await this.flagConfig()
    const report = await runArchiveVerification(this.args.target, config, {signal: this.signal})
    if (!this.jsonEnabled()) this.log(formatReport(report).join('\n'))
    return this.finish([report])
  }

  private async finish(reports: VerifyReport[]): Promise<VerifyReport[]> {
    if (this.flags.junit) await writeFile(this.flags.junit, junitXml(reports))
    if (!reports.every((report) => passed(report))) {
      throw new TransshipError('VERIFY_FAILED', ExitCode.Verify, 'some checks failed', {details: {reports}})
    }

    return reports
  }

  /** The --config files, as one config. */
  private async flagConfig(): Promise<VerifyConfig> {
    return filesConfig(this.flags.config ?? [])
  }

  private async flagJobs(): Promise<VerifyJob[]> {
    const config = await this.flagConfig()
    checkImageOrId(this.args.target)
    return (this.flags.host ?? ['local']).map((host) => ({config, host, image: this.args.target}))
  }

  private async recipeJobs(file: string): Promise<VerifyJob[]> {
    const services = await coreServices(this.config)
    const section = await services.recipeSection(file, 'verify')
    if (!section) {
      throw new UsageError(`${file} has no verify section`, {
        code: 'RECIPE_NOTHING_TO_VERIFY',
        suggestions: ['give a test file and an image instead: transship verify --config FILE IMAGE'],
      })
    }

    return recipeJobs(section.value as VerifyEntry[], section.dir)
  }
}
