#!/usr/bin/env node
// Builds the native addon (native/build/Release/transship_native.node) with node-gyp.
//
// Run by the root package's `install` script, so it must never fail an `npm install`: when the build cannot
// be done it prints one warning line, records why in native/build/build-error.log (src/native/index.ts
// reports that reason at run time) and exits 0.
//
//   node native/build.mjs            build quietly; one warning line on failure
//   node native/build.mjs --verbose  show node-gyp's output
//   node native/build.mjs --strict   exit 1 when the build fails
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'
import process from 'node:process'
import {fileURLToPath} from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const errorLog = path.join(here, 'build', 'build-error.log')
const verbose = process.argv.includes('--verbose')
const strict = process.argv.includes('--strict')
const TIMEOUT_MS = 10 * 60 * 1000

/** How to run node-gyp: [command, ...leading args], or undefined when there is none. */
function findNodeGyp() {
  const scripts = []
  // 1. a node-gyp installed into the project
  try {
    scripts.push(createRequire(path.join(here, 'package.json')).resolve('node-gyp/bin/node-gyp.js'))
  } catch {
    // not installed locally
  }

  // 2. the one npm points its lifecycle scripts at
  if (process.env.npm_config_node_gyp) scripts.push(process.env.npm_config_node_gyp)
  // 3. the one bundled with the npm that runs us, or with the npm next to this node
  if (process.env.npm_execpath) {
    scripts.push(
      path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    )
  }

  const prefix = path.dirname(path.dirname(process.execPath))
  scripts.push(
    path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(path.dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  )
  const script = scripts.find((file) => file.endsWith('.js') && existsSync(file))
  if (script) return [process.execPath, script]
  // 4. a node-gyp on PATH
  const probe = spawnSync('node-gyp', ['--version'], {encoding: 'utf8', stdio: 'pipe'})
  return probe.status === 0 ? ['node-gyp'] : undefined
}

/** Node's own headers next to the running binary, so that node-gyp needs no download. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [] // node-gyp reads it from the environment
  const prefix = path.dirname(path.dirname(process.execPath))
  return existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : []
}

/** The line of node-gyp's output that best says what went wrong. */
function summarize(output) {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
  if (lines.some((line) => line.startsWith('gyp WARN install got an error'))) {
    return "Node's headers are not installed and could not be downloaded; set npm_config_nodedir to a Node install that has include/node"
  }

  const boilerplate =
    /^gyp ERR! (stack\s+at |System |command |cwd |node -v |node-gyp -v |not ok|configure error|build error)/
  const picks = [
    (line) => !line.startsWith('gyp') && /\b(fatal )?error: /i.test(line), // the compiler or linker
    (line) => /^\w*(Error|Exception): /.test(line), // gyp's python, a missing program
    (line) => line.startsWith('gyp ERR! ') && !boilerplate.test(line),
  ]
  for (const pick of picks) {
    const line = lines.find((candidate) => pick(candidate))
    if (line) return line.replace(/^gyp ERR! (stack )?/, '').slice(0, 200)
  }

  return (lines.at(-1) ?? 'no output').slice(0, 200)
}

function fail(reason, output = '') {
  try {
    mkdirSync(path.dirname(errorLog), {recursive: true})
    writeFileSync(errorLog, `${reason}\n\n${output}`)
  } catch {
    // the warning below is all we can do
  }

  process.stderr.write(
    `transship: the native addon could not be built (${reason}); xattrs, file capabilities, device nodes and sparse-file detection are unavailable\n`,
  )
  process.exitCode = strict ? 1 : 0
}

function main() {
  rmSync(errorLog, {force: true})
  const nodeGyp = findNodeGyp()
  if (!nodeGyp) {
    fail('node-gyp was not found')
    return
  }

  const [command, ...leading] = nodeGyp
  const result = spawnSync(command, [...leading, 'rebuild', ...nodedirArgs()], {
    cwd: here,
    encoding: 'utf8',
    env: process.env,
    maxBuffer: 64 * 1024 * 1024,
    stdio: verbose ? 'inherit' : 'pipe',
    timeout: TIMEOUT_MS,
  })
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`
  if (result.error) {
    fail(
      result.error.code === 'ETIMEDOUT' ? 'node-gyp timed out' : `node-gyp could not run: ${result.error.message}`,
      output,
    )
    return
  }

  if (result.status !== 0) {
    fail(`node-gyp exited with ${result.status ?? result.signal}: ${summarize(output)}`, output)
    return
  }

  if (!existsSync(path.join(here, 'build', 'Release', 'transship_native.node'))) {
    fail('node-gyp succeeded but produced no build/Release/transship_native.node', output)
  }
}

main()
