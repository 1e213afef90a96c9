import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GuestModules } from '../../agent/modules/index.ts';
import type { ModuleItem } from '../../lib/modules/model.ts';
import { checkDatastore } from '../../lib/modules/orders.ts';
import { CreateModuleRequest, UpdateModuleRequest } from '../../lib/modules/schemas.ts';
import { adminOptions, checkModuleType } from '../../lib/modules/service.ts';
import { validate } from '../../lib/validation.ts';

// Trove's module rules (trove/module/models.py, apischema `module`) and its guest's module manager.

const b64 = (s: string) => Buffer.from(s).toString('base64');
const body = (extra: object = {}) => ({
  module: { name: 'm1', module_type: 'ping', contents: b64('message=hi'), ...extra },
});

describe('module create body', () => {
  it('takes the fields python-troveclient sends, flags as 0 or 1', () => {
    const m = validate(
      CreateModuleRequest,
      body({ auto_apply: 1, visible: 0, apply_order: 9, datastore: { type: 'mysql' } }),
    );
    expect(m.module).toMatchObject({ auto_apply: 1, visible: 0, apply_order: 9 });
  });

  it('refuses what Trove refuses, and contents that are not base64', () => {
    for (const extra of [
      { name: '' },
      { name: '---' },
      { module_type: '' },
      { contents: '' },
      { contents: 'not base64!' },
      { auto_apply: 2 },
      { visible: true },
      { apply_order: 10 },
      { apply_order: -1 },
      { contents: 'A'.repeat(200_000) },
    ])
      expect(() => validate(CreateModuleRequest, body(extra)), JSON.stringify(extra).slice(0, 80)).toThrow(
        /Validation error/,
      );
  });

  it("names the type `type` on update, as Trove's schema and the client do", () => {
    expect(validate(UpdateModuleRequest, { module: { type: 'ping', all_datastores: 1 } }).module).toEqual({
      type: 'ping',
      all_datastores: 1,
    });
  });
});

describe('module options only an admin may set', () => {
  const none = { tenantId: 'p', autoApply: 0, visible: 1, priorityApply: 0, fullAccess: undefined };

  it('lets anyone make a plain module', () => {
    expect(adminOptions({ isAdmin: false }, 'create', none)).toBeUndefined();
  });

  it('refuses a non-admin all tenants, auto apply, hidden or priority, listing them as Trove', () => {
    expect(() =>
      adminOptions({ isAdmin: false }, 'create', { ...none, tenantId: null, autoApply: 1, visible: 0 }),
    ).toThrow('You must be admin to create a module with these options. (Tenant: all, Auto: 1, Visible: 0)');
    expect(() => adminOptions({ isAdmin: false }, 'delete', { ...none, priorityApply: true })).toThrow(
      'You must be admin to delete a module with these options. (Priority: True)',
    );
    const refused = (() => {
      try {
        adminOptions({ isAdmin: false }, 'create', { ...none, autoApply: 1 });
      } catch (err) {
        return err;
      }
    })();
    expect(refused).toMatchObject({ status: 403 });
  });

  it('refuses full access with any admin option, even to an admin (400)', () => {
    expect(() => adminOptions({ isAdmin: true }, 'create', { ...none, autoApply: 1, fullAccess: 1 })).toThrow(
      'The following values are invalid: Cannot make module full access: (Auto: 1).',
    );
    expect(adminOptions({ isAdmin: true }, 'create', { ...none, fullAccess: 1 })).toBe('(Full Access: 1)');
  });

  it("knows Trove's module types, whatever their case, and no other (404)", () => {
    expect(checkModuleType('PING')).toBe('ping');
    expect(checkModuleType('new_relic_license')).toBe('new_relic_license');
    expect(() => checkModuleType('shell')).toThrow("Module type 'shell' was not found.");
  });
});

describe('which instances a module may be applied to', () => {
  const mod = (datastore_id: string | null, datastore_version_id: string | null) =>
    ({ name: 'm', datastore_id, datastore_version_id }) as ModuleItem;

  it("takes modules for every datastore, or the instance's own datastore and version", () => {
    expect(() =>
      checkDatastore([mod(null, null), mod('ds1', null), mod('ds1', 'v1')], 'ds1', 'v1'),
    ).not.toThrow();
  });

  it("refuses another datastore or version with Trove's ModuleInvalid message (400)", () => {
    expect(() => checkDatastore([mod('ds2', null)], 'ds1', 'v1')).toThrow(
      "The module is invalid: Module 'm' cannot be applied  (Wrong datastore 'ds2' - expected 'ds1')",
    );
    expect(() => checkDatastore([mod('ds1', 'v2')], 'ds1', 'v1')).toThrow(
      "(Wrong datastore version 'v2' - expected 'v1')",
    );
  });
});

describe('guest modules', () => {
  let dir: string;
  let modules: GuestModules;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modules-'));
    modules = new GuestModules(join(dir, 'modules'), 'mysql');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const order = (id: string, contents: string, extra: object = {}) => ({
    id,
    name: `n-${id}`,
    type: 'ping',
    datastore: null,
    datastore_version: null,
    tenant: 'p1',
    md5: 'x',
    contents: b64(contents),
    visible: true,
    ...extra,
  });

  it('writes the contents for the agent only and answers the ping message', async () => {
    const [result] = modules.apply({ modules: [order('a1', '# a comment\nMessage = Hello\n')] });
    expect(result).toMatchObject({ status: 'OK', message: 'Hello', tenant: 'p1', datastore: 'all' });
    const file = join(dir, 'modules', 'ping', 'a1', 'contents.dat');
    expect(await readFile(file, 'utf8')).toContain('Message = Hello');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'modules', 'ping', 'a1'))).mode & 0o777).toBe(0o700);
  });

  it('records ERROR when the contents carry no message, and applies priority modules first', () => {
    const results = modules.apply({
      modules: [
        order('a1', 'nothing=here', { apply_order: 1 }),
        order('a2', 'message=first', { priority_apply: true, apply_order: 9 }),
      ],
    });
    expect(results.map((r) => [r.id, r.status, r.message])).toEqual([
      ['a2', 'OK', 'first'],
      ['a1', 'ERROR', 'Message not found in contents file'],
    ]);
  });

  it('refuses a type it has no driver for, and a module for another datastore', () => {
    expect(() => modules.apply({ modules: [order('a1', 'x=1', { type: 'new_relic_license' })] })).toThrow(
      "No driver implemented for module type 'new_relic_license'",
    );
    expect(() => modules.apply({ modules: [order('a1', 'message=x', { datastore: 'postgresql' })] })).toThrow(
      'Module not valid for datastore mysql',
    );
    expect(() => modules.apply({ modules: [order('../x', 'message=x')] })).toThrow(/Invalid module order/);
  });

  it('lists what was applied, hides hidden ones and admin contents from non-admins, forgets removed ones', () => {
    modules.apply({
      modules: [order('a1', 'message=one'), order('a2', 'message=two', { visible: false, is_admin: true })],
    });
    expect(
      modules
        .list({ is_admin: true })
        .map((r) => r.id)
        .sort(),
    ).toEqual(['a1', 'a2']);
    const mine = modules.list({ is_admin: false, include_contents: true });
    expect(mine.map((r) => [r.id, Buffer.from(r.contents ?? '', 'base64').toString()])).toEqual([
      ['a1', 'message=one'],
    ]);
    modules.remove({ module: order('a1', '') });
    expect(modules.list({ is_admin: true }).map((r) => r.id)).toEqual(['a2']);
    expect(() => modules.remove({ module: order('a1', '') })).toThrow("Module 'n-a1' has not been applied");
  });
});
