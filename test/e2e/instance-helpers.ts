import { waitUntil } from '../../local/wait.ts';
import { call, type Login } from './helpers.ts';

export type InstanceView = Record<string, unknown> & {
  id: string;
  status: string;
  operating_status: string;
  addresses?: { address: string; type: string; port?: number }[];
  fault?: { message: string };
  server_id?: string;
};

export async function showInstance(who: Login, id: string) {
  return call('GET', `/v1.0/${who.projectId}/instances/${id}`, who.token);
}

/** Polls show until `done` holds (or the instance is gone when `done` is 'gone'). */
export async function waitForInstance(
  who: Login,
  id: string,
  done: ((i: InstanceView) => boolean) | 'gone',
  timeoutMs = 150_000,
): Promise<InstanceView | undefined> {
  return waitUntil(
    `instance ${id}`,
    async () => {
      const res = await showInstance(who, id);
      if (done === 'gone') return res.status === 404 ? ({} as InstanceView) : undefined;
      const view = res.json?.instance as InstanceView | undefined;
      if (view?.status === 'ERROR' && !done(view))
        throw new Error(`instance ${id} failed: ${JSON.stringify(view.fault)}`);
      return view && done(view) ? view : undefined;
    },
    // A show costs the API a few ms; a shorter interval takes ~0.15 s off every wait, and the
    // e2e suite waits for hundreds of instances one after another.
    { timeoutMs, intervalMs: 200 },
  ).then((v) => (done === 'gone' ? undefined : v));
}

export const healthy = (i: InstanceView) => i.status === 'ACTIVE' && i.operating_status === 'HEALTHY';

export async function createInstance(who: Login, body: Record<string, unknown>) {
  const res = await call('POST', `/v1.0/${who.projectId}/instances`, who.token, { instance: body });
  if (res.status !== 200) throw new Error(`create: ${res.status} ${res.text}`);
  return res.json?.instance as InstanceView;
}

/** Engines listen on their standard port, shown only when it differs (as Trove's addresses are). */
const DEFAULT_PORTS: Record<string, number> = { mysql: 3306, mariadb: 3306, postgresql: 5432, redis: 6379 };

export function endpointOf(view: InstanceView): { host: string; port: number } {
  const address = view.addresses?.[0];
  if (!address) throw new Error(`instance ${view.id} shows no address`);
  const type = (view.datastore as { type?: string } | undefined)?.type ?? '';
  return { host: address.address, port: address.port ?? DEFAULT_PORTS[type] ?? 0 };
}
