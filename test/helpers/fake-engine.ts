import {mkdtemp, rm} from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'

export type Route = (request: http.IncomingMessage, response: http.ServerResponse) => unknown

export type FakeEngine = Awaited<ReturnType<typeof startFakeEngine>>

/** A fake Docker Engine on a unix socket: `/_ping` answers with `apiVersion`; other paths go to `routes`. */
export async function startFakeEngine(options: {apiVersion?: string; routes?: Record<string, Route>}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'transship-fake-engine-'))
  const socketPath = path.join(dir, 'docker.sock')
  const requests: string[] = []
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://engine')
    requests.push(`${request.method} ${url.pathname}${url.search}`)
    if (url.pathname === '/_ping') {
      response.setHeader('API-Version', options.apiVersion ?? '1.41')
      response.end('OK')
      return
    }

    const route = options.routes?.[`${request.method} ${url.pathname.replace(/^\/v[\d.]+/, '')}`]
    if (route) {
      // a route that fails answers 500 with its message, as an engine does
      Promise.resolve(route(request, response)).catch((error: unknown) => {
        response.statusCode = 500
        response.end(JSON.stringify({message: String(error)}))
      })
      return
    }

    response.statusCode = 404
    response.setHeader('content-type', 'application/json')
    response.end(JSON.stringify({message: `page not found: ${url.pathname}`}))
  })
  await new Promise<void>((resolve) => {
    server.listen(socketPath, resolve)
  })
  return {
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => {
        server.close(resolve)
      })
      await rm(dir, {force: true, recursive: true})
    },
    requests,
    socketPath,
  }
}
