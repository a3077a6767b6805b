import {type NativeAddon, requireNative} from '@transship/kit/native'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

/** The addon: its absence fails the tests, since npm install builds it. */
export function addon(): NativeAddon {
  return requireNative('the native tests cannot run')
}

export const isRoot = process.getuid?.() === 0

/** A fresh temporary directory and a function that removes it. */
export function scratch(prefix: string): {dir: string; remove: () => void} {
  const dir = mkdtempSync(path.join(tmpdir(), `transship-${prefix}-`))
  return {dir, remove: () => rmSync(dir, {force: true, recursive: true})}
}

/** Runs a CLI tool for cross-checking; undefined when it is not installed. */
export function tool(command: string, args: string[]): string | undefined {
  const result = spawnSync(command, args, {encoding: 'utf8'})
  if (result.error) return undefined
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`)
  return result.stdout
}
