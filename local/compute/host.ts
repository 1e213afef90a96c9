import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { writeSecret } from '../../agent/engines/fs.ts';
import type { ServerAccess, ServerSpec } from '../../lib/compute/driver.ts';
import { DEFAULT_PORTS } from './addresses.ts';
import { Guests, type LocalImage, UnknownImage } from './guests.ts';
import { isPortInstanceId } from './ports.ts';
import { isWriterId } from './writers.ts';

// The local compute host: a tiny Nova over HTTP+JSON. Workflow steps (Lambda handlers, maybe in
// serverless-offline worker threads) reach it through LocalComputeDriver; the guests it starts
// are guest agent processes, each beside the engine it starts itself.
//
//   POST   /servers                 ServerSpec -> 200 Server (idempotent per instance_id)
//   GET    /servers/{id}            200 Server | 404
//   GET    /servers?instance_id=x   200 { servers: Server[] }
//   DELETE /servers/{id}            204 (also for unknown ids)
//   PUT    /servers/{id}/access     ServerAccess -> 204 (the firewall rules change at once) | 404
//   PUT    /servers/{id}/flavor     {id, ram, vcpus} -> 204 (the cgroup limits change at once) | 404
//   PUT    /servers/{id}/volume     {size_gb} -> 204 (the volume grows, still mounted) | 400 shrink | 404
//   POST   /servers/{id}/action     {"os-stop": null} | {"os-start": null} | {"reboot": {...}} |
//                                   {"rebuild": {"imageRef": id}} -> 202 | 400 (unknown image) | 404
//   GET    /images[/{id}]           the host's one image (the agent bundle): 200 | 404
//   PUT    /writers/{id}            {server_id} -> 200 {address, port} (a replica set's writer
//                                   endpoint, created or moved to that server) | 404 no such server
//   DELETE /writers/{id}            204 (also for unknown ids: listener, address and rules go)
//   PUT    /ports/{instance_id}     {manager} -> 200 {addresses} (the address the instance's server
//                                   will have, taken before its launch; idempotent) | 400
//   DELETE /ports/{instance_id}     204 (also for unknown ids; its server, if any, keeps its address)
//
// Every request carries `Authorization: Bearer <secret>`; the secret is generated into the state
// dir (compute/host-secret, 0600, root's), so no instance's OS user can read it. Without it: 401.

export interface ComputeHostOptions {
  port: number;
  host?: string;
  stateDir: string;
  repoRoot: string;
  log?: (line: string) => void;
  /** Replaces the agent command (tests use a fake agent); its args must name the config path. */
  agentCommand?: (configPath: string, bundle?: string) => { command: string; args: string[] };
  /** The image rebuilds install (the local cloud's agent bundle); without one, none is accepted. */
  image?: LocalImage;
  /** Added to every agent's environment (the local cloud's endpoints and credentials). */
  agentEnv?: Record<string, string>;
}

export interface ComputeHost {
  endpoint: string;
  /** The bearer secret callers must send (the local driver's TROVELESS_COMPUTE_SECRET). */
  secret: string;
  /** The servers themselves (tests and the provision bench look at their isolation). */
  guests: Guests;
  /** `stopServers` also stops every guest's agent and engine (data and records stay). */
  close(opts?: { stopServers?: boolean }): Promise<void>;
}

const MAX_BODY_BYTES = 1 << 20;

const CIDR = z.cidrv4();
const ServerAccessSchema = z.object({
  is_public: z.boolean().optional(),
  allowed_cidrs: z.array(CIDR).max(100).optional(),
  replication_peers: z
    .array(z.string().regex(/^srv-[0-9a-f-]{36}$/))
    .max(20)
    .optional(),
  peer_ports: z.array(z.number().int().min(1).max(65535)).max(4).optional(),
}) satisfies z.ZodType<ServerAccess>;

const FlavorSchema = z.object({
  id: z.string(),
  ram: z.number().int().positive(),
  vcpus: z.number().int().positive(),
});
const VolumeSizeSchema = z.object({ size_gb: z.number().int().positive().max(16_384) });

