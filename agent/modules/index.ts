import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { troveError } from '../engines/admin.ts';
import { DRIVERS } from './drivers.ts';

// Trove's module_list, module_apply and module_remove (trove/guestagent/module/module_manager.py):
// each module's contents go to <base>/modules/<type>/<id>/contents.dat, the driver runs on them,
// and what it said is kept beside them in result.json, which module_list reads back. The
// directory belongs to the agent alone (0700, files 0600): contents may hold license keys, and
// the engine's OS user, which a tenant's database root can act as, must not read them.

const ALL = 'all';

const ModuleOrder = z.object({
  // Both name a directory: nothing that could climb out of the modules root.
  id: z.string().regex(/^[A-Za-z0-9-]+$/),
  name: z.string().min(1, 'Module name not specified'),
  type: z.string().regex(/^[a-z0-9_]+$/),
  datastore: z.string().nullable().optional(),
  datastore_version: z.string().nullable().optional(),
  tenant: z.string().nullable().optional(),
  md5: z.string(),
  contents: z.string().optional(),
  auto_apply: z.boolean().default(false),
  visible: z.boolean().default(true),
  is_admin: z.boolean().default(false),
  apply_order: z.number().int().default(5),
  priority_apply: z.boolean().default(false),
});
type ModuleOrder = z.infer<typeof ModuleOrder>;

export const ApplyOrder = z.object({ modules: z.array(ModuleOrder) });
export const RemoveOrder = z.object({ module: ModuleOrder });
export const ListOrder = z.object({ include_contents: z.boolean().default(false), is_admin: z.boolean() });

export interface ModuleResult {
  id: string;
  name: string;
  type: string;
  datastore: string;
  datastore_version: string;
  tenant: string;
  md5: string;
  status: 'OK' | 'ERROR' | null;
  message: string | null;
  created: string;
  updated: string;
  removed: string | null;
  auto_apply: boolean;
  visible: boolean;
  is_admin: boolean;
  contents: string | null;
}

/** Trove's guest timestamp: "2026-12-04 13:05:07.12". */
function now(): string {
  return new Date().toISOString().replace('T', ' ').slice(0, 22);
}

function parse<T>(schema: z.ZodType<T>, args: unknown): T {
  const out = schema.safeParse(args);
  if (!out.success) throw troveError('BadRequest', `Invalid module order: ${out.error.issues[0]?.message}`);
  return out.data;
}

export class GuestModules {
  constructor(
    private readonly root: string,
    /** Trove's CONF.datastore_manager: a module for another datastore is refused. */
    private readonly manager: string,
  ) {}

  private dirOf(type: string, id: string): string {
    return join(this.root, type, id);
  }

  private driver(type: string) {
    const driver = DRIVERS[type];
    if (!driver) throw troveError('BadRequest', `No driver implemented for module type '${type}'`);
    return driver;
  }

  /** Priority modules first, then by apply_order (Trove sorts by order, then stably by priority). */
  apply(args: unknown): ModuleResult[] {
    const modules = [...parse(ApplyOrder, args).modules]
      .sort((a, b) => a.apply_order - b.apply_order)
      .sort((a, b) => Number(b.priority_apply) - Number(a.priority_apply));
    return modules.map((m) => this.applyOne(m));
  }

  private applyOne(m: ModuleOrder): ModuleResult {
    if (!m.contents) throw troveError('BadRequest', 'Module contents not specified');
    const driver = this.driver(m.type);
    const datastore = m.datastore || ALL;
    if (datastore !== ALL && datastore !== this.manager) {
      throw troveError('BadRequest', `The module is invalid: Module not valid for datastore ${this.manager}`);
    }
    const dir = this.dirOf(m.type, m.id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const contents = Buffer.from(m.contents, 'base64');
    writeFileSync(join(dir, 'contents.dat'), contents, { mode: 0o600 });
    const at = now();
    const previous = this.read(join(dir, 'result.json'));
    let outcome: { applied: boolean; message: string };
    try {
      outcome = driver.apply(contents);
    } catch (err) {
      // As Trove's apply_module: a driver that throws leaves the module in ERROR with its message.
      outcome = { applied: false, message: (err as Error).message };
    }
    const result: ModuleResult = {
      id: m.id,
      name: m.name,
      type: m.type,
      datastore,
      datastore_version: m.datastore_version || ALL,
      tenant: m.tenant || ALL,
      md5: m.md5,
      status: outcome.applied ? 'OK' : 'ERROR',
      message: outcome.message,
      created: previous?.created ?? at,
      updated: at,
      removed: null,
      auto_apply: m.auto_apply,
      visible: m.visible,
      is_admin: m.is_admin,
      contents: null,
    };
    writeFileSync(join(dir, 'result.json'), JSON.stringify(result), { mode: 0o600 });
    return result;
  }

  remove(args: unknown): null {
    const { module: m } = parse(RemoveOrder, args);
    const driver = this.driver(m.type);
    const dir = this.dirOf(m.type, m.id);
    const result = this.read(join(dir, 'result.json'));
    if (!result || result.removed) throw troveError('BadRequest', `Module '${m.name}' has not been applied`);
    const file = join(dir, 'contents.dat');
    driver.remove(existsSync(file) ? readFileSync(file) : undefined);
    // Unlike Trove's guest, the contents do not outlive the module's removal: they may be secrets.
    rmSync(file, { force: true });
    writeFileSync(join(dir, 'result.json'), JSON.stringify({ ...result, removed: now() }), { mode: 0o600 });
    return null;
  }

  /** Trove's read_module_results: the applied modules, newest first; hidden ones for admins only. */
  list(args: unknown): ModuleResult[] {
    const order = parse(ListOrder, args);
    const results: ModuleResult[] = [];
    for (const type of this.children(this.root)) {
      for (const id of this.children(join(this.root, type))) {
        const dir = join(this.root, type, id);
        const result = this.read(join(dir, 'result.json'));
        if (!result || result.removed || !(order.is_admin || result.visible)) continue;
        if (order.include_contents) {
          result.contents =
            !order.is_admin && result.is_admin
              ? Buffer.from(`Must be admin to retrieve contents for module ${result.name}`).toString('base64')
              : readFileSync(join(dir, 'contents.dat')).toString('base64');
        }
        results.push(result);
      }
    }
    return results.sort((a, b) => b.updated.localeCompare(a.updated));
  }

  private children(dir: string): string[] {
    return existsSync(dir) ? readdirSync(dir) : [];
  }

  private read(file: string): ModuleResult | undefined {
    if (!existsSync(file)) return undefined;
    return JSON.parse(readFileSync(file, 'utf8')) as ModuleResult;
  }
}
