import {
  type ComputeDriver,
  ImageNotFound,
  type Server,
  type ServerAccess,
  type ServerAddress,
  type ServerSpec,
  type WriterEndpoint,
} from './driver.ts';

// The local driver is only an HTTP client: the compute host (local/compute/host.ts) owns the
// processes, so a Lambda handler in a serverless-offline worker thread can launch a guest that
// outlives the handler, the worker and even the local cloud's restart. The host answers only
// callers that send its bearer secret (TROVELESS_COMPUTE_SECRET, generated into its state dir).

/** Delete waits for the agent and engine to exit (bounded on the host at about 25 s). */
const REQUEST_TIMEOUT_MS = 60_000;

export class ComputeHostError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ComputeHostError';
  }
}

export class LocalComputeDriver implements ComputeDriver {
  private readonly endpoint: string;

  constructor(
    endpoint = process.env.TROVELESS_COMPUTE_ENDPOINT,
    private readonly secret = process.env.TROVELESS_COMPUTE_SECRET ?? '',
  ) {
    if (!endpoint)
      throw new Error('the local compute driver needs TROVELESS_COMPUTE_ENDPOINT (the local compute host)');
    this.endpoint = endpoint.replace(/\/+$/, '');
  }

  async launch(spec: ServerSpec): Promise<Server> {
    const res = await this.request('POST', '/servers', spec);
    return (await res.json()) as Server;
  }

  async get(serverId: string): Promise<Server | undefined> {
    const res = await this.request('GET', `/servers/${encodeURIComponent(serverId)}`, undefined, [404]);
    return res.status === 404 ? undefined : ((await res.json()) as Server);
  }

  async findByInstance(instanceId: string): Promise<Server | undefined> {
    const res = await this.request('GET', `/servers?instance_id=${encodeURIComponent(instanceId)}`);
    return ((await res.json()) as { servers: Server[] }).servers[0];
  }

  async createPort(instanceId: string, manager: string): Promise<ServerAddress[]> {
    const res = await this.request('PUT', `/ports/${encodeURIComponent(instanceId)}`, { manager });
    return ((await res.json()) as { addresses: ServerAddress[] }).addresses;
  }

  async deletePort(instanceId: string): Promise<void> {
    await this.request('DELETE', `/ports/${encodeURIComponent(instanceId)}`, undefined, [404]);
  }

  async terminate(serverId: string): Promise<void> {
    await this.request('DELETE', `/servers/${encodeURIComponent(serverId)}`, undefined, [404]);
  }

  async stop(serverId: string): Promise<void> {
    await this.request('POST', `/servers/${encodeURIComponent(serverId)}/action`, { 'os-stop': null });
  }

  async reboot(serverId: string): Promise<void> {
    await this.request('POST', `/servers/${encodeURIComponent(serverId)}/action`, {
      reboot: { type: 'HARD' },
    });
  }

  /**
   * Nova's rebuild (its body: `imageRef`): the host stops the agent and engine, remounts the
   * volume, installs the image's agent afresh and starts it; done when the call returns.
   */
  async rebuild(serverId: string, imageId: string): Promise<void> {
    try {
      await this.request('POST', `/servers/${encodeURIComponent(serverId)}/action`, {
        rebuild: { imageRef: imageId },
      });
    } catch (err) {
      // The host checks the image before it touches the server.
      if (err instanceof ComputeHostError && err.status === 400 && /could not be found/.test(err.message))
        throw new ImageNotFound(imageId);
      throw err;
    }
  }

  /** Glance's show on the host's one image (the guest agent bundle it runs). */
  async imageExists(imageId: string): Promise<boolean> {
    const res = await this.request('GET', `/images/${encodeURIComponent(imageId)}`, undefined, [404]);
    return res.status === 200;
  }

  async start(serverId: string): Promise<void> {
    await this.request('POST', `/servers/${encodeURIComponent(serverId)}/action`, { 'os-start': null });
  }

  async applyAccess(serverId: string, access: ServerAccess): Promise<void> {
    await this.request('PUT', `/servers/${encodeURIComponent(serverId)}/access`, access);
  }

  /** The host rewrites the server's cgroup limits at once: nothing is ever pending here. */
  async resize(serverId: string, flavor: ServerSpec['flavor']): Promise<void> {
    await this.request('PUT', `/servers/${encodeURIComponent(serverId)}/flavor`, flavor);
  }

  /** The host grows the volume's image and its loop device while it stays mounted. */
  async extendVolume(serverId: string, sizeGb: number): Promise<void> {
    await this.request('PUT', `/servers/${encodeURIComponent(serverId)}/volume`, { size_gb: sizeGb });
  }

  /** The compute host's TCP forwarder for the set (local/compute/writers.ts). */
  async pointWriter(writerId: string, serverId: string): Promise<WriterEndpoint> {
    const res = await this.request('PUT', `/writers/${encodeURIComponent(writerId)}`, {
      server_id: serverId,
    });
    return (await res.json()) as WriterEndpoint;
  }

  async removeWriter(writerId: string): Promise<void> {
    await this.request('DELETE', `/writers/${encodeURIComponent(writerId)}`, undefined, [404]);
  }

  private async request(
    method: string,
    path: string,
    body?: unknown,
    accepted: number[] = [],
  ): Promise<Response> {
    const url = `${this.endpoint}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.secret}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      const reason =
        err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : err;
      // The cause stays: a host out of reach is a backing service unavailable (a 503 at the API).
      throw new Error(`compute host unreachable: ${method} ${url}: ${reason}`, { cause: err });
    }
    if (res.ok || accepted.includes(res.status)) return res;
    const text = await res.text().catch(() => '');
    let detail = text;
    try {
      detail = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
    } catch {
      // not JSON: keep the raw text
    }
    throw new ComputeHostError(
      res.status,
      `compute host: ${method} ${path} answered ${res.status}: ${detail}`,
    );
  }
}