const ServerSpecSchema = z.object({
  instance_id: z.string().min(1).max(128),
  name: z.string(),
  flavor: FlavorSchema,
  volume_size_gb: z.number().int().positive(),
  datastore: z.object({ manager: z.string(), version: z.string() }),
  agent: z.object({
    instance_id: z.string().min(1),
    datastore_manager: z.string().min(1),
    datastore_version: z.string(),
    key: z.string().min(1),
    guest_queue_url: z.string(),
    conductor_queue_url: z.string(),
    region: z.string(),
    report_interval: z.number().positive(),
    metrics_samples_per_write: z.number().int().positive().optional(),
    doorbell: z
      .object({
        url: z.string(),
        busy_seconds: z.number().positive(),
        rest_poll_seconds: z.number().positive(),
      })
      .optional(),
    endpoints: z.record(z.string(), z.string()).optional(),
    credentials: z.object({ accessKeyId: z.string(), secretAccessKey: z.string() }).optional(),
  }),
  access: ServerAccessSchema.optional(),
}) satisfies z.ZodType<ServerSpec>;

/** The host's bearer secret: read from the state dir, or generated there (0600) the first time. */
export async function computeHostSecret(stateDir: string): Promise<string> {
  const path = join(resolve(stateDir), 'compute', 'host-secret');
  const existing = await readFile(path, 'utf8').catch(() => '');
  if (existing.trim()) return existing.trim();
  await mkdir(join(resolve(stateDir), 'compute'), { recursive: true, mode: 0o755 });
  const secret = randomBytes(32).toString('base64url');
  await writeSecret(path, `${secret}\n`);
  return secret;
}

export function defaultAgentCommand(
  repoRoot: string,
): (configPath: string, bundle?: string) => { command: string; args: string[] } {
  return (configPath, bundle) => ({
    command: process.execPath,
    args: bundle ? [bundle, configPath] : ['--import', 'tsx', join(repoRoot, 'agent', 'main.ts'), configPath],
  });
}

export async function startComputeHost(opts: ComputeHostOptions): Promise<ComputeHost> {
  const log = opts.log ?? (() => {});
  const host = opts.host ?? '127.0.0.1';
  // The port first, then the guests: a host that cannot listen (a supervised restart whose port
  // was taken meanwhile) has not touched them, and leaves them running for the next one to adopt.
  // A request that comes while they are being adopted or rebooted waits for it.
  let opened: Promise<Guests> | undefined;
  const secret = Buffer.from(`Bearer ${await computeHostSecret(opts.stateDir)}`);
  const server = createServer((req, res) => {
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== secret.length || !timingSafeEqual(given, secret)) {
      // Drained, so that the answer is not lost to a reset of a client still sending its body.
      req.resume();
      send(res, 401, { error: { code: 401, message: 'the compute host needs its bearer secret' } });
      return;
    }
    const guests = opened ?? Promise.reject(new Error('the compute host is starting'));
    guests
      .then((g) => route(g, req, res))
      .catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        const message = err instanceof Error ? err.message : String(err);
        if (status === 500) log(`${req.method} ${req.url}: ${message}`);
        send(res, status, { error: { code: status, message } });
      });
  });
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(opts.port, host, () => ok());
    });
  } catch (err) {
    server.close();
    throw err;
  }
  opened = Guests.open({
    stateDir: opts.stateDir,
    repoRoot: opts.repoRoot,
    log,
    agentCommand: opts.agentCommand ?? defaultAgentCommand(opts.repoRoot),
    agentEnv: opts.agentEnv,
    image: opts.image,
  });
  let guests: Guests;
  try {
    guests = await opened;
  } catch (err) {
    server.close();
    throw err;
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;

  let closed = false;
  return {
    endpoint: `http://${host}:${port}`,
    secret: secret.toString().replace(/^Bearer /, ''),
    guests,
    async close({ stopServers = false } = {}) {
      // Once closed, this host's view of the guests is stale (another host may own them now).
      if (closed) return;
      closed = true;
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      });
      await guests.idle();
      await guests.closeSpares();
      if (stopServers) await guests.stopAll();
      else await guests.writers.closeAll();
    },
  };
}

