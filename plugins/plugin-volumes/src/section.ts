import type {Reference, SectionProvider, Step} from '@transship/kit'

import {ExitCode, TransshipError} from '@transship/kit'
import {z} from 'zod'

import {copyVolume, INCOMPLETE_MARKER, readVolumeManifest} from './copy.js'
import {compareManifests, formatDifferences} from './manifest/compare.js'
import {volumeNameSchema as volumeName} from './volume-name.js'
import {inspectVolume, requireVolume} from './volume-store.js'
import {tarEnd} from './volume-tar.js'

export const volumeSchema = z.strictObject({
  as: volumeName.optional().describe('Name of the volume at the destination (default: the same).'),
  from: z.string().min(1).describe('Host that has the volume.'),
  grace: z.number().int().min(0).optional().describe('Seconds containers get to stop (quiesce: stop; default 10).'),
  mode: z
    .enum(['create', 'replace', 'sync'])
    .optional()
    .describe(
      'create (default): the destination must be absent or empty (a copy already there is verified); replace: overwrite it; sync: make it equal, sending only what differs.',
    ),
  name: volumeName.describe('The volume.'),
  quiesce: z
    .enum(['none', 'stop'])
    .optional()
    .describe(
      'stop: stop the running containers that use the volume (on the source, and on the destination when it is used) for the copy, and start exactly those again after. Without it, a destination volume that containers use is refused.',
    ),
  strict: z.boolean().optional().describe('Refuse to copy a volume in use without quiesce (default: warn).'),
  to: z.string().min(1).describe('Host to copy it to.'),
})

export const volumesSchema = z.array(volumeSchema).describe('Volumes copied host to host, verified file by file.')

export type VolumeSpec = z.infer<typeof volumeSchema>

export const volumesSection: SectionProvider<VolumeSpec[]> = {
  async plan(volumes, context) {
    const steps: Step[] = []
    for (const spec of volumes) {
      const destinationName = spec.as ?? spec.name
      const sourceEngine = await context.hosts.engine(spec.from, context.signal)
      await requireVolume(sourceEngine, spec.name, context.signal)
      const destination = await inspectVolume(
        await context.hosts.engine(spec.to, context.signal),
        destinationName,
        context.signal,
      )
      const id = `volumes:${spec.from}:${spec.name}:${spec.to}:${destinationName}`
      if (destination && (spec.mode ?? 'create') === 'create') {
        // already copied (or made by someone else): prove it equals the source instead of refusing
        steps.push({
          detail: {from: spec.from, name: spec.name, to: spec.to},
          host: spec.to,
          id,
          async run({hosts, signal}) {
            const read = async (name: string, volumeName: string) => {
              const host = await hosts.host(name, signal)
              const volume = await requireVolume(host.engine, volumeName, signal)
              return readVolumeManifest(await tarEnd(host, signal), volume.Mountpoint, signal)
            }

            const comparison = compareManifests(
              await read(spec.from, spec.name),
              await read(spec.to, destinationName),
              {
                ignore: (path) => path === INCOMPLETE_MARKER,
              },
            )
            if (!comparison.equal) {
              throw new TransshipError(
                'VOLUME_NOT_EMPTY',
                ExitCode.Failed,
                `${destinationName} on ${spec.to} exists and differs from ${spec.name} on ${spec.from} (mode create does not overwrite; say mode: replace):\n${formatDifferences(comparison).join('\n')}`,
              )
            }

            return {
              summary: `${destinationName} on ${spec.to} equals the source (${comparison.counts.compared} entries)`,
            }
          },
          section: 'volumes',
          title: `verify volume ${destinationName} on ${spec.to} against ${spec.from} (already there)`,
        })
        continue
      }

      steps.push({
        detail: {
          from: spec.from,
          mode: spec.mode ?? 'create',
          name: spec.name,
          quiesce: spec.quiesce ?? 'none',
          to: spec.to,
        },
        host: spec.to,
        id,
        async run({hosts, log, signal}) {
          const report = await copyVolume({...spec}, {hosts, log, signal})
          return {
            ...report,
            summary: `${report.files} files, verified equal${report.stopped.length + report.stoppedAtDestination.length > 0 ? `, ${[...report.stopped, ...report.stoppedAtDestination].join(', ')} restarted` : ''}`,
          }
        },
        section: 'volumes',
        title: `copy volume ${spec.name} from ${spec.from} to ${spec.to}${spec.as ? ` as ${spec.as}` : ''}${spec.quiesce === 'stop' ? ' (its containers stopped meanwhile)' : ''}`,
      })
    }

    return steps
  },
  plugin: '@transship/plugin-volumes',
  references(volumes): Reference[] {
    return volumes.flatMap((volume, index) => [
      {kind: 'host' as const, name: volume.from, path: [index, 'from']},
      {kind: 'host' as const, name: volume.to, path: [index, 'to']},
    ])
  },
  schema: volumesSchema,
  section: 'volumes',
}
