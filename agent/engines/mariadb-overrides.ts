import { readFile, rm, stat } from 'node:fs/promises';
import mysql from 'mysql2/promise';
import { writeConfig } from './fs.ts';
import type { OverrideRule, OverrideValue } from './manager.ts';
import { id, type MariaDbSession } from './mariadb-session.ts';
import { badRequest, nextState, OverrideStore, planOverrides, restartPending } from './overrides.ts';
import { runAs } from './process.ts';

// Configuration-group overrides on MariaDB. MariaDB has no SET PERSIST (LOCAL_STACK pitfall 3):
// the overrides live in their own option file, included at the end of the instance's my.cnf, so
// emptying it restores the flavor's config exactly. Dynamic ones are also set live with
// SET GLOBAL; a removed one goes back to the value my.cnf renders, or to the value it had before
// it was first overridden (SET GLOBAL x = DEFAULT would be the compiled default instead, which
// is not what a restart gives for autosized variables such as table_open_cache).

export interface MariaDbOverrideFiles {
  /** The mariadbd of the build the instance runs now (an upgrade changes it). */
  mariadbd: () => string;
  /** The instance's my.cnf, which ends with includeLine(). */
  configFile: string;
  overridesFile: string;
  /** Scratch copy of the candidate config, for mariadbd to check. */
  checkFile: string;
  stateFile: string;
  /** The OS user mariadbd runs as (the instance's own, or mysql): the check runs as it too. */
  user: string;
}

type Admin = <T>(work: (session: MariaDbSession) => Promise<T>) => Promise<T>;

/** my.cnf settings that place the instance rather than tune it: not flavor defaults. */
const LOCATION = new Set(['datadir', 'socket', 'pid_file', 'tmpdir', 'port', 'bind_address']);
const NUMERIC_TYPE = /INT|DOUBLE|DECIMAL|FLOAT/i;
const SIZE_SUFFIXES = 'KMGTPE';

export class MariaDbOverrides {
  readonly store: OverrideStore;

  constructor(
    private readonly files: MariaDbOverrideFiles,
    private readonly admin: Admin,
  ) {
    this.store = new OverrideStore(files.stateFile);
  }

  /** The last line of my.cnf. */
  includeLine(): string {
    return `!include ${this.files.overridesFile}`;
  }

  /** (Re)writes the overrides file from the agent's record; configure() runs it before my.cnf. */
  async writeFile(gid: number, values?: Record<string, OverrideValue>): Promise<void> {
    const content = render(values ?? (await this.store.load()).values);
    await writeConfig(this.files.overridesFile, content, { uid: 0, gid });
  }

  async apply(
    values: Record<string, OverrideValue>,
    rules: OverrideRule[],
  ): Promise<{ restartRequired: boolean }> {
    const state = await this.store.load();
    const plan = planOverrides(values, rules, state);
    return this.admin(async (s) => {
      const touched = [...Object.keys(plan.wanted), ...plan.droppedDynamic];
      const types = await variableTypes(s, touched);
      for (const [name, value] of Object.entries(plan.wanted)) {
        const type = types.get(name.toLowerCase());
        if (!type) throw badRequest(`MariaDB has no variable ${name}.`);
        // Trove lets a JSON boolean pass an integer rule: it means 1 or 0 there.
        if (typeof value === 'boolean' && NUMERIC_TYPE.test(type)) plan.wanted[name] = value ? 1 : 0;
      }
      await this.check(plan.wanted);
      const live = await showVariables(s, touched);
      const flavor = await this.flavor();
      const changed: [string, string | undefined][] = [];
      try {
        for (const name of plan.dynamic) {
          await setGlobal(s, name, types, plan.wanted[name]);
          changed.push([name, live[name]]);
        }
        for (const name of plan.droppedDynamic) {
          await setGlobal(s, name, types, flavor[name.toLowerCase()] ?? state.baseline[name]);
          changed.push([name, live[name]]);
        }
      } catch (err) {
        // Leave the instance as it was: the values already set go back.
        for (const [name, before] of changed.reverse()) {
          if (before !== undefined) await setGlobal(s, name, types, before).catch(() => {});
        }
        throw badRequest(`MariaDB refused the configuration: ${err instanceof Error ? err.message : err}`);
      }
      const next = nextState(state, plan, live);
      await this.writeFile((await stat(this.files.configFile)).gid, next.values);
      await this.ensureIncluded();
      await this.store.save(next);
      return { restartRequired: restartPending(next, renderValue) };
    });
  }