/**
 * Removes every guest an earlier run left (a host killed outright cannot stop them), without
 * rebooting any: for `--wipe` and test teardowns, right before the state directory and its
 * records are removed. Each goes for good, with its OS user, volume, cgroups and firewall rules.
 */
export async function stopComputeLeftovers(opts: {
  stateDir: string;
  repoRoot: string;
  log?: (line: string) => void;
}) {
  const log = opts.log ?? (() => {});
  const guests = await Guests.open(
    { ...opts, log, agentCommand: defaultAgentCommand(opts.repoRoot) },
    { recover: false },
  );
  await guests.destroyAll();
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function route(guests: Guests, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://compute.local');
  const parts = url.pathname.split('/').filter(Boolean);
  if (parts[0] === 'writers') return routeWriter(guests, req, res, parts);
  if (parts[0] === 'images') return routeImages(guests, req, res, parts);
  if (parts[0] === 'ports') return routePort(guests, req, res, parts);
  const sub = parts.length === 3 ? parts[2] : undefined;
  const isAccess = sub === 'access';
  if (
    parts[0] !== 'servers' ||
    parts.length > 3 ||
    (sub && !['access', 'flavor', 'volume', 'action'].includes(sub))
  )
    throw new HttpError(404, `no route ${url.pathname}`);
  const id = parts[1] === undefined ? undefined : safeDecode(parts[1]);

  // Nova's server actions: os-stop (a failover's fence), os-start, reboot (Trove's mgmt reboot),
  // rebuild (Trove's mgmt rebuild).
  if (sub === 'action' && id !== undefined) {
    if (req.method !== 'POST') throw new HttpError(405, `${req.method} not allowed on ${url.pathname}`);
    const body = (await readJson(req)) as Record<string, unknown> | null;
    const action = body && typeof body === 'object' ? Object.keys(body) : [];
    const name = action.length === 1 ? (action[0] as string) : '';
    const act = {
      'os-stop': guests.stop,
      'os-start': guests.start,
      reboot: guests.reboot,
      rebuild: (serverId: string) => rebuildServer(guests, serverId, body?.rebuild),
    }[name];
    if (!act) throw new HttpError(400, 'the action must be one of os-stop, os-start, reboot, rebuild');
    const found = await act.call(guests, id);
    if (!found) throw new HttpError(404, `server ${id} not found`);
    res.writeHead(202).end();
    return;
  }

  if ((sub === 'flavor' || sub === 'volume') && id !== undefined) {
    if (req.method !== 'PUT') throw new HttpError(405, `${req.method} not allowed on ${url.pathname}`);
    const body = await readJson(req);
    let found: boolean;
    if (sub === 'flavor') {
      const parsed = FlavorSchema.safeParse(body);
      if (!parsed.success) throw new HttpError(400, `invalid flavor: ${z.prettifyError(parsed.error)}`);
      found = await guests.resize(id, parsed.data);
    } else {
      const parsed = VolumeSizeSchema.safeParse(body);
      if (!parsed.success) throw new HttpError(400, `invalid volume: ${z.prettifyError(parsed.error)}`);
      found = await guests.extendVolume(id, parsed.data.size_gb).catch((err: unknown) => {
        if (err instanceof RangeError) throw new HttpError(400, err.message);
        throw err;
      });
    }
    if (!found) throw new HttpError(404, `server ${id} not found`);
    res.writeHead(204).end();
    return;
  }

  if (isAccess && id !== undefined) {
    if (req.method !== 'PUT') throw new HttpError(405, `${req.method} not allowed on ${url.pathname}`);
    const parsed = ServerAccessSchema.safeParse(await readJson(req));
    if (!parsed.success) throw new HttpError(400, `invalid access: ${z.prettifyError(parsed.error)}`);
    if (!(await guests.applyAccess(id, parsed.data))) throw new HttpError(404, `server ${id} not found`);
    res.writeHead(204).end();
    return;
  }

  if (id === undefined && req.method === 'POST') {
    const parsed = ServerSpecSchema.safeParse(await readJson(req));
    if (!parsed.success) throw new HttpError(400, `invalid server spec: ${z.prettifyError(parsed.error)}`);
    return send(res, 200, await guests.launch(parsed.data));
  }
  if (id === undefined && req.method === 'GET') {
    const instanceId = url.searchParams.get('instance_id') ?? undefined;
    return send(res, 200, { servers: await guests.list(instanceId) });
  }
  if (id !== undefined && req.method === 'GET') {
    const server = await guests.get(id);
    if (!server) throw new HttpError(404, `server ${id} not found`);
    return send(res, 200, server);
  }
  if (id !== undefined && req.method === 'DELETE') {
    await guests.delete(id);
    res.writeHead(204).end();
    return;
  }
  throw new HttpError(405, `${req.method} not allowed on ${url.pathname}`);
}

const RebuildSchema = z.object({ imageRef: z.string().min(1).max(255) });

async function rebuildServer(guests: Guests, serverId: string, body: unknown): Promise<boolean> {
  const parsed = RebuildSchema.safeParse(body);
  if (!parsed.success) throw new HttpError(400, `invalid rebuild: ${z.prettifyError(parsed.error)}`);
  try {
    return await guests.rebuild(serverId, parsed.data.imageRef);
  } catch (err) {
    if (err instanceof UnknownImage) throw new HttpError(400, err.message);
    throw err;
  }
}

/** Glance's image list and show, for the host's one image. */
async function routeImages(guests: Guests, req: IncomingMessage, res: ServerResponse, parts: string[]) {
  if (req.method !== 'GET') throw new HttpError(405, `${req.method} not allowed on /${parts.join('/')}`);
  const view = (image: LocalImage) => ({ id: image.id, name: 'troveless-guest-agent', status: 'active' });
  if (parts.length === 1) {
    const image = guests.image();
    return send(res, 200, { images: image ? [view(image)] : [] });
  }
  const image = parts.length === 2 && parts[1] ? guests.image(safeDecode(parts[1])) : undefined;
  if (!image) throw new HttpError(404, `no image /${parts.slice(1).join('/')}`);
  send(res, 200, view(image));
}

const PointWriterSchema = z.object({ server_id: z.string().regex(/^srv-[0-9a-f-]{36}$/) });

async function routeWriter(guests: Guests, req: IncomingMessage, res: ServerResponse, parts: string[]) {
  const id = parts.length === 2 && parts[1] ? safeDecode(parts[1]) : '';
  if (!isWriterId(id)) throw new HttpError(404, `no route /${parts.join('/')}`);
  if (req.method === 'DELETE') {
    await guests.removeWriter(id);
    res.writeHead(204).end();
    return;
  }
  if (req.method !== 'PUT') throw new HttpError(405, `${req.method} not allowed on /writers/${id}`);
  const parsed = PointWriterSchema.safeParse(await readJson(req));
  if (!parsed.success) throw new HttpError(400, `invalid writer: ${z.prettifyError(parsed.error)}`);
  const endpoint = await guests.pointWriter(id, parsed.data.server_id);
  if (!endpoint) throw new HttpError(404, `server ${parsed.data.server_id} not found`);
  send(res, 200, endpoint);
}

const PortSchema = z.object({
  manager: z
    .string()
    .refine((m) => Object.hasOwn(DEFAULT_PORTS, m), 'no standard port is known for this datastore manager'),
});

async function routePort(guests: Guests, req: IncomingMessage, res: ServerResponse, parts: string[]) {
  const id = parts.length === 2 && parts[1] ? safeDecode(parts[1]) : '';
  if (!isPortInstanceId(id)) throw new HttpError(404, `no route /${parts.join('/')}`);
  if (req.method === 'DELETE') {
    await guests.deletePort(id);
    res.writeHead(204).end();
    return;
  }
  if (req.method !== 'PUT') throw new HttpError(405, `${req.method} not allowed on /ports/${id}`);
  const parsed = PortSchema.safeParse(await readJson(req));
  if (!parsed.success) throw new HttpError(400, `invalid port: ${z.prettifyError(parsed.error)}`);
  send(res, 200, { addresses: await guests.createPort(id, parsed.data.manager) });
}

/** A malformed escape is just an id no server has. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
