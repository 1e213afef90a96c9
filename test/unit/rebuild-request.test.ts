import { describe, expect, it } from 'vitest';
import { BadRequest } from '../../lib/errors.ts';
import { MgmtActionRequest } from '../../lib/instances/schemas.ts';
import { validate } from '../../lib/validation.ts';

// The admin's rebuild body (`openstack database instance rebuild <instance> <image>` sends
// {"rebuild": {"image_id": "<image>"}}): Trove's apischema wants image_id, a uuid, and nothing
// else; the EC2 driver's AMI ids pass too. What fails is Trove's "Validation error" 400.
describe('mgmt rebuild action body', () => {
  it('takes a UUID (the local image, a Glance id) or an AMI id', () => {
    for (const image_id of [
      '6b1e8f0a-4c2d-8a3e-9f10-0123456789ab',
      '6B1E8F0A-4C2D-4A3E-9F10-0123456789AB',
      'ami-0123abcd',
      'ami-0123456789abcdef0',
    ])
      expect(validate(MgmtActionRequest, { rebuild: { image_id } }).rebuild).toEqual({ image_id });
  });

  it('refuses a missing, malformed or padded image id, and other keys beside it', () => {
    for (const rebuild of [
      {},
      { image_id: '' },
      { image_id: 'not-an-image' },
      { image_id: 42 },
      { image_id: '6b1e8f0a-4c2d-8a3e-9f10-0123456789ab\n' },
      { image_id: ' 6b1e8f0a-4c2d-8a3e-9f10-0123456789ab' },
      { image_id: '6b1e8f0a-4c2d-8a3e-9f10-0123456789abc' },
      { image_id: 'ami-0123' },
      { image_id: 'ami-0123456789abcdef0', name: 'x' },
    ])
      expect(() => validate(MgmtActionRequest, { rebuild }), JSON.stringify(rebuild)).toThrow(BadRequest);
    expect(() => validate(MgmtActionRequest, { rebuild: 'x' })).toThrow(/Validation error: rebuild/);
  });

  it('says which value did not match, as jsonschema does', () => {
    expect(() => validate(MgmtActionRequest, { rebuild: { image_id: 'nope' } })).toThrow(
      /Validation error: rebuild\['image_id'\] 'nope' does not match '\^/,
    );
  });
});
