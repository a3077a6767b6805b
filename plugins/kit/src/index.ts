/**
 * `@transship/kit`: the contract between transship's core and its plugins, and nothing else.
 *
 * - plugin-api: section providers, steps, plan and run contexts, hosts, remote shells, core services
 * - errors: the TransshipError hierarchy and exit codes
 * - base-command: what every command shares (--json, --debug, Ctrl-C, error rendering)
 * - engine: the engine client and its facts, as the core hands them to plugins
 * - host-flags: the host and recipe flags of commands that reach hosts
 * - host-shell: this machine's shell shaped like a RemoteShell, for hosts on this machine
 *
 * Libraries that plugins may use are subpaths, each listed in package.json's exports:
 * `@transship/kit/archive` (image archives, compression, stream helpers), `/engine` (NDJSON replies, image
 * load), `/native` (xattrs, sparse files, the native addon), `/oci` (media types, descriptors, image
 * locations, OCI layouts), `/reference` (image references), `/tar` (the tar header codec and framing), `/ui`
 * (byte, duration and table formats, progress), `/yaml` (YAML files with positioned issues).
 * A library with one user lives in that plugin instead.
 */
export * from './base-command.js'
export * from './engine.js'
export * from './errors.js'
export * from './host-flags.js'
export * from './host-shell.js'
export * from './plugin-api.js'