  current(names: string[]): Promise<Record<string, string>> {
    return this.admin((s) => showVariables(s, names));
  }

  /**
   * my.cnf's tunables (sizes in bytes, as MariaDB reports them), and for the other `names` the
   * value the instance has without overrides: the one before the first override, or the live one.
   */
  async defaults(names: string[]): Promise<Record<string, string>> {
    const [state, flavor] = await Promise.all([this.store.load(), this.flavor()]);
    const result: Record<string, string> = { ...flavor };
    const rest = names.filter((name) => !(name.toLowerCase() in flavor));
    if (!rest.length) return result;
    const [live, compiled] = await this.admin(async (s) => [
      await showVariables(s, rest),
      await compiledDefaults(s, rest),
    ]);
    for (const name of rest) {
      const value = state.baseline[name] ?? (name in state.values ? compiled[name] : live[name]);
      if (value !== undefined) result[name] = value;
    }
    return result;
  }

  markStarted(): Promise<void> {
    return this.store.markStarted(renderValue);
  }

  /** The flavor's settings as my.cnf renders them, by variable name. */
  private async flavor(): Promise<Record<string, string>> {
    const text = await readFile(this.files.configFile, 'utf8').catch(() => '');
    const settings: Record<string, string> = {};
    let section = '';
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || /^[#;!]/.test(line)) continue;
      const header = /^\[(.+)\]$/.exec(line);
      if (header) {
        section = (header[1] as string).trim();
        continue;
      }
      if (!['mariadbd', 'mysqld', 'server'].includes(section)) continue;
      const eq = line.indexOf('=');
      const name = (eq < 0 ? line : line.slice(0, eq)).trim().replaceAll('-', '_').toLowerCase();
      if (!LOCATION.has(name)) settings[name] = eq < 0 ? 'ON' : optionValue(line.slice(eq + 1).trim());
    }
    return settings;
  }

  /** A my.cnf written before configuration groups existed gets the include at its end. */
  private async ensureIncluded(): Promise<void> {
    const main = await readFile(this.files.configFile, 'utf8');
    if (main.includes(this.includeLine())) return;
    const { uid, gid, mode } = await stat(this.files.configFile);
    await writeConfig(
      this.files.configFile,
      `${main.trimEnd()}\n${this.includeLine()}\n`,
      { uid, gid },
      mode & 0o777,
    );
  }

  /**
   * mariadbd parses the candidate config (my.cnf with these overrides) without starting, so a
   * name it does not know or a value it cannot take is refused now rather than at the next start.
   */
  private async check(values: Record<string, OverrideValue>): Promise<void> {
    const main = await readFile(this.files.configFile, 'utf8');
    const include = this.includeLine();
    const candidate = main.includes(include)
      ? main.replace(include, render(values))
      : `${main}\n${render(values)}`;
    const { gid } = await stat(this.files.configFile);
    await writeConfig(this.files.checkFile, candidate, { uid: 0, gid });
    try {
      // A failed run's error carries mariadbd's output, where the [ERROR] lines say why.
      const output = await runAs(
        this.files.user,
        this.files.mariadbd(),
        [`--defaults-file=${this.files.checkFile}`, '--help', '--verbose'],
        { timeoutMs: 30_000 },
      ).then(
        ({ stderr }) => ({ failed: false, text: stderr }),
        (err: unknown) => ({ failed: true, text: err instanceof Error ? err.message : String(err) }),
      );
      const errors = output.text.split('\n').filter((l) => l.includes('[ERROR]'));
      if (errors.length || output.failed) {
        const reasons = errors.length ? errors.map((l) => l.replace(/^.*\[ERROR\]\s*/, '')) : [output.text];
        throw badRequest(`MariaDB does not accept the configuration: ${reasons.join('; ')}`);
      }
    } finally {
      await rm(this.files.checkFile, { force: true });
    }
  }
}

