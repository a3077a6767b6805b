import {formatRecipeIssue, RecipeError, type SectionProvider} from '@transship/kit'
import {relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'

import {loadRecipe, parseRecipe, recipeContext} from '../../../src/recipe/load.js'
import {failure} from '../../helpers/failure.js'
import {imagesProvider, pushProvider, tagsProvider} from './fake-providers.js'

const dir = relative(process.cwd(), fileURLToPath(new URL('../../fixtures/recipes', import.meta.url)))
const fixture = (name: string) => `${dir}/${name}`

/** The error loading the fixture `name` fails with. */
async function loadFailure(
  name: string,
  providers: SectionProvider<unknown>[] = [imagesProvider],
): Promise<RecipeError> {
  return failure(loadRecipe(fixture(name), providers), RecipeError)
}

/** The one-line messages of a recipe that fails, without the fixture directory. */
async function messages(name: string, providers: SectionProvider<unknown>[] = [imagesProvider]): Promise<string[]> {
  const error = await loadFailure(name, providers)
  return error.issues.map((issue) => formatRecipeIssue(issue).slice(dir.length + 1))
}

function parseFailure(text: string, providers: SectionProvider<unknown>[] = [imagesProvider]): string[] {
  try {
    parseRecipe(text, {file: 'r.yaml', path: '/tmp/r.yaml'}, providers)
  } catch (error) {
    expect(error).toBeInstanceOf(RecipeError)
    return (error as RecipeError).issues.map((issue) => formatRecipeIssue(issue))
  }

  throw new Error('the recipe parsed without error')
}

describe('loadRecipe: valid recipes', () => {
  it('loads a full recipe, adding the implicit local host', async () => {
    const recipe = await loadRecipe(fixture('valid.yaml'), [imagesProvider])
    expect(recipe.file).toBe(fixture('valid.yaml'))
    expect(recipe.path).toBe(fileURLToPath(new URL('../../fixtures/recipes/valid.yaml', import.meta.url)))
    expect(recipe.dir).toBe(fileURLToPath(new URL('../../fixtures/recipes', import.meta.url)))
    expect(recipe.version).toBe(1)
    expect(Object.keys(recipe.hosts)).toEqual(['build', 'edge', 'my.mirror', 'local'])
    expect(recipe.hosts.local).toEqual({engine: 'local'})
    expect(recipe.hosts.edge).toEqual({
      acceptNewHostKey: false,
      engine: '/var/run/docker.sock',
      knownHosts: './known_hosts',
      ssh: 'deploy@edge.example.com:2222',
    })
    expect(recipe.registries.corp).toEqual({
      auth: {passwordEnv: 'CORP_REGISTRY_PASSWORD', username: 'ci'},
      url: 'registry.example.com',
    })
    expect(recipe.sections).toEqual([
      {
        path: 'images',
        provider: imagesProvider,
        value: [{copy: ['edge', 'local'], ref: 'corp/debian:12'}, {ref: 'corp/app:1'}],
      },
    ])
    expect(recipeContext(recipe)).toEqual({
      dir: recipe.dir,
      file: recipe.file,
      hosts: ['build', 'edge', 'my.mirror', 'local'],
      registries: ['corp', 'lab'],
      registrySpecs: {
        corp: {
          auth: {passwordEnv: 'CORP_REGISTRY_PASSWORD', username: 'ci'},
          ca: undefined,
          url: 'registry.example.com',
        },
        lab: {ca: undefined, insecure: true, url: 'http://10.0.0.5:5000/mirror'},
      },
    })
  })

  it('loads `version: 1` alone', async () => {
    const recipe = await loadRecipe(fixture('minimal.yaml'), [imagesProvider])
    expect(recipe.hosts).toEqual({local: {engine: 'local'}})
    expect(recipe.registries).toEqual({})
    expect(recipe.sections).toEqual([])
  })

  it('keeps a host named local that the recipe defines', () => {
    const recipe = parseRecipe(
      'version: 1\nhosts:\n  local: { engine: unix:///run/docker.sock }\n',
      {file: 'r.yaml', path: '/tmp/r.yaml'},
      [],
    )
    expect(recipe.hosts).toEqual({local: {engine: 'unix:///run/docker.sock'}})
  })

  it('follows YAML merge keys', async () => {
    const recipe = await loadRecipe(fixture('merge.yaml'), [imagesProvider])
    expect(recipe.hosts.edge2).toEqual({
      engine: '/var/run/docker.sock',
      knownHosts: './known_hosts',
      ssh: 'deploy@edge2',
    })
  })

  it('lists sections in provider order, only those present', () => {
    const recipe = parseRecipe(
      'version: 1\ntags: a\nregistries: { hub: { url: docker.io } }\npush: [{kind: push, ref: a, to: hub}]\n',
      {file: 'r.yaml', path: '/tmp/r.yaml'},
      [imagesProvider, pushProvider, tagsProvider],
    )
    expect(recipe.sections.map((s) => s.provider.section)).toEqual(['push', 'tags'])
  })
})

describe('loadRecipe: errors, one line each with file:line:col', () => {
  it('reports an unknown top-level key with a suggestion', async () => {
    expect(await messages('unknown-key-top.yaml')).toEqual([
      'unknown-key-top.yaml:4:1 imgaes: unknown key "imgaes" (did you mean "images"?)',
    ])
  })

  it('reports unknown nested keys at the key, with suggestions, in the core and in sections', async () => {
    expect(await messages('unknown-key-nested.yaml')).toEqual([
      'unknown-key-nested.yaml:4:5 hosts.edge.sssh: unknown key "sssh" (did you mean "ssh"?)',
      'unknown-key-nested.yaml:8:5 images[0].copi: unknown key "copi" (did you mean "copy"?)',
    ])
  })

  it('reports wrong types at the value', async () => {
    expect(await messages('wrong-type.yaml')).toEqual([
      'wrong-type.yaml:5:23 hosts.edge.acceptNewHostKey: expected true or false, got the string "yes"',
      'wrong-type.yaml:7:10 images[0].ref: expected a string, got the number 12',
    ])
  })

  it('reports a reference to an unknown host', async () => {
    expect(await messages('unknown-host.yaml')).toEqual([
      'unknown-host.yaml:7:18 images[0].copy[1]: unknown host "edg" (known: build, edge, local)',
    ])
  })

  it('reports YAML syntax errors with their position', async () => {
    expect(await messages('yaml-syntax.yaml')).toEqual([
      'yaml-syntax.yaml:4:1: invalid YAML: flow map in block collection must be sufficiently indented and end with a }',
    ])
  })

  it('reports a missing file, with a suggestion', async () => {
    const error = await loadFailure('valdi.yaml')
    expect(error.code).toBe('RECIPE_NOT_FOUND')
    expect(error.message).toBe(`${fixture('valdi.yaml')}: no such file`)
    expect(error.suggestions[0]).toBe(`did you mean ${fixture('valid.yaml')}?`)
  })

  it('reports a directory given as the recipe', async () => {
    const error = await loadFailure('.')
    expect(error.code).toBe('RECIPE_NOT_A_FILE')
    expect(error.message).toBe(`${fixture('.')}: is a directory, not a recipe file`)
  })

  it('reports an empty file', async () => {
    expect(await messages('empty.yaml')).toEqual(['empty.yaml: the recipe is empty: start with `version: 1`'])
  })

  it('reports a document that is not a map', async () => {
    expect(await messages('not-a-map.yaml')).toEqual([
      'not-a-map.yaml:1:1: a recipe is a map of keys starting with `version: 1`, not a list',
    ])
  })

  it('reports an unsupported version, saying which are supported', async () => {
    expect(await messages('wrong-version.yaml')).toEqual([
      'wrong-version.yaml:1:10 version: 2 is not supported (supported versions: 1)',
    ])
  })

  it('reports a missing version at the top of the document', async () => {
    expect(await messages('missing-version.yaml')).toEqual([
      'missing-version.yaml:1:1: missing required key "version": recipes start with `version: 1`',
    ])
  })

  it('refuses a password written in the recipe', async () => {
    expect(await messages('password.yaml')).toEqual([
      'password.yaml:7:7 registries.corp.auth.password: secrets are not written in recipes: name an environment variable with passwordEnv',
    ])
  })

  it('reports a known section that no installed plugin handles', async () => {
    expect(await messages('no-plugin.yaml')).toEqual([
      'no-plugin.yaml:4:1 volumes: no installed plugin handles section "volumes"',
    ])
  })

  it('reports a duplicate key', async () => {
    expect(await messages('duplicate-key.yaml')).toEqual([
      'duplicate-key.yaml:5:5 hosts.edge.ssh: duplicate key "ssh" (first on line 4)',
    ])
  })

  it('refuses engine: local on a host reached over ssh', async () => {
    expect(await messages('ssh-engine-local.yaml')).toEqual([
      `ssh-engine-local.yaml:5:13 hosts.edge.engine: "local" is this machine's engine and cannot be reached over ssh: give the remote socket path (default /var/run/docker.sock)`,
    ])
  })

  it('refuses a file whose aliases expand too much', async () => {
    expect(await messages('billion-laughs.yaml')).toEqual([
      'billion-laughs.yaml: its anchors and aliases expand too much (more than 100 aliases): refused',
    ])
  })

  it('reports every issue at once, sorted by line', async () => {
    const error = await loadFailure('many-errors.yaml')
    expect(error.code).toBe('RECIPE_INVALID')
    expect(error.issues.map((issue) => formatRecipeIssue(issue).slice(dir.length + 1))).toEqual([
      'many-errors.yaml:3:3 hosts["My Host"]: host names use lowercase letters, digits, ".", "_" and "-", and start with a letter or digit',
      'many-errors.yaml:6:19 hosts.edge.identityFile: must not be empty',
      'many-errors.yaml:8:3 registries.corp: missing required key "url"',
      'many-errors.yaml:9:26 registries.corp.auth.usernameEnv: the string "1BAD" is not an environment variable name (letters, digits and "_", not starting with a digit)',
      'many-errors.yaml:9:32 registries.corp.auth.token: secrets are not written in recipes: name an environment variable with tokenEnv',
      'many-errors.yaml:11:5 images[0]: missing required key "ref"',
      'many-errors.yaml:13:11 images[1].copy: expected a list, got the string "edge"',
    ])
    expect(error.message).toBe(error.issues.map((issue) => formatRecipeIssue(issue)).join('\n'))
  })
})

describe('parseRecipe: more cases', () => {
  it('points at the key of an empty value', () => {
    expect(parseFailure('version: 1\nhosts:\n')).toEqual(['r.yaml:2:1 hosts: expected a map, got an empty value'])
  })

  it('checks the host fields', () => {
    expect(
      parseFailure(
        [
          'version: 1',
          'hosts:',
          '  a: { ssh: "user@host with spaces" }',
          '  b: { engine: tcp://1.2.3.4:2375 }',
          '  c: { identityFile: ~/.ssh/id_ed25519 }',
          '  d: { ssh: "[::1]:2222", engine: unix:///run/docker.sock, acceptNewHostKey: true }',
        ].join('\n'),
      ),
    ).toEqual([
      'r.yaml:3:13 hosts.a.ssh: expected user@host[:port] or an ~/.ssh/config host alias, got the string "user@host with spaces"',
      'r.yaml:4:16 hosts.b.engine: expected "local", an absolute socket path such as /var/run/docker.sock, or unix:///path, got the string "tcp://1.2.3.4:2375"',
      'r.yaml:5:22 hosts.c.identityFile: "identityFile" is only used with "ssh"',
    ])
  })

  it('checks ssh and engine values with the host grammar: ports in range, users not empty', () => {
    expect(
      parseFailure(
        [
          'version: 1',
          'hosts:',
          '  a: { ssh: "deploy@edge:0" }',
          '  b: { ssh: "-oProxyCommand=x" }',
          '  c: { ssh: "deploy@edge:65536" }',
          '  d: { ssh: edge, engine: "/run/docker sock" }',
        ].join('\n'),
      ),
    ).toEqual([
      'r.yaml:3:13 hosts.a.ssh: invalid SSH destination "deploy@edge:0": port 0 is out of range (1-65535)',
      'r.yaml:4:13 hosts.b.ssh: invalid SSH destination "-oProxyCommand=x": "-oProxyCommand=x" is not a valid host name (letters, digits, ".", "-" and "_" only)',
      'r.yaml:5:13 hosts.c.ssh: invalid SSH destination "deploy@edge:65536": port 65536 is out of range (1-65535)',
      'r.yaml:6:27 hosts.d.engine: engine: "/run/docker sock" is not a valid engine address: it contains spaces or control characters',
    ])
  })

  it('checks the registry fields', () => {
    expect(
      parseFailure(
        [
          'version: 1',
          'registries:',
          '  a: { url: "ftp://registry.example.com" }',
          '  b: { url: "https://registry.example.com:5000/v2", auth: { passwordEnv: P, tokenEnv: T } }',
          '  c: { url: "registry example" }',
          '  d: { url: r.example.com, auth: { username: ci, usernameEnv: U, pasword: x } }',
        ].join('\n'),
      ),
    ).toEqual([
      'r.yaml:3:13 registries.a.url: only https:// or http:// may prefix a registry address, got the string "ftp://registry.example.com"',
      'r.yaml:4:87 registries.b.auth.tokenEnv: give "passwordEnv" or "tokenEnv", not both',
      'r.yaml:5:13 registries.c.url: expected a registry address such as registry.example.com[:port][/path], got the string "registry example"',
      'r.yaml:6:63 registries.d.auth.usernameEnv: give "username" or "usernameEnv", not both',
      'r.yaml:6:66 registries.d.auth.pasword: unknown key "pasword" (did you mean "passwordEnv"?)',
    ])
  })

  it('reports an unknown registry, and all references when the hosts section is broken', () => {
    expect(
      parseFailure(
        [
          'version: 1',
          'hosts:',
          '  edge: { ssh: 12 }',
          'registries:',
          '  hub: { url: docker.io }',
          'images:',
          '  - { ref: a, copy: [edge] }',
          'push:',
          '  - { kind: push, ref: a, to: hbu }',
          '  - { kind: pull, ref: a, from: hub }',
        ].join('\n'),
        [imagesProvider, pushProvider],
      ),
    ).toEqual([
      'r.yaml:3:16 hosts.edge.ssh: expected a string, got the number 12',
      'r.yaml:9:31 push[0].to: unknown registry "hbu" (known: hub)',
    ])
  })

  it('says when no registries are defined', () => {
    expect(parseFailure('version: 1\npush: [{ kind: pull, ref: a, from: hub }]\n', [pushProvider])).toEqual([
      'r.yaml:2:36 push[0].from: unknown registry "hub" (no registries are defined)',
    ])
  })

  it('reports the branch of a discriminated union, or the discriminator values', () => {
    expect(
      parseFailure('version: 1\npush:\n  - { kind: push, ref: a }\n  - { kind: shove, ref: a }\n', [pushProvider]),
    ).toEqual([
      'r.yaml:3:5 push[0]: missing required key "to"',
      'r.yaml:4:13 push[1].kind: expected one of "push", "pull", got the string "shove"',
    ])
  })

  it('reports a value that matches no form of a plain union', () => {
    expect(parseFailure('version: 1\ntags: 3\n', [tagsProvider])).toEqual([
      'r.yaml:2:7 tags: expected a string or a list, got the number 3',
    ])
    expect(parseFailure('version: 1\ntags: [a, 3]\n', [tagsProvider])).toEqual([
      'r.yaml:2:11 tags[1]: expected a string, got the number 3',
    ])
  })

  it('quotes keys that are not identifiers', () => {
    expect(parseFailure('version: 1\nhosts:\n  "a b": {}\n  "1x": { nope: 1 }\n')).toEqual([
      'r.yaml:3:3 hosts["a b"]: host names use lowercase letters, digits, ".", "_" and "-", and start with a letter or digit',
      'r.yaml:4:11 hosts["1x"].nope: unknown key "nope" (allowed: acceptNewHostKey, access, description, engine, helperImage, identityFile, knownHosts, ssh)',
    ])
  })

  it('reports a second YAML document', () => {
    expect(parseFailure('version: 1\n---\nversion: 1\n')).toEqual([
      'r.yaml:2:1: a recipe is a single YAML document: remove this "---" and what follows, or move it to a file of its own',
    ])
  })

  it('reports an alias to an anchor that is not defined', () => {
    expect(parseFailure('version: 1\nhosts:\n  e: [a, *nope]\n')).toEqual([
      'r.yaml:3:10 hosts.e[1]: unknown anchor "nope": define it with &nope before its alias *nope',
    ])
  })

  it('reports a merge key given something other than a map', () => {
    expect(parseFailure('version: 1\nx: &x 1\nhosts:\n  b:\n    <<: *x\n')).toEqual([
      'r.yaml:5:9 hosts.b: a merge key "<<" takes a map, an alias of one, or a list of them',
    ])
  })

  it('does not take __proto__ for a known key', () => {
    expect(parseFailure('version: 1\n__proto__: {x: 1}\n')).toEqual([
      'r.yaml:2:1 __proto__: unknown key "__proto__" (allowed: hosts, images, registries, version)',
    ])
  })

  it('reports a YAML error on every line that has one', () => {
    const lines = parseFailure('version: 1\nhosts: [\n"a\n')
    expect(lines.length).toBeGreaterThan(1)
    for (const line of lines) expect(line).toMatch(/^r\.yaml:\d+:\d+: invalid YAML: /)
  })
})
