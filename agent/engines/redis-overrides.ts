import { chmod, readFile, rename, stat } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import { readIfExists, writeConfig } from './fs.ts';
import type { OverrideRule, OverrideValue } from './manager.ts';
import {
  badRequest,
  nextState,
  type OverrideState,
  OverrideStore,
  planOverrides,
  restartPending,
} from './overrides.ts';

// Configuration-group overrides on Redis: CONFIG SET (all of them in one command, which Redis
// applies all or nothing) and CONFIG REWRITE into the instance's redis.conf. Immutable configs
// (databases, tcp-backlog...) can only be written to redis.conf for the next start; since
// CONFIG REWRITE writes back what the server runs with, every rewrite is followed by putting
// those values back. The flavor's own settings are kept aside (redis.conf is rewritten by Redis),
// so removing an override goes back to them, or to the value from before the first override.

export interface RedisOverrideFiles {
  configFile: string;
  /** The flavor's settings as configure() rendered them, by name. */
  flavorFile: string;
  stateFile: string;
}

/** A redis.conf string: double-quoted, with anything unusual hex-escaped. */
export function quote(value: string): string {
  const escaped = [...Buffer.from(value, 'utf8')]
    .map((b) =>
      b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c
        ? String.fromCharCode(b)
        : `\\x${b.toString(16).padStart(2, '0')}`,
    )
    .join('');
  return `"${escaped}"`;
}

