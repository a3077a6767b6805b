/**
 * The OCI image spec's documents as transship reads and writes them: descriptors, image manifests, indexes
 * (Docker's manifest lists have the same shape) and the parts of an image config it uses.
 */

/** `io.containerd.image.name`: the full name (docker.io/library/app:1) Docker and containerd give an image. */
export const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name'
/** `org.opencontainers.image.ref.name`: an image's name in an OCI layout (a tag, as skopeo writes it). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name'

export interface Platform {
  architecture: string
  os: string
  'os.version'?: string
  variant?: string
}

export interface Descriptor {
  annotations?: Record<string, string>
  /** sha256:… */
  digest: string
  mediaType: string
  platform?: Platform
  size: number
}

export interface ImageManifest {
  annotations?: Record<string, string>
  config: Descriptor
  layers: Descriptor[]
  mediaType?: string
  schemaVersion: 2
}

export interface ImageIndex {
  annotations?: Record<string, string>
  manifests: Descriptor[]
  mediaType?: string
  schemaVersion: 2
}

/** A descriptor as read from a file, an archive or a registry: nothing is known to be there yet. */
export type ParsedDescriptor = Omit<Partial<Descriptor>, 'digest' | 'platform'> & {
  digest?: unknown
  platform?: Partial<Platform>
}

/** A manifest or index as read, before its fields are checked (one type for both: some writers omit mediaType). */
export interface ParsedManifest {
  annotations?: Record<string, string>
  config?: ParsedDescriptor
  layers?: ParsedDescriptor[]
  manifests?: null | ParsedDescriptor[]
  mediaType?: string
}

/** The parts of an image config transship reads. */
export interface ImageConfig {
  architecture?: string
  config?: {Labels?: null | Record<string, string>}
  os?: string
  rootfs?: {diff_ids?: unknown}
  variant?: string
}

/** `os/architecture[/variant]` of a descriptor's platform, or `unknown`. */
export function platformOf(descriptor: {platform?: Partial<Platform>}): string {
  const {platform} = descriptor
  return platform ? [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/') : 'unknown'
}
