// Content digests as the code under test writes them (OCI descriptors, manifests, verify reports).
import {createHash} from 'node:crypto'

/** `sha256:<hex>`, the OCI digest of `data`. */
export function sha256(data: Buffer | string): string {
  return `sha256:${sha256Hex(data)}`
}

/** The bare hex SHA-256 of `data`. */
export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** The hex part of a `sha256:<hex>` digest. */
export function hex(digest: string): string {
  return digest.slice('sha256:'.length)
}
