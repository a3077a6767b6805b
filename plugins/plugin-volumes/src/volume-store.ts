/**
 * A host's volumes and the containers that use them, through its engine: what a volume is (driver,
 * options, labels, where its data is on the host), creating one like another, and which containers mount it.
 */
import type {EngineClient} from '@transship/kit'

import {EngineError, UsageError} from '@transship/kit'

export interface VolumeInfo {
  Driver: string
  Labels: null | Record<string, string>
  Mountpoint: string
  Name: string
  Options: null | Record<string, string>
}

export interface VolumeUser {
  /** when the container was created (seconds): the order they are started in */
  Created: number
  Id: string
  Names: string[]
  State: string
}

/** The volume, or undefined when the host has none of that name. */
export async function inspectVolume(
  engine: EngineClient,
  name: string,
  signal?: AbortSignal,
): Promise<undefined | VolumeInfo> {
  try {
    return await engine.json<VolumeInfo>({path: `/volumes/${encodeURIComponent(name)}`, signal})
  } catch (error) {
    if (error instanceof EngineError && error.status === 404) return undefined
    throw error
  }
}

/**
 * The volume, or VOLUME_NOT_FOUND. Unless `anyDriver`, only a `local` volume (whose data is a directory on the
 * host); other drivers' volumes are reached through a helper container that the engine mounts them in.
 */
export async function requireVolume(
  engine: EngineClient,
  name: string,
  signal?: AbortSignal,
  options: {anyDriver?: boolean} = {},
): Promise<VolumeInfo> {
  const volume = await inspectVolume(engine, name, signal)
  if (!volume) {
    throw new UsageError(`${engine.host} has no volume named ${name}`, {
      code: 'VOLUME_NOT_FOUND',
      suggestions: [`list them: docker volume ls (on ${engine.host})`],
    })
  }

  if (volume.Driver !== 'local' && !options.anyDriver) {
    throw new UsageError(
      `${name} on ${engine.host} uses the ${volume.Driver} driver: only local volumes have their data on the host`,
      {
        code: 'VOLUME_DRIVER_UNSUPPORTED',
        suggestions: [
          'copy it with access: engine (--from-access engine): a helper container reads it where the engine mounts it',
        ],
      },
    )
  }

  return volume
}

/** Creates `name` with the driver, options and labels of `like` (compose labels included). */
export async function createVolumeLike(
  engine: EngineClient,
  name: string,
  like: VolumeInfo,
  signal?: AbortSignal,
): Promise<VolumeInfo> {
  return engine.json<VolumeInfo>({
    body: {Driver: like.Driver, DriverOpts: like.Options ?? {}, Labels: like.Labels ?? {}, Name: name},
    method: 'POST',
    path: '/volumes/create',
    signal,
  })
}

/** The containers (running or not) that mount the volume, oldest first. */
export async function volumeUsers(engine: EngineClient, name: string, signal?: AbortSignal): Promise<VolumeUser[]> {
  const users = await engine.json<VolumeUser[]>({
    path: '/containers/json',
    query: {all: true, filters: JSON.stringify({volume: [name]})},
    signal,
  })
  return users.sort((a, b) => a.Created - b.Created)
}
