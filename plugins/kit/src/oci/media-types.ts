/**
 * The media types of OCI images and of Docker's schema 2 (what registries serve, engines save and archives
 * name), in one place.
 */
export const MEDIA_TYPES = {
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociNondistributableLayerGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
} as const

/** What a registry is asked for when a manifest is fetched: an image manifest or an index, OCI or Docker. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
]

/** Whether `mediaType` is a list of manifests (an OCI image index or a Docker manifest list). */
export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerManifestList
}

/** Docker's layer media types and their OCI equivalents (OCI manifests may only use the latter). */
const OCI_LAYER_TYPES: Record<string, string> = {
  [MEDIA_TYPES.dockerLayer]: MEDIA_TYPES.ociLayer,
  [MEDIA_TYPES.dockerLayerGzip]: MEDIA_TYPES.ociLayerGzip,
  [MEDIA_TYPES.dockerLayerZstd]: MEDIA_TYPES.ociLayerZstd,
  [MEDIA_TYPES.dockerForeignLayerGzip]: MEDIA_TYPES.ociNondistributableLayerGzip,
}

/** The OCI media type for a layer media type (Docker's are mapped, OCI ones kept). */
export function ociLayerMediaType(mediaType: string): string {
  return OCI_LAYER_TYPES[mediaType] ?? mediaType
}
