/**
 * Raw tar header and pax parsing, for readers that need what tar-stream does not give: tar-stream decodes pax
 * values as UTF-8, which mangles binary xattr values (security.capability) and non-UTF-8 file names.
 */

/** The size of a tar block (headers and data padding). */
export const TAR_BLOCK = 512

/** Padding after `size` bytes of data to the next block boundary. */
export function tarPadding(size: number): number {
  return (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK
}

/** The end of a NUL-terminated field of `length` bytes at `offset` (the field's end when it has no NUL). */
export function tarFieldEnd(buffer: Uint8Array, offset: number, length: number): number {
  const end = Math.min(offset + length, buffer.length)
  const at = buffer.indexOf(0, offset)
  return at === -1 || at > end ? end : at
}

/** An octal header field (spaces and NULs around it allowed); 0 when empty, NaN when not octal. */
export function parseTarOctal(block: Buffer, offset: number, length: number): number {
  const text = block
    .toString('latin1', offset, offset + length)
    .replaceAll('\0', ' ')
    .trim()
  return text === '' ? 0 : /^[0-7]+$/.test(text) ? Number.parseInt(text, 8) : Number.NaN
}

/** A numeric header field: octal, or GNU's base-256 (first byte 0x80) for values octal cannot hold. */
export function parseTarNumber(block: Buffer, offset: number, length: number): number {
  if (block[offset]! === 0x80) {
    let value = 0
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + block[i]!
    return value
  }

  if (block[offset]! >= 0x80) return Number.NaN
  return parseTarOctal(block, offset, length)
}

/**
 * pax records (`LENGTH KEY=VALUE\n`, LENGTH in bytes) with their values as raw bytes, keys decoded as UTF-8;
 * a repeated key keeps its last value. Undefined when the records are malformed.
 */
export function parsePaxRecords(payload: Buffer): Map<string, Buffer> | undefined {
  const records = new Map<string, Buffer>()
  let offset = 0
  while (offset < payload.length) {
    // some writers pad the records with NULs
    if (payload.subarray(offset).every((byte) => byte === 0)) break
    const space = payload.indexOf(0x20, offset)
    const length = space === -1 ? Number.NaN : Number(payload.toString('latin1', offset, space))
    const end = offset + length
    const equals = space === -1 ? -1 : payload.indexOf(0x3d, space + 1)
    if (
      !Number.isSafeInteger(length) ||
      end > payload.length ||
      payload[end - 1] !== 0x0a ||
      equals === -1 ||
      equals >= end
    ) {
      return undefined
    }

    records.set(payload.toString('utf8', space + 1, equals), Buffer.from(payload.subarray(equals + 1, end - 1)))
    offset = end
  }

  return records
}
