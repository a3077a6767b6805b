/**
 * The contract between transship's core and its plugins. A plugin owns one recipe section: it gives the
 * core a SectionProvider through the `transship:sections` hook; the core validates the section with the
 * provider's schema, asks it to plan, and runs its steps. Core services (engines, logging, progress) reach
 * the plugin through the contexts passed in, or through the `transship:services` hook for commands.
 */
import type {Interfaces} from '@oclif/core'
import type {ZodType} from 'zod'

import type {EngineClient, EngineFacts} from './engine.js'

export interface Logger {
  debug(message: string): void
  info(message: string): void
  warn(message: string): void
}

export interface ProgressTask {
  /** the task ended; `error` set when it failed */
  done(error?: Error): void
  /** add `n` units (bytes unless said otherwise) */
  tick(n: number): void
  /** set the total once it is known */
  total(total: number): void
}

export interface Progress {
  task(id: string, label: string, total?: number): ProgressTask
}

export interface HostDescription {
  /** `local`, or `ssh` for an engine reached over SSH */
  kind: 'local' | 'ssh'
  name: string
  /** where it is, e.g. `unix:///var/run/docker.sock` or `ssh://deploy@edge:22` (never secrets) */
  target: string
}

/** A command running on a host over SSH: its stdin and stdout stream, stderr is drained and kept. */
export interface RemoteProcess {
  exit: Promise<{code: null | number; signal?: string; stderr: string}>
  stdin: NodeJS.WritableStream
  stdout: NodeJS.ReadableStream
}

/** A word for a POSIX shell command line, whatever it contains. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", String.raw`'\''`)}'`
}

/** The shell of a host reached over SSH, for the tools it happens to have (nothing is installed). */
export interface RemoteShell {
  /** the engine's socket path on that host */
  engineSocket: string
  exec(command: string, options?: {signal?: AbortSignal}): RemoteProcess
  /** a short command's exit code and output */
  run(command: string, options?: {signal?: AbortSignal}): Promise<{code: null | number; stderr: string; stdout: string}>
}

/** Where a host's engine is, as resolved (the SSH configuration applied): an engine here, or one over SSH. */
export type HostEndpoint =
  | {host: string; kind: 'ssh'; port: number; socket: string; user: string}
  | {host: string; kind: 'tcp'; port: number}
  | {kind: 'unix'; socket: string}

/**
 * How data on a host (a volume's files) is read and written: as the SSH user when it is root, through
 * `sudo -n`, or by a helper container on the host's engine (for users of the docker group); `auto` picks the
 * first that works, in that order.
 */
export const HOST_ACCESSES = ['auto', 'root', 'sudo', 'engine'] as const

export type HostAccess = (typeof HOST_ACCESSES)[number]

/** A host's data access as the recipe says it. */
export interface HostAccessSpec {
  /** the image of the helper container for `engine` access (default: the volumes plugin's) */
  helperImage?: string
  mode?: HostAccess
}

/**
 * A host of a run, resolved once: its engine connected and identified. Services take this, not the name the
 * user wrote: `name` is for messages, `id` says which engine it is, however it was written.
 */
export interface Host {
  /** how its data is reached, as the recipe says (default: auto) */
  readonly access?: HostAccessSpec
  readonly endpoint: HostEndpoint
  readonly engine: EngineClient
  readonly facts: EngineFacts
  /** the engine's ID (`GET /info`): the same engine under any spelling of its host; journals and caches use it */
  readonly id: string
  /** the host as the user wrote it (a recipe host, `local`, an address), for messages */
  readonly name: string
  /** bytes to and from its engine never leave this machine (an engine here, or SSH to a loopback address) */
  readonly onThisMachine: boolean
  /** its shell: over its SSH connection, or this machine's for an engine here */
  readonly shell: RemoteShell
}

/** Whether two hosts are one engine, however each was written. */
export function sameEngine(a: Host, b: Host): boolean {
  return a.id === b.id
}

/** The hosts of a run. Connections are opened lazily and reused: one SSH connection per host. */
export interface Hosts {
  /** how a host is reached, from its declaration alone (nothing is connected) */
  describe(name: string): HostDescription
  /** the engine of a host: `(await hosts.host(name)).engine` */
  engine(name: string, signal?: AbortSignal): Promise<EngineClient>
  /** a host resolved: connected and identified once per run */
  host(name: string, signal?: AbortSignal): Promise<Host>
  names(): string[]
}

export interface RecipeContext {
  /** absolute directory of the recipe file, to resolve relative paths */
  dir: string
  file: string
  hosts: string[]
  registries: string[]
  /** the recipe's registries by name (`ca` made absolute) */
  registrySpecs: Record<string, RecipeRegistry>
}

/** How to authenticate: what the recipe names (environment variable names only, never secrets). */
export interface RegistryAuthSpec {
  passwordEnv?: string
  tokenEnv?: string
  username?: string
  usernameEnv?: string
}

