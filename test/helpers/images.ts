// What an engine of the test bed holds, through the docker CLI: for assertions, not for code under test.
import {dockerCli, type EngineName} from './testbed.js'

export async function imageId(engine: EngineName, ref: string): Promise<string | undefined> {
  try {
    return (await dockerCli(engine, ['image', 'inspect', '--format', '{{.Id}}', ref])).trim()
  } catch {
    return undefined
  }
}

export async function layers(engine: EngineName, ref: string): Promise<string[]> {
  return JSON.parse(
    await dockerCli(engine, ['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref]),
  ) as string[]
}

/** Removes these names (and the images only they named). */
export async function removeImages(engine: EngineName, ...refs: string[]): Promise<void> {
  for (const ref of refs) if (await imageId(engine, ref)) await dockerCli(engine, ['image', 'rm', '--force', ref])
}
