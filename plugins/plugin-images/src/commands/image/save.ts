import {Args, Flags} from '@oclif/core'
import {BaseCommand, hostFlag, openHosts, recipeHostFlags, UsageError} from '@transship/kit'
import {type ArchiveFormat, type Compression, requireCompressor} from '@transship/kit/archive'
import {checkImageOrId} from '@transship/kit/reference'
import {formatBytes, ProgressReporter} from '@transship/kit/ui'

import {checkOutputFile, outputChoice, saveImages, type SaveResult} from '../../image-save.js'

export default class ImageSave extends BaseCommand<typeof ImageSave> {
  static override args = {
    image: Args.string({description: 'Images to save (references or IDs).', ignoreStdin: true, required: true}),
  }
  static override description = `Save images of a host (the local engine, a recipe host, or ssh://user@host[:port]) into one archive, shared layers once, for \`transship image load\` or \`docker load\` elsewhere.

The file name chooses the layout and the compression, unless --format and --compress say otherwise:
  NAME.tar      a docker-archive, as the engine's own \`docker save\` writes it (Docker 25+ adds an OCI layout)
  NAME.oci.tar  an OCI image layout (index.json and blobs)
  .gz or .tgz, .zst, .bz2, .xz after it: gzip, zstd, bzip2 or xz (the last three need their commands)
--format docker+oci writes both layouts in one file, as Docker 25+ does: every engine loads it.

The archive is written to FILE.partial and renamed to FILE once it is complete and checked, so an interrupted save never leaves a file that looks finished. With -o - it goes to stdout (which must not be a terminal).`
  static override examples = [
    '<%= config.bin %> <%= command.id %> app:1 -o app-1.tar',
    '<%= config.bin %> <%= command.id %> app:1 app:2 -o apps.tar.zst',
    '<%= config.bin %> <%= command.id %> app:1 -o app-1.oci.tar.gz --host ssh://deploy@build.example.com',
    '<%= config.bin %> <%= command.id %> app:1 --format docker+oci --compress zstd --level 19 -o app-1.tar.zst',
    '<%= config.bin %> <%= command.id %> app:1 -o - | ssh edge transship image load -',
  ]
  static override flags = {
    ...recipeHostFlags,
    compress: Flags.string({
      description: 'Compression (default: from the file name; none for stdout).',
      options: ['bzip2', 'gzip', 'none', 'xz', 'zstd'],
    }),
    format: Flags.string({
      description: "Archive layout (default: from the file name; else the engine's own).",
      options: ['docker', 'docker+oci', 'oci'],
    }),
    host: hostFlag('save from'),
    level: Flags.integer({description: 'Compression level (gzip, bzip2 1–9; xz 0–9; zstd 1–22).'}),
    output: Flags.string({char: 'o', description: 'File to write, or - for stdout.', required: true}),
  }
  static override strict = false
  static override summary = 'Save images into an archive file.'

  async run(): Promise<SaveResult> {
    const {argv} = await this.parse(ImageSave)
    const refs = argv as string[]
    for (const ref of refs) checkImageOrId(ref)
    const file = this.flags.output
    const toStdout = file === '-'
    if (toStdout && process.stdout.isTTY) {
      throw new UsageError('refusing to write an image archive to a terminal', {
        suggestions: ['redirect it (-o - > app.tar, or into a pipe), or give a file: -o app.tar'],
      })
    }

    if (toStdout && this.jsonEnabled()) {
      throw new UsageError('--json and -o - both want stdout', {suggestions: ['give a file with -o, or drop --json']})
    }

    const options = {
      compression: this.flags.compress as Compression | undefined,
      format: this.flags.format as ArchiveFormat | undefined,
      level: this.flags.level,
    }
    // what cannot work is refused before any host is reached
    await requireCompressor(outputChoice(file, options).compression)
    if (!toStdout) await checkOutputFile(file)

    await using hosts = await openHosts(this.config, this.flags, [this.flags.host])
    const engine = await hosts.engine(this.flags.host, this.signal)
    const progress = new ProgressReporter({json: this.jsonEnabled()})
    let result: SaveResult
    try {
      result = await saveImages({...options, engine, file, progress, refs, signal: this.signal})
    } finally {
      progress.stop()
    }

    const {bytes, compression, format, images} = result
    const names = images.map((image) => image.tags.join(', ') || image.id.slice(0, 19)).join('; ')
    const what = `${format}${compression === 'none' ? '' : `, ${compression}`}`
    const line = `Saved ${images.length} image${images.length === 1 ? '' : 's'} (${names}) from ${this.flags.host} to ${
      toStdout ? 'stdout' : file
    }: ${what}, ${formatBytes(bytes)}`
    if (toStdout) this.logToStderr(line)
    else this.log(line)
    return {...result, host: this.flags.host}
  }
}
