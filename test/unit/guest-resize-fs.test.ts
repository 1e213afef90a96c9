import { afterEach, describe, expect, it } from 'vitest';
import type { ServiceStatusDescription } from '../../agent/engines/manager.ts';
import { nowSeconds, seal } from '../../lib/guest/protocol.ts';
import { cleanGuests, guestWith } from './guest-fixture.ts';

// A full disk cured by a resize: the engine that died for want of room starts again once the
// volume has grown, including one that was still dying (recovering, then exiting) when it did.

afterEach(cleanGuests);

function engineGoing(...statuses: ServiceStatusDescription[]) {
  const starts: number[] = [];
  return {
    starts,
    engine: {
      resizeFilesystem: async () => ({ total_bytes: 3, used_bytes: 1 }),
      status: async () =>
        (statuses.length > 1 ? (statuses.shift() as ServiceStatusDescription) : statuses[0]) ?? 'healthy',
      start: async () => {
        starts.push(Date.now());
      },
      filesystemStats: async () => ({ total_bytes: 3, used_bytes: 1 }),
    },
  };
}

const resizeOrder = (id: string) => ({
  id,
  instance_id: 'i-1',
  method: 'resize_fs',
  args: {},
  sent: nowSeconds(),
});

describe('resize_fs', () => {
  it('starts an engine that crashed for want of room, and one that was still recovering when the room came', async () => {
    for (const sequence of [['crashed'], ['running', 'running', 'crashed']] as ServiceStatusDescription[][]) {
      const { engine, starts } = engineGoing(...sequence, 'healthy');
      const { guest, key, results } = guestWith(engine);
      await guest.handle(seal(key, 'i-1', resizeOrder(`resize-${sequence.length}`)));
      expect(starts, sequence.join(' → ')).toHaveLength(1);
      expect(JSON.stringify(results.at(-1))).toContain('"ok":true');
    }
  });

  it('leaves a healthy engine, and one stopped on purpose, alone', async () => {
    for (const status of ['healthy', 'shutdown'] as ServiceStatusDescription[]) {
      const { engine, starts } = engineGoing(status);
      const { guest, key } = guestWith(engine);
      await guest.handle(seal(key, 'i-1', resizeOrder(`resize-${status}`)));
      expect(starts, status).toHaveLength(0);
    }
  });
});
