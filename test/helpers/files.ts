// Small file checks for the tests.
import {access, open} from 'node:fs/promises'

export async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  )
}

/** The first bytes of a file (enough to tell its compression). */
export async function head(file: string, length = 10): Promise<Buffer> {
  const handle = await open(file, 'r')
  try {
    const buffer = Buffer.alloc(length)
    await handle.read(buffer, 0, length, 0)
    return buffer
  } finally {
    await handle.close()
  }
}
