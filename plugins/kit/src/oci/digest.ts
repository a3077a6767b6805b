import {createHash} from 'node:crypto'

/** `sha256:<hex>` of `bytes`. */
export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Whether `value` is a sha256 digest (the only algorithm transship writes or accepts in a layout). */
export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && /^sha256:[\da-f]{64}$/.test(value)
}
