import {UsageError} from '@transship/kit'
import {chmod, mkdir, mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'

import {resolveCredentials} from '../../../src/registry/credentials.js'

let dir: string
let bin: string

function auth(text: string): string {
  return Buffer.from(text).toString('base64')
}

async function dockerConfig(config: unknown): Promise<string> {
  const configDir = await mkdtemp(path.join(dir, 'docker-'))
  await writeFile(path.join(configDir, 'config.json'), JSON.stringify(config))
  return configDir
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'transship-creds-'))
  bin = path.join(dir, 'bin')
  await mkdir(bin)
  // a credential helper: knows one server, reports "not found" for helper.test, fails for broken.test
  const script = `#!/bin/sh
read server
case "$server" in
  fake.test:5000) echo '{"ServerURL":"fake.test:5000","Username":"helper-user","Secret":"helper-secret"}' ;;
  token.test) echo '{"ServerURL":"token.test","Username":"<token>","Secret":"refresh-me"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"hub-user","Secret":"hub-secret"}' ;;
  broken.test) echo 'keychain locked' >&2; exit 3 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`
  await writeFile(path.join(bin, 'docker-credential-fake'), script)
  await chmod(path.join(bin, 'docker-credential-fake'), 0o755)
})

describe('resolveCredentials', () => {
  it('takes the variables the recipe names', async () => {
    const env = {REG_PASS: 's3cret', REG_TOKEN: 'tok', REG_USER: 'ci'}
    expect(await resolveCredentials('r', {passwordEnv: 'REG_PASS', usernameEnv: 'REG_USER'}, {env})).toEqual({
      password: 's3cret',
      username: 'ci',
    })
    expect(await resolveCredentials('r', {passwordEnv: 'REG_PASS', username: 'bot'}, {env})).toEqual({
      password: 's3cret',
      username: 'bot',
    })
    expect(await resolveCredentials('r', {tokenEnv: 'REG_TOKEN'}, {env})).toEqual({identityToken: 'tok'})
  })

  it('names the unset variable, never a value', async () => {
    const error = await resolveCredentials(
      'r',
      {passwordEnv: 'REG_PASS', usernameEnv: 'REG_USER'},
      {env: {REG_USER: 'ci-user'}},
    ).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(UsageError)
    expect(error).toMatchObject({code: 'REGISTRY_CREDENTIALS_MISSING', details: {variable: 'REG_PASS'}})
    expect((error as Error).message).toMatch(/REG_PASS/)
    expect(JSON.stringify(error)).not.toMatch(/ci-user/)
  })

  it('reads auths in config.json (base64 user:pass, identity tokens, Docker Hub key)', async () => {
    const configDir = await dockerConfig({
      auths: {
        'https://index.docker.io/v1/': {auth: auth('hubber:hubpass')},
        'https://reg.example:5000': {auth: auth('me:pa:ss')},
        'tok.example': {identitytoken: 'id-token'},
      },
    })
    const options = {dockerConfigDir: configDir, env: {}}
    expect(await resolveCredentials('reg.example:5000', undefined, options)).toEqual({
      password: 'pa:ss',
      username: 'me',
    })
    expect(await resolveCredentials('docker.io', undefined, options)).toEqual({password: 'hubpass', username: 'hubber'})
    expect(await resolveCredentials('tok.example', undefined, options)).toEqual({identityToken: 'id-token'})
    expect(await resolveCredentials('other.example', undefined, options)).toBeUndefined()
    // $DOCKER_CONFIG is honoured; no config at all is anonymous
    expect(await resolveCredentials('tok.example', undefined, {env: {DOCKER_CONFIG: configDir}})).toEqual({
      identityToken: 'id-token',
    })
    expect(
      await resolveCredentials('tok.example', undefined, {dockerConfigDir: path.join(dir, 'none'), env: {}}),
    ).toBeUndefined()
  })

  it('asks credential helpers (credHelpers, then credsStore)', async () => {
    const env = {PATH: `${bin}:${process.env.PATH}`}
    const helpers = await dockerConfig({credHelpers: {'fake.test:5000': 'fake', 'token.test': 'fake'}})
    expect(await resolveCredentials('fake.test:5000', undefined, {dockerConfigDir: helpers, env})).toEqual({
      password: 'helper-secret',
      username: 'helper-user',
    })
    expect(await resolveCredentials('token.test', undefined, {dockerConfigDir: helpers, env})).toEqual({
      identityToken: 'refresh-me',
    })

    const store = await dockerConfig({auths: {'broken.test': {}}, credsStore: 'fake'})
    expect(await resolveCredentials('docker.io', undefined, {dockerConfigDir: store, env})).toEqual({
      password: 'hub-secret',
      username: 'hub-user',
    })
    expect(await resolveCredentials('nothing.test', undefined, {dockerConfigDir: store, env})).toBeUndefined()
    const error = await resolveCredentials('broken.test', undefined, {dockerConfigDir: store, env}).catch(
      (error_: unknown) => error_,
    )
    expect(error).toMatchObject({code: 'REGISTRY_CREDENTIAL_HELPER_FAILED'})
    expect((error as Error).message).toMatch(/docker-credential-fake.*exit status 3: keychain locked/)

    const missing = await dockerConfig({credsStore: 'absent'})
    const notInstalled = await resolveCredentials('x.test', undefined, {dockerConfigDir: missing, env}).catch(
      (error_: unknown) => error_,
    )
    expect(notInstalled).toMatchObject({code: 'REGISTRY_CREDENTIAL_HELPER_FAILED'})
    expect((notInstalled as Error).message).toMatch(/not installed/)
  })
})
