import { createServer } from 'node:net';

/** A port the local cloud needs is taken (often by an earlier `npm start` still running). */
export class PortInUse extends Error {
  constructor(
    readonly port: number,
    readonly service: string,
  ) {
    super(
      `port ${port} (${service}) is in use: is an earlier npm start still running? ` +
        `Stop it, or choose another with TROVELESS_${service.toUpperCase()}_PORT.`,
    );
  }
}

function isFree(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen(port, host, () => probe.close(() => done(true)));
  });
}

/**
 * Every port the cloud is about to listen on, checked before anything starts: a taken one ends
 * the start with one line naming it, not a half-started cloud and a stack trace.
 */
export async function requireFreePorts(host: string, ports: Record<string, number>): Promise<void> {
  for (const [service, port] of Object.entries(ports)) {
    if (port && !(await isFree(host, port))) throw new PortInUse(port, service);
  }
}
