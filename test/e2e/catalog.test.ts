import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, cloud, type Login, login, openstackAuth } from './helpers.ts';

const run = promisify(execFile);

// The catalog against the whole local cloud: the seed function, the datastore and flavor routes,
// and the admin routes. Every change made here is undone at the end (or left inactive, which
// users never see), so the files after this one find the seeded catalog.

async function seed(): Promise<unknown> {
  const lambda = new LambdaClient({
    endpoint: cloud().endpoints.lambda,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 1,
  });
  const out = await lambda.send(
    new InvokeCommand({
      FunctionName: 'troveless-local-catalogSeed',
      Payload: new TextEncoder().encode('{}'),
    }),
  );
  const text = new TextDecoder().decode(out.Payload);
  if (out.FunctionError) throw new Error(`catalogSeed failed: ${text}`);
  return JSON.parse(text);
}

type Json = Record<string, unknown>;
type Version = { id: string; name: string; version: string; active?: boolean; datastore?: string };
type DatastoreBody = { id: string; name: string; default_version?: string; versions: Version[] };

let admin: Login;
let demo: Login;
const as = (who: Login, method: string, path: string, body?: object) =>
  call(method, `/v1.0/${who.projectId}${path}`, who.token, body);

async function datastores(who: Login): Promise<DatastoreBody[]> {
  const res = await as(who, 'GET', '/datastores');
  expect(res.status).toBe(200);
  return (res.json as { datastores: DatastoreBody[] }).datastores;
}

async function mariadbVersionId(name = '10.11'): Promise<string> {
  const res = await as(admin, 'GET', `/datastores/mariadb/versions/${name}`);
  const version = res.json?.version as Version | undefined;
  if (!version) throw new Error(`mariadb ${name} not found: ${res.status} ${res.text}`);
  return version.id;
}

/** mariadb's versions: 10.11 (the default, the system's 10.11.19) and 10.11.18. */
const mariadbVersionIds = async () => [await mariadbVersionId(), await mariadbVersionId('10.11.18')];

beforeAll(async () => {
  const counts = { datastores: 4, versions: 8, flavors: 7 };
  // Twice: the second run must find everything in place and change nothing.
  expect(await seed()).toEqual(counts);
  expect(await seed()).toEqual(counts);
  [admin, demo] = await Promise.all([login('admin', 'admin'), login('demo', 'demo')]);
});

afterAll(async () => {
  // Whatever failed above, users must get mariadb back.
  if (admin)
    for (const id of await mariadbVersionIds())
      await as(admin, 'PATCH', `/mgmt/datastore-versions/${id}`, { active: true });
});

