// Writes the catalogue of error codes into the README (npm run readme:error-codes).
import {readFile, writeFile} from 'node:fs/promises'

import {withErrorCodeTable} from '../helpers/error-code-table.js'

const readme = new URL('../../README.md', import.meta.url)
await writeFile(readme, withErrorCodeTable(await readFile(readme, 'utf8')))
