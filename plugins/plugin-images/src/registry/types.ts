import type {Readable} from 'node:stream'

/**
 * Where a registry is and how to trust it. Built from a recipe's `registries:` entry, or from the host part
 * of an image reference (`localhost:5000/app:1`) when no recipe names it.
 */
export interface RegistryEndpoint {
  /** PEM text of a CA certificate the registry's certificate is checked against (besides the system's) */
  ca?: string
  /** how the user names the registry: the recipe's name for it, else its host */
  name: string
  /**
   * try HTTPS, and fall back to plain HTTP when the server does not speak TLS (insecure registries given
   * without a scheme, and loopback hosts); the client remembers which worked
   */
  httpFallback?: boolean
  /** host[:port] as image references spell it, e.g. `localhost:5000`, `registry.example.com` (docker.io for Docker Hub) */
  host: string
  /**
   * plain HTTP, or HTTPS without checking the certificate, is allowed: only when the recipe says
   * `insecure: true`, and for localhost / 127.0.0.0/8 / ::1 (as Docker does)
   */
  insecure: boolean
  /** where the API is: `https://host[:port]` (or http://), plus a path prefix if the recipe gave one */
  url: string
}

/** Credentials, once resolved. Never printed, logged, put in --json output or in an error. */
export type RegistryCredentials = {identityToken: string} | {password: string; username: string}

export interface ManifestResult {
  body: Buffer
  /** the registry's Docker-Content-Digest, checked against sha256 of the body */
  digest: string
  mediaType: string
}

export interface BlobUploadOptions {
  /** called as bytes are sent (for progress bars) */
  onBytes?: (bytes: number) => void
  signal?: AbortSignal
}

/**
 * A thin client of the OCI Distribution API for one registry. Authentication (basic, or bearer tokens from
 * the realm a 401 names, per repository scope) is handled inside. Failures are TransshipErrors: AuthError
 * (401 after authenticating, with a hint; 403 denied), UnreachableError (refused, DNS, TLS: after retries),
 * and registry errors with the registry's own error code in `details`.
 */
export interface RegistryClient {
  readonly endpoint: RegistryEndpoint
  /** `GET /v2/`: reachable and authenticated (rejects with what is wrong) */
  ping(signal?: AbortSignal): Promise<void>
  /** `GET /v2/<repo>/manifests/<ref>` accepting OCI and Docker manifests and indexes; undefined on 404 */
  getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<ManifestResult | undefined>
  /** `HEAD /v2/<repo>/manifests/<ref>`: digest, media type and size; undefined on 404 */
  headManifest(
    repository: string,
    reference: string,
    signal?: AbortSignal,
  ): Promise<undefined | {digest: string; mediaType: string; size: number}>
  /** `PUT /v2/<repo>/manifests/<ref>` with exactly these bytes; resolves to the digest the registry reports */
  putManifest(
    repository: string,
    reference: string,
    body: Buffer,
    mediaType: string,
    signal?: AbortSignal,
  ): Promise<string>
  /** `HEAD /v2/<repo>/blobs/<digest>`: its size, or undefined when the repository does not have it */
  headBlob(repository: string, digest: string, signal?: AbortSignal): Promise<number | undefined>
  /** `GET /v2/<repo>/blobs/<digest>` (redirects followed), streamed; checked against the digest as it ends */
  getBlob(repository: string, digest: string, signal?: AbortSignal): Promise<Readable>
  /** cross-repository mount (`POST …/blobs/uploads/?mount=<digest>&from=<repo>`); false when the registry declined */
  mountBlob(repository: string, digest: string, from: string, signal?: AbortSignal): Promise<boolean>
  /**
   * Uploads a blob (`POST` then `PATCH` chunks then `PUT ?digest=`), retried with backoff; on a retry the
   * upload resumes at the offset the registry reports (`Range`) when it supports chunked uploads, else it
   * restarts. `body(offset)` opens the blob's content from `offset`.
   */
  uploadBlob(
    repository: string,
    blob: {digest: string; size: number},
    body: (offset: number) => Readable,
    options?: BlobUploadOptions,
  ): Promise<void>
  /** closes idle connections (the client is unusable afterwards) */
  close?(): Promise<void>
  /** `GET /v2/_catalog`, every page */
  catalog(signal?: AbortSignal): AsyncIterable<string>
  /** `GET /v2/<repo>/tags/list`, every page */
  tags(repository: string, signal?: AbortSignal): AsyncIterable<string>
}