/** A value as the overrides file writes it (and as the record of the last start keeps it). */
export function renderValue(value: OverrideValue): string {
  if (typeof value === 'boolean') return value ? 'ON' : 'OFF';
  if (typeof value === 'number') return String(value);
  // Option files take double-quoted values with backslash escapes.
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

function render(values: Record<string, OverrideValue>): string {
  return [
    '# Configuration group overrides, written by the Troveless guest agent; empty without a group.',
    '[mariadbd]',
    ...Object.entries(values).map(([name, value]) => `${name} = ${renderValue(value)}`),
    '',
  ].join('\n');
}

/** An option file value as MariaDB reports it: unquoted, sizes (16M) in bytes. */
function optionValue(value: string): string {
  const quoted = /^(["'])(.*)\1$/.exec(value);
  if (quoted) return quoted[2] as string;
  return sizeInBytes(value) ?? value;
}

function sizeInBytes(value: string): string | undefined {
  const size = /^(\d+)([KMGTPE])$/i.exec(value);
  if (!size) return undefined;
  const power = SIZE_SUFFIXES.indexOf((size[2] as string).toUpperCase()) + 1;
  return String(BigInt(size[1] as string) * 1024n ** BigInt(power));
}

/** SET GLOBAL, the value escaped by mysql2 and typed as the variable wants; undefined means DEFAULT. */
async function setGlobal(
  s: MariaDbSession,
  name: string,
  types: Map<string, string>,
  value: OverrideValue | undefined,
): Promise<void> {
  if (value === undefined) return s.run(`SET GLOBAL ${id(name)} = DEFAULT`);
  return s.run(`SET GLOBAL ${id(name)} = ?`, [sqlValue(types.get(name.toLowerCase()) ?? '', value)]);
}

/** Numeric variables refuse quoted numbers: engine-reported numbers go in as checked literals. */
function sqlValue(type: string, value: OverrideValue): unknown {
  if (typeof value === 'boolean') return NUMERIC_TYPE.test(type) ? Number(value) : value ? 'ON' : 'OFF';
  if (typeof value === 'number' || !NUMERIC_TYPE.test(type)) return value;
  if (/^-?\d+(\.\d+)?$/.test(value)) return mysql.raw(value);
  const bytes = sizeInBytes(value);
  if (bytes) return mysql.raw(bytes);
  throw badRequest(`${value} is not a number.`);
}

async function variableTypes(s: MariaDbSession, names: string[]): Promise<Map<string, string>> {
  if (!names.length) return new Map();
  const rows = await s.rows(
    'SELECT LOWER(VARIABLE_NAME) AS name, VARIABLE_TYPE AS type FROM information_schema.SYSTEM_VARIABLES WHERE LOWER(VARIABLE_NAME) IN (?)',
    [names.map((name) => name.toLowerCase())],
  );
  return new Map(rows.map((r) => [String(r.name), String(r.type)]));
}

/** SHOW GLOBAL VARIABLES for `names`, keyed as asked; names MariaDB does not have are left out. */
async function showVariables(s: MariaDbSession, names: string[]): Promise<Record<string, string>> {
  if (!names.length) return {};
  const rows = await s.rows('SHOW GLOBAL VARIABLES WHERE Variable_name IN (?)', [
    names.map((name) => name.toLowerCase()),
  ]);
  return byAskedName(names, rows, 'Variable_name', 'Value');
}

async function compiledDefaults(s: MariaDbSession, names: string[]): Promise<Record<string, string>> {
  const rows = await s.rows(
    'SELECT LOWER(VARIABLE_NAME) AS name, DEFAULT_VALUE AS value FROM information_schema.SYSTEM_VARIABLES WHERE LOWER(VARIABLE_NAME) IN (?)',
    [names.map((name) => name.toLowerCase())],
  );
  return byAskedName(names, rows, 'name', 'value');
}

function byAskedName(
  names: string[],
  rows: mysql.RowDataPacket[],
  nameColumn: string,
  valueColumn: string,
): Record<string, string> {
  const found = new Map(rows.map((r) => [String(r[nameColumn]).toLowerCase(), r[valueColumn]]));
  const result: Record<string, string> = {};
  for (const name of names) {
    const value = found.get(name.toLowerCase());
    if (value !== undefined && value !== null) result[name] = String(value);
  }
  return result;
}