/** A value as CONFIG SET takes it and CONFIG GET reports it. */
export function renderValue(value: OverrideValue): string {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

/** A redis.conf line: `save` takes its pairs as separate arguments, anything else is one. */
function configLine(name: string, value: string): string {
  if (name.toLowerCase() === 'save' && /^[\d\s]*$/.test(value) && value.trim()) {
    return `${name} ${value.trim().split(/\s+/).join(' ')}`;
  }
  return `${name} ${/^[A-Za-z0-9_.:+-]+$/.test(value) ? value : quote(value)}`;
}

export class RedisOverrides {
  private readonly store: OverrideStore;

  constructor(
    private readonly files: RedisOverrideFiles,
    private readonly connect: () => Promise<Redis>,
  ) {
    this.store = new OverrideStore(files.stateFile);
  }

  /**
   * The lines configure() writes for the flavor's settings and the overrides: an override takes
   * the place of the flavor's line for the same name (two `save` lines would add up).
   */
  async configLines(flavor: Record<string, string>): Promise<string[]> {
    await writeConfig(
      this.files.flavorFile,
      `${JSON.stringify(flavor, null, 2)}\n`,
      { uid: 0, gid: 0 },
      0o600,
    );
    const { values } = await this.store.load();
    const settings = new Map(
      Object.entries(flavor).map(([name, value]) => [name.toLowerCase(), [name, value]]),
    );
    for (const [name, value] of Object.entries(values))
      settings.set(name.toLowerCase(), [name, renderValue(value)]);
    return [...settings.values()].map(([name, value]) => configLine(name as string, value as string));
  }

  async apply(
    values: Record<string, OverrideValue>,
    rules: OverrideRule[],
  ): Promise<{ restartRequired: boolean }> {
    const state = await this.store.load();
    const plan = planOverrides(values, rules, state);
    const flavor = await this.flavor();
    return this.session(async (client) => {
      const live = await configGet(client, [
        ...Object.keys(plan.wanted),
        ...plan.droppedDynamic,
        ...plan.droppedRestartOnly,
      ]);
      for (const [name, value] of Object.entries(plan.wanted)) {
        if (!(name in live)) throw badRequest(`Redis has no config ${name}.`);
        // Trove lets a JSON boolean pass an integer rule: it means 1 or 0 there.
        if (typeof value === 'boolean' && /^-?\d+$/.test(live[name] ?? '')) plan.wanted[name] = value ? 1 : 0;
      }
      const pairs: string[] = [];
      for (const name of plan.dynamic) pairs.push(name, renderValue(plan.wanted[name] as OverrideValue));
      for (const name of plan.droppedDynamic) {
        const target = flavor[name] ?? state.baseline[name];
        if (target !== undefined) pairs.push(name, target);
      }
      if (pairs.length) {
        await client.call('CONFIG', 'SET', ...pairs).catch((err: unknown) => {
          throw badRequest(`Redis refused the configuration: ${err instanceof Error ? err.message : err}`);
        });
      }
      const next = nextState(state, plan, live);
      await this.store.save(next);
      await this.persist(client);
      return { restartRequired: restartPending(next, renderValue) };
    });
  }

  /**
   * CONFIG REWRITE, then the restart-only values the file must hold for the next start put back
   * (the rewrite wrote the running ones), and the file made private again (it may hold the password).
   */
  async persist(client: Redis): Promise<void> {
    await client.config('REWRITE');
    const fileOnly = this.fileOnly(await this.store.load(), await this.flavor());
    if (Object.keys(fileOnly).length) {
      let lines = (await readFile(this.files.configFile, 'utf8')).trimEnd().split('\n');
      for (const [name, value] of Object.entries(fileOnly)) {
        const key = name.toLowerCase();
        const first = lines.findIndex((line) => firstWord(line) === key);
        lines = lines.filter((line, i) => i === first || firstWord(line) !== key);
        if (first < 0) lines.push(configLine(name, value));
        else lines[lines.findIndex((line) => firstWord(line) === key)] = configLine(name, value);
      }
      const { uid, gid } = await stat(this.files.configFile);
      const tmp = `${this.files.configFile}.agent`;
      await writeConfig(tmp, `${lines.join('\n')}\n`, { uid, gid }, 0o600);
      await rename(tmp, this.files.configFile);
    }
    await chmod(this.files.configFile, 0o600);
  }

  current(names: string[]): Promise<Record<string, string>> {
    return this.session((client) => configGet(client, names));
  }

  /** The flavor's settings, and for the other `names` the value from before any override (or the live one). */
  async defaults(names: string[]): Promise<Record<string, string>> {
    const [state, flavor] = await Promise.all([this.store.load(), this.flavor()]);
    const result: Record<string, string> = { ...flavor };
    const rest = names.filter((name) => !(name in flavor));
    const live = rest.length ? await this.session((client) => configGet(client, rest)) : {};
    for (const name of rest) {
      const value = state.baseline[name] ?? (name in state.values ? undefined : live[name]);
      if (value !== undefined) result[name] = value;
    }
    return result;
  }

  markStarted(): Promise<void> {
    return this.store.markStarted(renderValue);
  }

  /** Restart-only values redis.conf must hold: the overrides, and the old value of removed ones. */
  private fileOnly(state: OverrideState, flavor: Record<string, string>): Record<string, string> {
    const result: Record<string, string> = {};
    for (const name of state.restartOnly) {
      const override = state.values[name];
      const value = override === undefined ? (flavor[name] ?? state.baseline[name]) : renderValue(override);
      if (value !== undefined) result[name] = value;
    }
    return result;
  }

  private async flavor(): Promise<Record<string, string>> {
    const text = await readIfExists(this.files.flavorFile);
    return text ? (JSON.parse(text) as Record<string, string>) : {};
  }

  private async session<T>(work: (client: Redis) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      return await work(client);
    } finally {
      client.disconnect();
    }
  }
}

function firstWord(line: string): string {
  return line.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
}

/** CONFIG GET for `names`, keyed as asked; names Redis does not have are left out. */
async function configGet(client: Redis, names: string[]): Promise<Record<string, string>> {
  // CONFIG GET takes glob patterns: only plain names are asked for.
  const plain = names.filter((name) => /^[A-Za-z0-9_.-]+$/.test(name));
  if (!plain.length) return {};
  const reply = (await client.call('CONFIG', 'GET', ...plain)) as string[];
  const found = new Map<string, string>();
  for (let i = 0; i + 1 < reply.length; i += 2)
    found.set(String(reply[i]).toLowerCase(), String(reply[i + 1]));
  const result: Record<string, string> = {};
  for (const name of plain) {
    const value = found.get(name.toLowerCase());
    if (value !== undefined) result[name] = value;
  }
  return result;
}
