import { describe, expect, it } from 'vitest';
import { ActionRequest } from '../../lib/instances/schemas.ts';
import { validate } from '../../lib/validation.ts';

// Trove's resize bodies as the CLI sends them (TROVE_API.md §13), and what is refused before any
// instance is read: Trove's "Validation error" 400.
describe('resize action body', () => {
  it('takes a flavor by id or href, or a volume size as number or digits', () => {
    for (const resize of [
      { flavorRef: '8' },
      { flavorRef: 8 },
      { flavorRef: 'http://127.0.0.1:8779/v1.0/p/flavors/8' },
      { volume: { size: 5 } },
      { volume: { size: '5' } },
    ])
      expect(validate(ActionRequest, { resize }).resize).toEqual(resize);
  });

  it('refuses sizes that are not whole positive numbers, and unknown keys', () => {
    for (const resize of [
      { volume: { size: 0 } },
      { volume: { size: -1 } },
      { volume: { size: 1.5 } },
      { volume: { size: 'ten' } },
      { volume: {} },
      { volume: { size: 2, type: 'ssd' } },
      { flavor: '8' },
      { flavorRef: '' },
    ])
      expect(() => validate(ActionRequest, { resize }), JSON.stringify(resize)).toThrow(/Validation error/);
  });
});