describe('datastores', () => {
  it('lists the four datastores, each with its default version', async () => {
    const all = await datastores(demo);
    const byName = Object.fromEntries(all.map((d) => [d.name, d]));
    // MariaDB's 10.11 names its line and runs the system's build, 10.11.19; 10.11.18 runs beside it.
    const mariadb = [
      ['10.11', '10.11.19'],
      ['10.11.18', '10.11.18'],
    ];
    for (const [name, versions] of [
      ['mysql', mariadb],
      ['mariadb', mariadb],
      ['postgresql', ['15', '16', '17'].map((v) => [v, v])],
      ['redis', [['7.0', '7.0']]],
    ] as const) {
      const ds = byName[name];
      expect(ds?.versions.map((v) => [v.name, v.version])).toEqual(versions);
      expect(ds?.default_version).toBe(ds?.versions[0]?.id);
      expect(ds?.versions[0]).not.toHaveProperty('active');
    }
    expect((all[0] as unknown as Json).links).toEqual([
      { rel: 'self', href: `${cloud().endpoints.api}/v1.0/${demo.projectId}/datastores/${all[0]?.id}` },
      { rel: 'bookmark', href: expect.stringMatching(new RegExp(`/datastores/${all[0]?.id}$`)) },
    ]);
  });

  it('shows a datastore by name or id, and its versions by name or id', async () => {
    const byName = await as(demo, 'GET', '/datastores/postgresql');
    expect(byName.status).toBe(200);
    const ds = byName.json?.datastore as DatastoreBody;
    expect((await as(demo, 'GET', `/datastores/${ds.id}`)).json?.datastore).toEqual(ds);

    // PostgreSQL 15 (the default), 16 and 17.
    const versions = await as(demo, 'GET', `/datastores/${ds.id}/versions`);
    const listed = versions.json?.versions as { name: string }[];
    expect(listed.map((v) => v.name).sort()).toEqual(['15', '16', '17']);
    expect(listed).toContainEqual({
      id: ds.default_version,
      name: '15',
      version: '15',
      links: expect.any(Array),
      datastore: ds.id,
    });
    for (const path of [
      '/datastores/postgresql/versions/15',
      `/datastores/postgresql/versions/${ds.default_version}`,
      `/datastores/versions/${ds.default_version}`,
    ]) {
      const res = await as(demo, 'GET', path);
      expect(res.status, path).toBe(200);
      expect(res.json?.version).toMatchObject({ id: ds.default_version, name: '15', datastore: ds.id });
    }
    const forAdmin = await as(admin, 'GET', '/datastores/postgresql/versions/15');
    expect(forAdmin.json?.version).toMatchObject({
      active: true,
      packages: ['postgresql-15'],
      image_tags: [],
    });
  });

  it('answers an unknown datastore 404 and an unknown version 400, with Trove’s messages', async () => {
    const ds = await as(demo, 'GET', '/datastores/nosuchdb');
    expect(ds.status).toBe(404);
    expect(ds.json).toEqual({
      itemNotFound: { code: 404, message: "Datastore 'nosuchdb' cannot be found." },
    });
    // Trove maps its exceptions by exact type, and DatastoreVersionNotFound is not in its map.
    const unknown = { badRequest: { code: 400, message: "Datastore version '9.9' cannot be found." } };
    const version = await as(demo, 'GET', '/datastores/mysql/versions/9.9');
    expect([version.status, version.json]).toEqual([400, unknown]);
    const id = randomUUID();
    const byId = await as(demo, 'GET', `/datastores/versions/${id}`);
    expect([byId.status, byId.json]).toEqual([
      400,
      { badRequest: { code: 400, message: `Datastore version '${id}' cannot be found.` } },
    ]);
    // Within a datastore a UUID is looked up as a row id, whose miss is Trove's 404.
    const row = await as(demo, 'GET', `/datastores/mysql/versions/${id}`);
    expect([row.status, row.json]).toEqual([
      404,
      { itemNotFound: { code: 404, message: 'DBDatastoreVersion Not Found' } },
    ]);
    const create = await as(demo, 'POST', '/instances', {
      instance: {
        name: 'x',
        flavorRef: '7',
        volume: { size: 1 },
        datastore: { type: 'mysql', version: '9.9' },
      },
    });
    expect([create.status, create.json]).toEqual([400, unknown]);
    const group = await as(demo, 'POST', '/configurations', {
      configuration: { name: 'x', values: {}, datastore: { type: 'mysql', version: '9.9' } },
    });
    expect([group.status, group.json]).toEqual([400, unknown]);
  });

  it('lists a version’s volume types: none here, as a Cinder with no types answers', async () => {
    for (const path of [
      '/datastores/mysql/versions/10.11/volume-types',
      '/datastores/redis/versions/7.0/volume-types',
    ]) {
      const res = await as(demo, 'GET', path);
      expect([res.status, res.json]).toEqual([200, { volume_types: [] }]);
    }
  });
});

describe('flavors', () => {
  it('lists the flavors with integer ids and string str_ids', async () => {
    const res = await as(demo, 'GET', '/flavors');
    expect(res.status).toBe(200);
    const flavors = (res.json as { flavors: Json[] }).flavors;
    expect(flavors.map((f) => [f.id, f.str_id, f.name])).toEqual([
      [1, '1', 'm1.tiny'],
      [2, '2', 'm1.small'],
      [3, '3', 'm1.medium'],
      [4, '4', 'm1.large'],
      [6, '6', 'ds2G'],
      [7, '7', 'ds512M'],
      [8, '8', 'ds1G'],
    ]);
    const forVersion = await as(demo, 'GET', '/datastores/mysql/versions/10.11/flavors');
    expect(forVersion.json).toEqual(res.json);
  });

  it('shows one flavor, and 404 for an unknown one', async () => {
    const res = await as(demo, 'GET', '/flavors/2');
    expect(res.json?.flavor).toEqual({
      id: 2,
      links: expect.any(Array),
      name: 'm1.small',
      ram: 2048,
      vcpus: 1,
      disk: 20,
      ephemeral: 0,
      str_id: '2',
    });
    const unknown = await as(demo, 'GET', '/flavors/999');
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({ itemNotFound: { code: 404, message: 'Resource 999 cannot be found.' } });
  });
});

