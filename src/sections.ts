import type {Interfaces} from '@oclif/core'
import type {Logger, SectionProvider} from '@transship/kit'

/** The recipe sections the installed plugins own, collected through the `transship:sections` hook. */
export async function sectionProviders(config: Interfaces.Config, log: Logger): Promise<SectionProvider[]> {
  const result = await config.runHook('transship:sections', {})
  for (const failure of result.failures) {
    log.warn(`plugin ${failure.plugin.name} failed to describe its recipe section: ${failure.error.message}`)
  }

  // hooks answer in the order they finish: the declared plugins' order (then others by name) keeps the schema
  // and messages the same every run
  const declared = config.pjson.oclif.plugins ?? []
  const rank = (name: string) => (declared.includes(name) ? declared.indexOf(name) : declared.length)
  const providers = result.successes
    .toSorted(
      (a, b) =>
        rank(a.plugin.name) - rank(b.plugin.name) ||
        (a.plugin.name < b.plugin.name ? -1 : a.plugin.name > b.plugin.name ? 1 : 0),
    )
    .flatMap((success) => success.result)
  const seen = new Map<string, string>()
  for (const provider of providers) {
    const owner = seen.get(provider.section)
    if (owner)
      log.warn(`section "${provider.section}" is claimed by both ${owner} and ${provider.plugin}; using ${owner}`)
    else seen.set(provider.section, provider.plugin)
  }

  return providers.filter((provider) => seen.get(provider.section) === provider.plugin)
}
