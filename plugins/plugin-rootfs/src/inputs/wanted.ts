/**
 * The inputs record a recipe entry asks for, computed at plan time without building: the mirror's Release
 * date (one small GET), the digest of the tarball or directory (one read of it).
 */
import {isTransshipError} from '@transship/kit'

import type {BuildRequest} from '../build.js'

import {DEFAULT_MIRROR} from '../source/bootstrap.js'
import {sourceDigest} from './content.js'
import {mirrorReleaseDate} from './mirror-release.js'
import {inputsRecord, type InputsRecord} from './record.js'

/** The record, or why it cannot be known before the build (then the image is built again). */
export type WantedInputs = {record: InputsRecord} | {unknown: string}

export async function wantedInputs(request: BuildRequest, signal: AbortSignal): Promise<WantedInputs> {
  const {input} = request
  if (input.kind === 'bootstrap') {
    const mirror = input.bootstrap.mirror ?? DEFAULT_MIRROR
    try {
      const release = await mirrorReleaseDate(mirror, input.bootstrap.suite, signal)
      return {record: inputsRecord(request, {release})}
    } catch (error) {
      if (signal.aborted || !isTransshipError(error)) throw error
      return {unknown: error.message}
    }
  }

  const content = await sourceDigest(input, signal)
  if (content === undefined) return {unknown: 'a tarball from stdin or a pipe is built every time'}
  return {record: inputsRecord(request, {content})}
}