/** A registry as a recipe declares it: where, how to trust it, and the names of the variables holding credentials. */
export interface RecipeRegistry {
  auth?: RegistryAuthSpec
  /** absolute path of a PEM CA certificate */
  ca?: string
  insecure?: boolean
  /** host[:port][/path], optionally prefixed with https:// or http:// */
  url: string
}

export interface PlanContext {
  hosts: Hosts
  log: Logger
  /** what the steps of the sections planned before this one (SectionProvider.after) will produce */
  planned: PlannedProducts
  recipe: RecipeContext
  signal: AbortSignal
}

/** An image a step leaves in a host's engine: built or loaded there, copied there, or tagged there. */
export interface ImageProduct {
  host: string
  /** the ID it will have, when the planner can tell (an existing image copied or tagged); absent: known once built */
  id?: string
  /** its name, e.g. `base/debian:bookworm` */
  ref: string
}

/** An image that steps of the plan will leave in a host's engine. */
export interface PlannedImage {
  host: string
  /** the ID it will have, when known (from the last step that makes it); absent: to be built */
  id?: string
  /** its name, as formatReference(parseReference(ref)) writes it */
  ref: string
  /** the ids of the steps that make it, in plan order: a step that uses the image depends on them all */
  steps: string[]
}

/**
 * What earlier sections' steps will produce, so that a later section can plan with things that do not
 * exist yet (a copy of an image that a rootfs step will build) and make its steps depend on theirs.
 */
export interface PlannedProducts {
  /** the image `ref` on `host` as the plan will leave it; undefined when no planned step makes it */
  image(host: string, ref: string): PlannedImage | undefined
}

export interface RunContext {
  hosts: Hosts
  log: Logger
  progress: Progress
  signal: AbortSignal
}

export interface StepOutcome {
  /** what the step did, one line */
  summary?: string
  [key: string]: unknown
}

/** One unit of work of a plan; runs after the steps it depends on. */
export interface Step {
  /** sections whose every step must finish before this one starts (e.g. checks after the copies) */
  afterSections?: string[]
  /** bytes expected to move, when known */
  bytes?: number
  dependsOn?: string[]
  /** facts for --json output (no secrets) */
  detail?: Record<string, unknown>
  /** the host the step changes */
  host: string
  /** unique within a plan, stable between runs */
  id: string
  /** what the step leaves behind, for the sections planned after this one (see PlannedProducts) */
  produces?: {images?: ImageProduct[]}
  /** the recipe section that owns the step */
  section: string
  /** human-readable, e.g. `tag app:1 as app:latest` */
  title: string
  run(context: RunContext): Promise<StepOutcome | void>
}

/** A name a section refers to, checked by the core against the recipe's hosts or registries. */
export interface Reference {
  kind: 'host' | 'registry'
  name: string
  /** path inside the section value, e.g. `[0, 'copy', 1]` */
  path: Array<number | string>
}

export interface SectionProvider<T = unknown> {
  /**
   * Sections planned before this one (when the recipe has them): what their steps will produce is visible in
   * `context.planned`, and this section's steps may depend on theirs. A cycle is an error.
   */
  after?: string[]
  /** package name of the plugin, for messages */
  plugin: string
  /** the names of hosts and registries the value refers to */
  references?(value: T): Reference[]
  /** the schema of the section's value; unknown keys must be errors (use z.strictObject) */
  schema: ZodType<T>
  /** the recipe key the plugin owns, e.g. `images` */
  section: string
  /** a plan is pure: it reads the world and changes nothing */
  plan(value: T, context: PlanContext): Promise<Step[]>
}

/** Core services for plugin commands, obtained with the `transship:services` hook. */
export interface Services {
  /** hosts from a recipe file, or ad-hoc ones (`local`, `ssh://user@host[:port]`) when no recipe */
  openHosts(options: {acceptNewHostKeys?: boolean; hosts?: string[]; recipe?: string}): Promise<AsyncDisposable & Hosts>
  /** the registries a recipe declares (none without a recipe) */
  recipeRegistries(file?: string): Promise<Record<string, RecipeRegistry>>
  /**
   * One section of a recipe file, validated with the whole recipe (undefined when the recipe has none), and
   * the recipe's directory, against which its paths are relative.
   */
  recipeSection(file: string, section: string): Promise<undefined | {dir: string; value: unknown}>
}

declare module '@oclif/core' {
  interface Hooks {
    'transship:sections': {
      options: Record<string, never>
      return: SectionProvider<unknown>[]
    }
    'transship:services': {
      options: Record<string, never>
      return: Services
    }
  }
}

/** The core's services, for a plugin command: `const services = await coreServices(this.config)`. */
export async function coreServices(config: Interfaces.Config): Promise<Services> {
  const result = await config.runHook('transship:services', {})
  const first = result.successes[0]
  if (!first) {
    const cause = result.failures[0]?.error
    throw new Error('the transship core did not provide its services (is the plugin loaded by transship?)', {cause})
  }

  return first.result
}
