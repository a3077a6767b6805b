import type {EngineClient, Reference, SectionProvider, Step} from '@transship/kit'

import {EngineError, ExitCode, TransshipError, UsageError} from '@transship/kit'
import path from 'node:path'
import {z} from 'zod'

import type {VerifyConfig} from './config/types.js'

import {loadVerifyConfig} from './config/load.js'
import {SCHEMA_VERSION, verifyConfigSchema} from './config/schema.js'
import {checksDigest, hasPassed, recordPass} from './passed-checks.js'
import {formatReport, passed} from './report/text.js'
import {resolveEnvFile} from './run/run-options.js'
import {runVerification} from './run/run-verification.js'

export const verifyEntrySchema = z
  .strictObject({
    config: z
      .string()
      .min(1)
      .optional()
      .describe("A test file in container-structure-test's v2 schema (relative to the recipe's directory)."),
    image: z.string().min(1).describe('The image to check, e.g. app:1.'),
    on: z.array(z.string().min(1)).min(1).optional().describe('Hosts to check it on (default: [local]).'),
    tests: verifyConfigSchema
      .extend({schemaVersion: verifyConfigSchema.shape.schemaVersion.optional()})
      .optional()
      .describe('The checks written in the recipe, in the same schema as a test file (schemaVersion may be left out).'),
  })
  .refine((entry) => (entry.config === undefined) !== (entry.tests === undefined), {
    message: 'give the checks as a test file (config) or in the recipe (tests), one of the two',
  })

export const verifySchema = z
  .array(verifyEntrySchema)
  .describe(
    'Checks run on images where they landed, after every copy, tag and build of the recipe; run again when the image or the checks change, until they pass.',
  )

export type VerifyEntry = z.infer<typeof verifyEntrySchema>

export const verifySection: SectionProvider<VerifyEntry[]> = {
  // checks see what the builds, copies, tags and volume moves of the recipe will leave
  after: ['images', 'rootfs', 'volumes'],
  async plan(entries, context) {
    const steps: Step[] = []
    for (const entry of entries) {
      const file = entry.config === undefined ? undefined : path.resolve(context.recipe.dir, entry.config)
      // read now: a broken test file is a recipe error, before anything runs
      const config: VerifyConfig = await resolveEnvFile(
        file ? await loadVerifyConfig(file) : {...entry.tests!, schemaVersion: SCHEMA_VERSION},
        file ? path.dirname(file) : context.recipe.dir,
      )
      const checks = checksDigest(config)
      const source = entry.config ?? 'checks in the recipe'
      for (const host of entry.on ?? ['local']) {
        // an image that earlier steps make or change is checked after them; one already there, unless these
        // checks passed on it before
        const planned = context.planned.image(host, entry.image)
        // remembered by the engine's ID: the same engine under another name has passed them too
        const target = await context.hosts.host(host, context.signal)
        const imageId = planned ? planned.id : (await requireImage(target.engine, entry.image, host, context.signal)).Id
        if (imageId && (await hasPassed(target.id, imageId, checks))) continue

        steps.push({
          afterSections: ['images', 'rootfs', 'volumes'],
          dependsOn: planned?.steps,
          detail: {checks, config: file ?? 'recipe', host, image: entry.image},
          host,
          id: `verify:${host}:${entry.image}:${source}`,
          async run({hosts, log, signal}) {
            const target = await hosts.host(host, signal)
            const report = await runVerification(target.engine, entry.image, config, {host, log, signal})
            if (!passed(report)) {
              throw new TransshipError('VERIFY_FAILED', ExitCode.Verify, formatReport(report).join('\n'), {
                details: {report},
              })
            }

            try {
              await recordPass(target.id, report.imageId, checks, report.results.length)
            } catch (error) {
              if (signal.aborted) throw error
              // not remembered: the next apply runs these checks again, nothing worse
              log.warn(`could not remember that the checks passed: ${(error as Error).message}`)
            }

            return {report, summary: `${report.results.length} checks passed`}
          },
          section: 'verify',
          title: `verify ${entry.image}${planned && planned.id === undefined ? ' (to be built)' : ''} on ${host} (${source})`,
        })
      }
    }

    return steps
  },
  plugin: '@transship/plugin-verify',
  references(entries): Reference[] {
    return entries.flatMap((entry, index) =>
      (entry.on ?? []).map((name, position) => ({kind: 'host' as const, name, path: [index, 'on', position]})),
    )
  },
  schema: verifySchema,
  section: 'verify',
}

/** The image's ID on the host; a missing image is a recipe error, found before anything runs. */
async function requireImage(
  engine: EngineClient,
  image: string,
  host: string,
  signal: AbortSignal,
): Promise<{Id: string}> {
  try {
    return await engine.json<{Id: string}>({path: `/images/${encodeURIComponent(image)}/json`, signal})
  } catch (error) {
    if (error instanceof EngineError && error.status === 404) {
      throw new UsageError(`image ${image} is not on host "${host}", and no step of the recipe brings it there`, {
        cause: error,
        code: 'IMAGE_NOT_FOUND',
        details: {host, image},
        suggestions: [`copy it there in the recipe (images: [{ref: ${image}, copy: [${host}]}]) or build it (rootfs)`],
      })
    }

    throw error
  }
}
