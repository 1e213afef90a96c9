// Trove's module drivers (trove/guestagent/module/drivers/): each applies and removes one type of
// module from its contents file and says how it went. This guest ships Trove's `ping` driver;
// a type without a driver here (Trove's `new_relic_license` needs New Relic's own agent on the
// host) is refused as Trove's guest refuses one: "No driver implemented for module type".

export interface ModuleDriver {
  apply(contents: Buffer): { applied: boolean; message: string };
  remove(contents: Buffer | undefined): { removed: boolean; message: string };
}

/** Trove's KeyValueCodec: `key=value` lines; blank lines and comments carry nothing. */
export function keyValues(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    values.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return values;
}

/** Trove's PingDriver: does nothing but answer the contents' `message=` value. */
const ping: ModuleDriver = {
  apply(contents) {
    for (const [key, value] of keyValues(contents.toString('utf8'))) {
      if (key.toLowerCase() === 'message') return { applied: true, message: value };
    }
    return { applied: false, message: 'Message not found in contents file' };
  },
  remove() {
    return { removed: true, message: '' };
  },
};

export const DRIVERS: Record<string, ModuleDriver> = { ping };
