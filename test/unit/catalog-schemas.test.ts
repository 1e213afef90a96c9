import { describe, expect, it } from 'vitest';
import {
  CreateDatastoreVersionRequest,
  CreateFlavorRequest,
  UpdateDatastoreVersionRequest,
} from '../../lib/catalog/schemas.ts';
import { validate } from '../../lib/validation.ts';

describe('management request bodies', () => {
  const create = {
    version: { name: '10.11', datastore_name: 'mysql', datastore_manager: 'mysql', active: true },
  };

  it('take Trove’s datastore version create body; packages as a list or a comma string', () => {
    expect(validate(CreateDatastoreVersionRequest, create).version).toEqual(create.version);
    const withPackages = { version: { ...create.version, packages: 'a, b,,c', default: true } };
    expect(validate(CreateDatastoreVersionRequest, withPackages).version.packages).toEqual(['a', 'b', 'c']);
  });

  it('name the offending field', () => {
    const missing = { version: { ...create.version, active: undefined } };
    expect(() => validate(CreateDatastoreVersionRequest, missing)).toThrow(/version\['active'\]/);
    const manager = { version: { ...create.version, datastore_manager: 'mongodb' } };
    expect(() => validate(CreateDatastoreVersionRequest, manager)).toThrow(/datastore_manager/);
    expect(() => validate(UpdateDatastoreVersionRequest, { active: 'yes' })).toThrow(/active/);
    expect(() => validate(UpdateDatastoreVersionRequest, { colour: 'red' })).toThrow(/colour/);
  });

  it('take a PATCH at the top level, where null removes the image', () => {
    expect(validate(UpdateDatastoreVersionRequest, { active: false, image: null })).toEqual({
      active: false,
      image: null,
    });
  });

  it('take a flavor with Nova’s fields; the id is optional and always a string', () => {
    const flavor = { name: 'x1', ram: 1024, vcpus: 1, disk: 5 };
    expect(validate(CreateFlavorRequest, { flavor }).flavor).toEqual({ ...flavor, ephemeral: 0 });
    expect(validate(CreateFlavorRequest, { flavor: { ...flavor, id: 42 } }).flavor.id).toBe('42');
    expect(() => validate(CreateFlavorRequest, { flavor: { ...flavor, ram: 0 } })).toThrow(/flavor\['ram'\]/);
    expect(() => validate(CreateFlavorRequest, { flavor: { ...flavor, id: '../x' } })).toThrow(
      /flavor\['id'\]/,
    );
  });
});
