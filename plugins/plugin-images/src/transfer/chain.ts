import {createHash} from 'node:crypto'

/** The chain ID of `diffID` stacked on the layers whose chain ID is `previous` (undefined for a base layer). */
export function nextChainId(previous: string | undefined, diffID: string): string {
  return previous ? `sha256:${createHash('sha256').update(`${previous} ${diffID}`).digest('hex')}` : diffID
}

/**
 * Chain IDs of a layer stack, as Docker computes them: the first is the first diffID, each next one is
 * sha256 of "<previous chainID> <diffID>". A layer can be reused on a host only if its whole chain is there.
 */
export function chainIds(diffIDs: readonly string[]): string[] {
  const chains: string[] = []
  for (const diffID of diffIDs) chains.push(nextChainId(chains.at(-1), diffID))
  return chains
}
