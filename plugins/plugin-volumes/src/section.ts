import type {Hosts, Reference, SectionProvider, Step} from '@transship/kit'

import {ExitCode, TransshipError} from '@transship/kit'
import {formatBytes} from '@transship/kit/ui'
import {z} from 'zod'

import {copyVolume} from './copy.js'
import {volumeNameSchema as volumeName} from './volume-name.js'
import {estimateCopy, type PlanSides, proveExisting} from './volume-plan.js'
import {METHOD_WORDS} from './volume-transfer.js'

export const volumeSchema = z.strictObject({
  as: volumeName.optional().describe('Name of the volume at the destination (default: the same).'),
  checksum: z
    .boolean()
    .optional()
    .describe('mode sync: compare contents (hashed on each host), not only size and mtime.'),
  from: z.string().min(1).describe('Host that has the volume.'),
  grace: z.number().int().min(0).optional().describe('Seconds containers get to stop (quiesce: stop; default 10).'),
  mode: z
    .enum(['create', 'replace', 'sync'])
    .optional()
    .describe(
      'create (default): the destination must be absent or empty (a copy already there is verified, an unfinished one finished); replace: overwrite it; sync: make it equal, sending only what differs.',
    ),
  name: volumeName.describe('The volume.'),
  presync: z
    .boolean()
    .optional()
    .describe(
      'With quiesce: stop, copy while the containers run, then stop them only for the final delta and its proof (the report gives that downtime).',
    ),
  quiesce: z
    .enum(['none', 'stop'])
    .optional()
    .describe(
      'stop: stop the running containers that use the volume (on the source, and on the destination when it is used) for the copy, and start exactly those again after. Without it, a destination volume that containers use is refused.',
    ),
  strict: z.boolean().optional().describe('Refuse to copy a volume in use without quiesce (default: warn).'),
  to: z.string().min(1).describe('Host to copy it to.'),
})

export const volumesSchema = z
  .array(
    volumeSchema.refine((spec) => !spec.presync || spec.quiesce === 'stop', {
      message: 'presync needs quiesce: stop (it stops the containers for the final delta)',
      path: ['presync'],
    }),
  )
  .describe('Volumes copied host to host, verified file by file.')

export type VolumeSpec = z.infer<typeof volumeSchema>

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`

export const volumesSection: SectionProvider<VolumeSpec[]> = {
  async plan(volumes, context) {
    const steps: Step[] = []
    for (const spec of volumes) {
      const destinationName = spec.as ?? spec.name
      const {signal} = context
      const sides = async (hosts: Hosts, signal: AbortSignal): Promise<PlanSides> => ({
        destination: {host: await hosts.host(spec.to, signal), name: destinationName},
        mode: spec.mode ?? 'create',
        signal,
        source: {host: await hosts.host(spec.from, signal), name: spec.name},
      })
      const estimate = await estimateCopy(await sides(context.hosts, signal))
      const id = `volumes:${spec.from}:${spec.name}:${spec.to}:${destinationName}`
      const detail = {
        access: estimate.access,
        bytes: estimate.bytes,
        files: estimate.files,
        from: spec.from,
        limits: estimate.limits,
        method: estimate.method,
        name: spec.name,
        remove: estimate.remove,
        to: spec.to,
      }
      const notKept = estimate.limits.length > 0 ? `; not kept: ${estimate.limits.join('; ')}` : ''
      const reach = `${spec.from}: ${estimate.access.source}; ${spec.to}: ${estimate.access.destination}`
      if (estimate.destination === 'present' && (spec.mode ?? 'create') === 'create') {
        // already copied (or made by someone else): prove it equals the source instead of refusing
        steps.push({
          detail,
          host: spec.to,
          id,
          async run({hosts, signal}) {
            try {
              const proof = await proveExisting(await sides(hosts, signal))
              return {
                summary: `${destinationName} on ${spec.to} equals the source (${proof.comparison.counts.compared} entries, ${proof.hashed} files hashed on both hosts)`,
              }
            } catch (error) {
              if (!(error instanceof TransshipError) || error.code !== 'VOLUME_VERIFY_FAILED') throw error
              throw new TransshipError(
                'VOLUME_NOT_EMPTY',
                ExitCode.Failed,
                `${destinationName} on ${spec.to} exists and differs from ${spec.name} on ${spec.from} (mode create does not overwrite; say mode: replace, or mode: sync):\n${error.message}`,
              )
            }
          },
          section: 'volumes',
          title: `verify volume ${destinationName} on ${spec.to} against ${spec.from} (already there; ${reach})`,
        })
        continue
      }

      const what = {
        files: `${count(estimate.files, 'changed file')}, ${formatBytes(estimate.bytes)}, ${estimate.remove} to remove`,
        none: 'nothing differs, the proof only',
        rsync: `${count(estimate.files, 'changed file')}, ${formatBytes(estimate.bytes)} at most, ${estimate.remove} to remove`,
        tar: `${count(estimate.files, 'file')}, ${formatBytes(estimate.bytes)}`,
      }[estimate.method]
      steps.push({
        bytes: estimate.bytes,
        detail: {
          ...detail,
          mode: spec.mode ?? 'create',
          presync: spec.presync ?? false,
          quiesce: spec.quiesce ?? 'none',
        },
        host: spec.to,
        id,
        async run({hosts, log, signal}) {
          const report = await copyVolume({...spec}, {hosts, log, signal})
          const restarted = [...report.stopped, ...report.stoppedAtDestination]
          const window = report.downtimeSeconds === undefined ? '' : ` (stopped ${report.downtimeSeconds.toFixed(1)} s)`
          return {
            ...report,
            summary: `${report.files} entries, ${formatBytes(report.bytes)} sent by ${METHOD_WORDS[report.method]}, ${report.verified ? 'verified equal' : `not verified: ${count(report.changedDuringCopy.length, 'entry')} changed at the source while copied`}${restarted.length > 0 ? `, ${restarted.join(', ')} restarted${window}` : ''}`,
          }
        },
        section: 'volumes',
        title: `${estimate.destination === 'unfinished' ? 'finish the copy of' : 'copy'} volume ${spec.name} from ${spec.from} to ${spec.to}${spec.as ? ` as ${spec.as}` : ''}: ${what} by ${METHOD_WORDS[estimate.method]}${spec.quiesce === 'stop' ? (spec.presync ? ' (its containers stopped for the final delta)' : ' (its containers stopped meanwhile)') : ''}; ${reach}${notKept}`,
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
