import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BadRequest } from '../../lib/errors.ts';
import { CreateInstanceRequest } from '../../lib/instances/schemas.ts';
import { validate } from '../../lib/validation.ts';

const valid = { instance: { name: 'db1', flavorRef: '7', volume: { size: 1 } } };

describe('instance create requests', () => {
  it('accept what the openstack CLI sends', () => {
    const body = {
      instance: {
        name: 'myinst',
        flavorRef: '6',
        volume: { size: 2, type: null },
        databases: [{ name: 'db1' }],
        users: [{ name: 'u1', password: 'p1', databases: [{ name: 'db1' }] }],
        datastore: { type: 'mysql', version: '10.11' },
        nics: [{ network_id: '11111111-2222-3333-4444-555555555555' }],
        access: { is_public: false },
      },
    };
    expect(validate(CreateInstanceRequest, body).instance.name).toBe('myinst');
  });

  it('take a numeric string as a volume size, as Trove does', () => {
    expect(
      validate(CreateInstanceRequest, { instance: { ...valid.instance, volume: { size: '3' } } }).instance
        .volume?.size,
    ).toBe(3);
  });

  it('refuse any body that is not an object with a valid instance, always with a 400', () => {
    fc.assert(
      fc.property(fc.anything(), (body) => {
        try {
          const parsed = validate(CreateInstanceRequest, body);
          expect(typeof parsed.instance.name).toBe('string');
        } catch (err) {
          expect(err).toBeInstanceOf(BadRequest);
          expect((err as BadRequest).message).toMatch(/^Validation error: /);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('name the field that is wrong', () => {
    expect(() => validate(CreateInstanceRequest, { instance: { ...valid.instance, name: '' } })).toThrow(
      /instance\['name'\]/,
    );
  });
});
