import type pg from 'pg';
import type { OverrideRule, OverrideValue } from './manager.ts';
import { badRequest, OverrideStore, planOverrides } from './overrides.ts';
import { waitFor } from './process.ts';

// Configuration-group overrides on PostgreSQL: ALTER SYSTEM SET / RESET, which persist them in
// postgresql.auto.conf (read after the agent's troveless.conf, so they win), then a reload.
// Settings of context postmaster take effect at the next start; PostgreSQL itself says which
// are still waiting for one (pg_settings.pending_restart).

/** troveless.conf settings that place the instance rather than tune it: not flavor defaults. */
const LOCATION = new Set(['listen_addresses', 'port', 'unix_socket_directories']);
const MEMORY_UNITS: Record<string, number> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
const TIME_UNITS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

interface Setting {
  name: string;
  vartype: string;
  unit: string | null;
}

export class PgOverrides {
  private readonly store: OverrideStore;

  constructor(
    stateFile: string,
    private readonly connect: () => Promise<pg.Client>,
  ) {
    this.store = new OverrideStore(stateFile);
  }

  async apply(
    values: Record<string, OverrideValue>,
    rules: OverrideRule[],
  ): Promise<{ restartRequired: boolean }> {
    const state = await this.store.load();
    const plan = planOverrides(values, rules, state);
    const dropped = [...plan.droppedDynamic, ...plan.droppedRestartOnly];
    return this.session(async (client) => {
      const settings = await describe(client, Object.keys(plan.wanted));
      for (const [name, value] of Object.entries(plan.wanted)) {
        const setting = settings.get(name.toLowerCase());
        if (!setting) throw badRequest(`PostgreSQL has no setting ${name}.`);
        // Trove lets a JSON boolean pass an integer rule: it means 1 or 0 there.
        if (typeof value === 'boolean' && ['integer', 'real'].includes(setting.vartype)) {
          plan.wanted[name] = value ? 1 : 0;
        }
      }
      const previous = await autoConf(client);
      const changed: string[] = [];
      try {
        for (const [name, value] of Object.entries(plan.wanted)) {
          await client.query(
            `ALTER SYSTEM SET ${client.escapeIdentifier(name)} = ${client.escapeLiteral(render(value))}`,
          );
          changed.push(name);
        }
        for (const name of dropped) {
          await client.query(`ALTER SYSTEM RESET ${client.escapeIdentifier(name)}`);
          changed.push(name);
        }
      } catch (err) {
        // ALTER SYSTEM checks each value before writing it: put back what was already written.
        for (const name of changed.reverse()) {
          const before = previous.get(name.toLowerCase());
          const undo =
            before === undefined
              ? `ALTER SYSTEM RESET ${client.escapeIdentifier(name)}`
              : `ALTER SYSTEM SET ${client.escapeIdentifier(name)} = ${client.escapeLiteral(before)}`;
          await client.query(undo).catch(() => {});
        }
        throw badRequest(`PostgreSQL refused the configuration: ${err instanceof Error ? err.message : err}`);
      }
      await this.store.save({ ...state, values: plan.wanted });
      await reload(client);
      const { rows } = await client.query<{ pending: boolean }>(
        'SELECT EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart) AS pending',
      );
      return { restartRequired: rows[0]?.pending === true };
    });
  }

  /** pg_settings.setting: numbers in the setting's own unit (work_mem in kB), booleans on/off. */
  current(names: string[]): Promise<Record<string, string>> {
    return this.session(async (client) => {
      const { rows } = await client.query<{ name: string; setting: string }>(
        'SELECT name, setting FROM pg_settings WHERE lower(name) = ANY($1::text[])',
        [names.map((name) => name.toLowerCase())],
      );
      return byAskedName(
        names,
        rows.map((r) => [r.name, r.setting]),
      );
    });
  }