describe('catalog management', () => {
  it('refuses non-admins with Trove’s 401', async () => {
    const id = await mariadbVersionId();
    for (const [method, path, body] of [
      ['GET', '/mgmt/datastore-versions', undefined],
      ['GET', `/mgmt/datastore-versions/${id}`, undefined],
      ['POST', '/mgmt/datastore-versions', {}],
      ['PATCH', `/mgmt/datastore-versions/${id}`, { active: false }],
      ['POST', '/mgmt/flavors', {}],
      ['DELETE', '/mgmt/flavors/2', undefined],
    ] as const) {
      const res = await as(demo, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.json).toEqual({
        unauthorized: { code: 401, message: 'User does not have admin privileges.' },
      });
    }
    expect((await datastores(demo)).some((d) => d.name === 'mariadb')).toBe(true);
  });

  it('lists every version for admins, with its manager and whether it is the default', async () => {
    const res = await as(admin, 'GET', '/mgmt/datastore-versions');
    expect(res.status).toBe(200);
    const versions = (res.json as { versions: Json[] }).versions;
    expect(versions).toContainEqual(
      expect.objectContaining({
        datastore_name: 'redis',
        datastore_manager: 'redis',
        name: '7.0',
        default: true,
      }),
    );
    const one = await as(admin, 'GET', `/mgmt/datastore-versions/${versions[0]?.id}`);
    expect(one.json?.version).toEqual(versions[0]);
  });

  it('deactivates a version: users lose it, creates refuse it, seeding keeps it off; then back', async () => {
    // Both of mariadb's: with none active, users lose the datastore too.
    const [id, older] = await mariadbVersionIds();
    const off = await as(admin, 'PATCH', `/mgmt/datastore-versions/${id}`, { active: false });
    expect(off.status).toBe(202);
    expect(off.text).toBe('');
    expect((await as(admin, 'PATCH', `/mgmt/datastore-versions/${older}`, { active: false })).status).toBe(
      202,
    );

    expect((await datastores(demo)).map((d) => d.name)).not.toContain('mariadb');
    expect((await as(demo, 'GET', '/datastores/mariadb')).json?.datastore).toMatchObject({ versions: [] });
    expect((await as(demo, 'GET', '/datastores/mariadb/versions')).json).toEqual({ versions: [] });
    expect((await as(admin, 'GET', `/datastores/versions/${id}`)).json?.version).toMatchObject({
      active: false,
    });
    // The version's flavors resolve it as an instance create does (resolveDatastoreVersion).
    const refused = await as(demo, 'GET', '/datastores/mariadb/versions/10.11/flavors');
    expect(refused.status).toBe(400);
    expect(refused.json).toEqual({
      badRequest: { code: 400, message: "Datastore version '10.11' is not active." },
    });

    await seed();
    expect((await as(admin, 'GET', `/mgmt/datastore-versions/${id}`)).json?.version).toMatchObject({
      active: false,
      default: true,
    });

    expect((await as(admin, 'PATCH', `/mgmt/datastore-versions/${id}`, { active: true })).status).toBe(202);
    expect((await as(admin, 'PATCH', `/mgmt/datastore-versions/${older}`, { active: true })).status).toBe(
      202,
    );
    const back = (await datastores(demo)).find((d) => d.name === 'mariadb');
    expect(back?.versions.map((v) => v.id)).toEqual([id, older]);
  });

  it('adds a version (and its datastore), refuses a duplicate and bad bodies', async () => {
    const name = `e2e-${randomUUID().slice(0, 8)}`;
    const body = {
      version: { name: '1.0', datastore_name: name, datastore_manager: 'mysql', active: true, default: true },
    };
    const created = await as(admin, 'POST', '/mgmt/datastore-versions', body);
    expect(created.status).toBe(202);
    const ds = (await datastores(demo)).find((d) => d.name === name);
    expect(ds?.versions.map((v) => v.name)).toEqual(['1.0']);
    expect(ds?.default_version).toBe(ds?.versions[0]?.id);

    const again = await as(admin, 'POST', '/mgmt/datastore-versions', body);
    expect(again.status).toBe(400);
    expect(again.json).toMatchObject({ badRequest: { message: expect.stringContaining('already exists') } });
    const bad = await as(admin, 'POST', '/mgmt/datastore-versions', {
      version: { ...body.version, datastore_manager: 'mongodb' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ badRequest: { message: expect.stringContaining('datastore_manager') } });
    const badPatch = await as(admin, 'PATCH', `/mgmt/datastore-versions/${ds?.versions[0]?.id}`, {
      active: 'no',
    });
    expect(badPatch.status).toBe(400);
    expect(badPatch.json).toMatchObject({ badRequest: { message: expect.stringContaining('active') } });
    // load_by_uuid's DatastoreVersionNotFound: Trove's 400, as on every route.
    const unknownId = randomUUID();
    const missing = await as(admin, 'PATCH', `/mgmt/datastore-versions/${unknownId}`, { active: true });
    expect([missing.status, missing.json]).toEqual([
      400,
      { badRequest: { code: 400, message: `Datastore version '${unknownId}' cannot be found.` } },
    ]);

    // A second version takes over as default; renaming the first and making it default again
    // moves the default back, version and datastore changing together.
    const second = { version: { ...body.version, name: '2.0', packages: 'p1,p2' } };
    expect((await as(admin, 'POST', '/mgmt/datastore-versions', second)).status).toBe(202);
    const [v1, v2] = ((await as(admin, 'GET', `/datastores/${name}/versions`)).json?.versions ??
      []) as Version[];
    expect((await as(demo, 'GET', `/datastores/${name}`)).json?.datastore).toMatchObject({
      default_version: v2?.id,
    });
    const patched = await as(admin, 'PATCH', `/mgmt/datastore-versions/${v1?.id}`, {
      name: '1.0a',
      default: true,
    });
    expect(patched.status).toBe(202);
    const mgmt = async (id?: string) =>
      (await as(admin, 'GET', `/mgmt/datastore-versions/${id}`)).json?.version;
    expect(await mgmt(v1?.id)).toMatchObject({ name: '1.0a', version: '1.0', default: true });
    expect(await mgmt(v2?.id)).toMatchObject({ name: '2.0', packages: ['p1', 'p2'], default: false });
    await as(admin, 'PATCH', `/mgmt/datastore-versions/${v2?.id}`, { image: 'img-1', image_tags: ['a'] });
    expect(await mgmt(v2?.id)).toMatchObject({ image: 'img-1', image_tags: ['a'] });
    await as(admin, 'PATCH', `/mgmt/datastore-versions/${v2?.id}`, { image: null });
    expect(await mgmt(v2?.id)).toMatchObject({ image: null, image_tags: ['a'] });

    // Users stop seeing the test datastore while it is inactive.
    for (const v of [v1, v2])
      await as(admin, 'PATCH', `/mgmt/datastore-versions/${v?.id}`, { active: false });
    expect((await datastores(demo)).map((d) => d.name)).not.toContain(name);
    for (const v of [v1, v2])
      expect((await as(admin, 'DELETE', `/mgmt/datastore-versions/${v?.id}`)).status).toBe(202);
    expect((await as(admin, 'DELETE', `/datastores/${name}`)).status).toBe(202);
  });

  it('creates, sets and deletes versions and then their datastore through the CLI; refuses what Trove refuses', async () => {
    const name = `e2e-del-${randomUUID().slice(0, 8)}`;
    const cli = (...args: string[]) =>
      run('openstack', [...openstackAuth(), ...args], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
      });
    // Trove's own CLI makes the version (and its datastore); an empty image id with tags, as its help says.
    await cli(
      'datastore',
      'version',
      'create',
      '1.0',
      name,
      'mysql',
      '',
      '--image-tags',
      'trove,mysql',
      '--default',
    );
    const [v1] = ((await as(admin, 'GET', `/datastores/${name}/versions`)).json?.versions ?? []) as Version[];
    if (!v1) throw new Error('the new version is not listed');
    const mgmtOf = async (id: string) =>
      (await as(admin, 'GET', `/mgmt/datastore-versions/${id}`)).json?.version;
    expect(await mgmtOf(v1.id)).toMatchObject({
      name: '1.0',
      datastore_manager: 'mysql',
      active: false,
      default: true,
    });
    await cli('datastore', 'version', 'set', v1.id, '--enable', '--image-tags', 'trove');
    expect(await mgmtOf(v1.id)).toMatchObject({ active: true, image_tags: ['trove'] });

    // Policy first (datastore:delete is the admin's), then Trove's DatastoreVersionsExist.
    const forbidden = await as(demo, 'DELETE', `/datastores/${name}`);
    expect([forbidden.status, forbidden.json]).toEqual([
      403,
      { forbidden: { code: 403, message: "Policy doesn't allow datastore:delete to be performed." } },
    ]);
    expect((await as(demo, 'DELETE', `/mgmt/datastore-versions/${v1.id}`)).status).toBe(401);
    const hasVersions = await as(admin, 'DELETE', `/datastores/${name}`);
    expect([hasVersions.status, hasVersions.json]).toEqual([
      400,
      { badRequest: { code: 400, message: `Datastore versions exist for datastore ${name}.` } },
    ]);

    // A configuration group on the version holds it (Trove's DatastoreVersionsInUse).
    const group = await as(admin, 'POST', '/configurations', {
      configuration: { name: `${name}-group`, values: {}, datastore: { type: name, version: '1.0' } },
    });
    expect(group.status, group.text).toBe(200);
    const groupId = (group.json?.configuration as { id: string } | undefined)?.id;
    const inUse = await as(admin, 'DELETE', `/mgmt/datastore-versions/${v1.id}`);
    expect([inUse.status, inUse.json]).toEqual([
      400,
      { badRequest: { code: 400, message: 'Datastore version is in use by configuration.' } },
    ]);
    expect((await as(admin, 'DELETE', `/configurations/${groupId}`)).status).toBe(202);

    // The CLI's own commands, then nothing of the datastore is left.
    await cli('datastore', 'version', 'delete', v1.id);
    const gone = await as(admin, 'GET', `/mgmt/datastore-versions/${v1.id}`);
    expect([gone.status, gone.json]).toEqual([
      400,
      { badRequest: { code: 400, message: `Datastore version '${v1.id}' cannot be found.` } },
    ]);
    await cli('datastore', 'delete', name);
    const missing = await as(admin, 'GET', `/datastores/${name}`);
    expect([missing.status, missing.json]).toEqual([
      404,
      { itemNotFound: { code: 404, message: `Datastore '${name}' cannot be found.` } },
    ]);
    expect((await as(admin, 'DELETE', `/datastores/${name}`)).status).toBe(404);
  });

  it('adds a flavor, refuses a clash, and deletes it', async () => {
    const name = `e2e.${randomUUID().slice(0, 8)}`;
    const created = await as(admin, 'POST', '/mgmt/flavors', {
      flavor: { name, ram: 256, vcpus: 1, disk: 1 },
    });
    expect(created.status).toBe(202);
    const flavor = created.json?.flavor as Json;
    expect(flavor).toMatchObject({ name, ram: 256, vcpus: 1, disk: 1, ephemeral: 0 });
    const id = String(flavor.str_id);
    // Links name the caller's project, so they differ between admin and demo.
    expect((await as(demo, 'GET', `/flavors/${id}`)).json?.flavor).toEqual({
      ...flavor,
      links: expect.any(Array),
    });

    const clash = await as(admin, 'POST', '/mgmt/flavors', { flavor: { name, ram: 256, vcpus: 1, disk: 1 } });
    expect(clash.status).toBe(409);
    const takenId = await as(admin, 'POST', '/mgmt/flavors', {
      flavor: { id: '2', name: `${name}b`, ram: 1, vcpus: 1, disk: 1 },
    });
    expect(takenId.json).toEqual({ conflict: { code: 409, message: 'Flavor with ID 2 already exists.' } });
    const bad = await as(admin, 'POST', '/mgmt/flavors', {
      flavor: { name: 'x', ram: -1, vcpus: 1, disk: 1 },
    });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ badRequest: { message: expect.stringContaining("flavor['ram']") } });

    expect((await as(admin, 'DELETE', `/mgmt/flavors/${id}`)).status).toBe(202);
    expect((await as(demo, 'GET', `/flavors/${id}`)).status).toBe(404);
    expect((await as(admin, 'DELETE', `/mgmt/flavors/${id}`)).status).toBe(404);
    expect((await as(demo, 'GET', '/flavors')).json?.flavors).toHaveLength(7);
  });
});
