import {EngineError, UnreachableError} from '@transship/kit'
import {Readable} from 'node:stream'
import {afterEach, describe, expect, it} from 'vitest'

import {HttpEngineClient, MAX_API_VERSION} from '../../../src/engine/client.js'
import {unixSocketTransport} from '../../../src/engine/transport.js'
import {startFakeEngine} from '../../helpers/fake-engine.js'

let engine: Awaited<ReturnType<typeof startFakeEngine>> | undefined
afterEach(async () => {
  await engine?.close()
  engine = undefined
})

describe('HttpEngineClient', () => {
  it('negotiates the API version from /_ping and prefixes requests with it', async () => {
    engine = await startFakeEngine({
      apiVersion: '1.41',
      routes: {'GET /images/json': (_request, response) => response.end('[]')},
    })
    const client = await HttpEngineClient.connect('local', unixSocketTransport(engine.socketPath))
    expect(client.apiVersion).toBe('1.41')
    expect(await client.json({path: '/images/json'})).toEqual([])
    expect(engine.requests).toEqual(['GET /_ping', 'GET /v1.41/images/json'])
  })

  it('speaks its newest known version to a newer engine', async () => {
    engine = await startFakeEngine({apiVersion: '1.99'})
    const client = await HttpEngineClient.connect('local', unixSocketTransport(engine.socketPath))
    expect(client.apiVersion).toBe(MAX_API_VERSION)
  })

  it('refuses an engine older than Docker 20.10', async () => {
    engine = await startFakeEngine({apiVersion: '1.40'})
    await expect(HttpEngineClient.connect('old', unixSocketTransport(engine.socketPath))).rejects.toThrow(/needs 1.41/)
  })

  it('classifies error replies by status and keeps the engine message', async () => {
    engine = await startFakeEngine({})
    const client = await HttpEngineClient.connect('local', unixSocketTransport(engine.socketPath))
    const error = await client.json({path: '/images/nope/json'}).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(EngineError)
    expect((error as EngineError).status).toBe(404)
    expect((error as EngineError).code).toBe('ENGINE_NOT_FOUND')
    expect((error as EngineError).message).toContain('page not found')
  })

  it('turns an in-band error of a streamed reply (HTTP 200) into an EngineError', async () => {
    engine = await startFakeEngine({
      routes: {
        'POST /images/load'(request, response) {
          request.resume()
          request.on('end', () => {
            response.write('{"stream":"Loading layer"}\n')
            response.end('{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\n')
          })
        },
      },
    })
    const client = await HttpEngineClient.connect('edge', unixSocketTransport(engine.socketPath))
    const seen: string[] = []
    const consume = async () => {
      for await (const message of client.messages({
        body: Readable.from([Buffer.alloc(1000)]),
        method: 'POST',
        path: '/images/load',
      })) {
        seen.push(String(message.stream))
      }
    }

    await expect(consume()).rejects.toThrow('edge: unexpected EOF')
    expect(seen).toEqual(['Loading layer'])
  })

  it('streams a request body with backpressure and counts every byte', async () => {
    let received = 0
    engine = await startFakeEngine({
      routes: {
        'POST /images/load'(request, response) {
          request.on('data', (chunk: Buffer) => {
            received += chunk.length
          })
          request.on('end', () => response.end('{"stream":"Loaded image: x:1\\n"}\n'))
        },
      },
    })
    const client = await HttpEngineClient.connect('local', unixSocketTransport(engine.socketPath))
    const chunks = Array.from({length: 64}, () => Buffer.alloc(1024 * 1024, 1))
    const messages = []
    for await (const message of client.messages({body: Readable.from(chunks), method: 'POST', path: '/images/load'})) {
      messages.push(message)
    }

    expect(received).toBe(64 * 1024 * 1024)
    expect(messages).toHaveLength(1)
  })

  it('reports a missing socket as unreachable, with a suggestion', async () => {
    const error = await HttpEngineClient.connect('ghost', unixSocketTransport('/nonexistent/docker.sock')).catch(
      (error_: unknown) => error_,
    )
    expect(error).toBeInstanceOf(UnreachableError)
    expect((error as UnreachableError).code).toBe('ENGINE_UNREACHABLE')
    expect((error as UnreachableError).message).toContain('unix:///nonexistent/docker.sock')
    expect((error as UnreachableError).exit).toBe(3)
  })

  it('stops a request when its signal aborts', async () => {
    engine = await startFakeEngine({routes: {'GET /events'() {}}})
    const client = await HttpEngineClient.connect('local', unixSocketTransport(engine.socketPath))
    const controller = new AbortController()
    const pending = client.stream({path: '/events', signal: controller.signal})
    setTimeout(() => controller.abort(new Error('stop')), 50)
    await expect(pending).rejects.toThrow('stop')
  })
})
