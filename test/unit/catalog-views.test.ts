import { describe, expect, it } from 'vitest';
import type { DatastoreVersion } from '../../lib/catalog/types.ts';
import { datastoreView, flavorView, mgmtVersionView, versionView } from '../../lib/catalog/views.ts';

// Expected bodies are the real Trove 18 samples (../shared/trove-samples 19, 21, 26, 27), key
// order included.
const base = 'https://127.0.0.1:43100';
const projectId = '6a1c0d9bb3e94f0c9d2a7b1e5f3c8d21';
const user = { base, projectId, isAdmin: false };
const DS = '6b438257-f5f4-452c-8809-2fc82c441547';
const V = '8db5c0c5-ce8b-4a6f-afd5-302fe664ab7f';

const version: DatastoreVersion = {
  id: V,
  datastore_id: DS,
  datastore_name: 'mysql',
  name: '5.7.29',
  version: '5.7.29',
  manager: 'mysql',
  active: true,
  packages: ['mysql-server'],
};
const links = (path: string) => [
  { href: `${base}/v1.0/${projectId}/${path}`, rel: 'self' },
  { href: `${base}/${path}`, rel: 'bookmark' },
];

describe('datastore views', () => {
  it('show a datastore with its versions and default, as sample 19', () => {
    const view = datastoreView({ id: DS, name: 'mysql', default_version_id: V }, [version], user);
    expect(view).toEqual({
      id: DS,
      name: 'mysql',
      links: links(`datastores/${DS}`),
      versions: [{ id: V, name: '5.7.29', version: '5.7.29', links: links(`datastores/versions/${V}`) }],
      default_version: V,
    });
    expect(Object.keys(view)).toEqual(['id', 'name', 'links', 'versions', 'default_version']);
  });

  it('leave out default_version when the datastore has none', () => {
    expect(datastoreView({ id: DS, name: 'mysql' }, [], user)).not.toHaveProperty('default_version');
  });

  it('show a version with its datastore id, as sample 21', () => {
    const view = versionView(version, user);
    expect(view).toEqual({
      id: V,
      name: '5.7.29',
      version: '5.7.29',
      links: links(`datastores/versions/${V}`),
      datastore: DS,
    });
    expect(Object.keys(view)).toEqual(['id', 'name', 'version', 'links', 'datastore']);
  });

  it('show admins what an operator set', () => {
    expect(versionView({ ...version, active: false }, { ...user, isAdmin: true })).toMatchObject({
      active: false,
      packages: ['mysql-server'],
      image: null,
      image_tags: [],
    });
  });

  it('give the management view every field and whether the version is the default', () => {
    expect(mgmtVersionView(version, V)).toEqual({
      id: V,
      name: '5.7.29',
      datastore_id: DS,
      datastore_name: 'mysql',
      datastore_manager: 'mysql',
      image: null,
      image_tags: [],
      packages: ['mysql-server'],
      active: true,
      default: true,
      version: '5.7.29',
    });
    expect(mgmtVersionView(version, undefined).default).toBe(false);
  });
});

describe('flavor views', () => {
  it('carry an integer id and a string str_id, as samples 26 and 27', () => {
    const view = flavorView({ id: '2', name: 'm1.small', ram: 2048, vcpus: 1, disk: 20, ephemeral: 0 }, user);
    expect(view).toEqual({
      id: 2,
      links: links('flavors/2'),
      name: 'm1.small',
      ram: 2048,
      vcpus: 1,
      disk: 20,
      ephemeral: 0,
      str_id: '2',
    });
    expect(Object.keys(view)).toEqual(['id', 'links', 'name', 'ram', 'vcpus', 'disk', 'ephemeral', 'str_id']);
  });

  it('keep a non-numeric id as a string', () => {
    const view = flavorView({ id: 'big', name: 'b', ram: 1, vcpus: 1, disk: 1, ephemeral: 0 }, user);
    expect(view.id).toBe('big');
  });
});
