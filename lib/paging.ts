// Trove's paging, in the domain's terms: a page asks for at most `limit` items after `marker`, and
// a listing answers with the items and the marker that continues it (none on the last page).

export interface Page {
  limit: number;
  marker?: string;
}

export interface PageOf<T> {
  items: T[];
  nextMarker?: string;
}

/** A page of a list held in memory, by key as Trove pages them (the marker is the last key seen). */
export function pageByKey<T>(items: T[], key: (t: T) => string, page: Page): PageOf<T> {
  const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const after = page.marker ? sorted.filter((t) => key(t) > (page.marker as string)) : sorted;
  const slice = after.slice(0, page.limit);
  const last = slice[slice.length - 1];
  return { items: slice, nextMarker: after.length > page.limit && last ? key(last) : undefined };
}

/**
 * A page read from a store in key order with one item more than asked (`Limit: limit + 1`): the
 * extra item only says that another page exists, so a page that ends on the project's last item
 * carries no marker, as Trove's (a store's own "last evaluated key" would give it one).
 */
export function pageFromOneMore<T>(read: T[], limit: number, key: (t: T) => string): PageOf<T> {
  const items = read.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextMarker: read.length > limit && last ? key(last) : undefined };
}
