import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PortInUse, requireFreePorts } from '../../local/port-check.ts';
import { freePort } from '../../local/ports.ts';

const held: Server[] = [];
afterEach(() => {
  for (const server of held.splice(0)) server.close();
});

describe('npm start: ports checked before anything starts', () => {
  it('names the taken port, the service and the variable that moves it', async () => {
    const api = await freePort();
    const server = createServer();
    held.push(server);
    await new Promise<void>((ok) => server.listen(api, '127.0.0.1', ok));
    const error = await requireFreePorts('127.0.0.1', { lambda: await freePort(), api }).catch((e) => e);
    expect(error).toBeInstanceOf(PortInUse);
    expect(error.message).toBe(
      `port ${api} (api) is in use: is an earlier npm start still running? Stop it, or choose another with TROVELESS_API_PORT.`,
    );
    expect(error.message).not.toContain('\n');
  });

  it('passes free ports', async () => {
    await expect(
      requireFreePorts('127.0.0.1', { api: await freePort(), s3: await freePort() }),
    ).resolves.toBeUndefined();
  });
});