  /**
   * troveless.conf's tunables, and for the other `names` what the config files (without the
   * overrides) or else PostgreSQL's built-in default give, all in the settings' own units.
   */
  defaults(names: string[]): Promise<Record<string, string>> {
    return this.session(async (client) => {
      const flavor = await client.query<{
        name: string;
        setting: string;
        unit: string | null;
        vartype: string;
      }>(
        `SELECT lower(f.name) AS name, f.setting, s.unit, s.vartype
           FROM pg_file_settings f JOIN pg_settings s ON lower(s.name) = lower(f.name)
          WHERE f.sourcefile LIKE '%/troveless.conf' ORDER BY f.seqno`,
      );
      const result: Record<string, string> = {};
      for (const row of flavor.rows) {
        if (!LOCATION.has(row.name)) result[row.name] = inBaseUnit(row.setting, row);
      }
      const rest = names.filter((name) => !(name.toLowerCase() in result));
      const own = await client.query<{
        name: string;
        boot_val: string | null;
        file_setting: string | null;
        unit: string | null;
        vartype: string;
      }>(
        `SELECT s.name, s.boot_val, s.unit, s.vartype,
                (SELECT f.setting FROM pg_file_settings f
                  WHERE lower(f.name) = lower(s.name) AND f.sourcefile NOT LIKE '%/postgresql.auto.conf'
                  ORDER BY f.seqno DESC LIMIT 1) AS file_setting
           FROM pg_settings s WHERE lower(s.name) = ANY($1::text[])`,
        [rest.map((name) => name.toLowerCase())],
      );
      const found = own.rows.map((r): [string, string | null] => [
        r.name,
        r.file_setting === null ? r.boot_val : inBaseUnit(r.file_setting, r),
      ]);
      return { ...result, ...byAskedName(rest, found) };
    });
  }

  private async session<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      return await work(client);
    } finally {
      await client.end().catch(() => {});
    }
  }
}

function render(value: OverrideValue): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return String(value);
}

async function describe(client: pg.Client, names: string[]): Promise<Map<string, Setting>> {
  const { rows } = await client.query<Setting>(
    'SELECT name, vartype, unit FROM pg_settings WHERE lower(name) = ANY($1::text[])',
    [names.map((name) => name.toLowerCase())],
  );
  return new Map(rows.map((r) => [r.name.toLowerCase(), r]));
}

/** What postgresql.auto.conf holds now, as written there (for putting it back). */
async function autoConf(client: pg.Client): Promise<Map<string, string>> {
  const { rows } = await client.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%/postgresql.auto.conf' ORDER BY seqno",
  );
  return new Map(rows.map((r) => [r.name.toLowerCase(), r.setting]));
}

/**
 * pg_reload_conf() only signals the postmaster: wait until this session has re-read the files
 * too (its pg_conf_load_time moves), so pg_settings shows the new state, pending_restart included.
 */
async function reload(client: pg.Client): Promise<void> {
  const before = await client.query<{ t: string }>('SELECT pg_conf_load_time()::text AS t');
  await client.query('SELECT pg_reload_conf()');
  await waitFor(
    'PostgreSQL to reload its configuration',
    async () => {
      const { rows } = await client.query<{ done: boolean }>(
        'SELECT pg_conf_load_time()::text <> $1 AS done',
        [before.rows[0]?.t],
      );
      return rows[0]?.done ? true : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 20 },
  );
}

/** A config file value ('64MB', '5min', 'true') as pg_settings.setting would show it. */
export function inBaseUnit(
  value: string,
  { unit, vartype }: { unit: string | null; vartype: string },
): string {
  const text = value.trim();
  if (vartype === 'bool') return /^(on|true|yes|1)$/i.test(text) ? 'on' : 'off';
  const parsed = /^(-?\d+(?:\.\d+)?)\s*([a-zA-Z]+)?$/.exec(text);
  if (!unit || !parsed?.[2]) return text;
  const base = /^(\d*)([a-zA-Z]+)$/.exec(unit);
  const table = (parsed[2] as string) in MEMORY_UNITS ? MEMORY_UNITS : TIME_UNITS;
  const from = table[parsed[2] as string];
  const to = base ? table[base[2] as string] : undefined;
  if (from === undefined || to === undefined || !base) return text;
  const amount = (Number(parsed[1]) * from) / (to * Number(base[1] || 1));
  return vartype === 'integer' ? String(Math.round(amount)) : String(amount);
}

function byAskedName(names: string[], rows: [string, string | null][]): Record<string, string> {
  const found = new Map(rows.map(([name, value]) => [name.toLowerCase(), value]));
  const result: Record<string, string> = {};
  for (const name of names) {
    const value = found.get(name.toLowerCase());
    if (value !== undefined && value !== null) result[name] = value;
  }
  return result;
}
