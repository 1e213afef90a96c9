// Characters no id, name or free text may carry: C0 and C1 controls, DEL, and the Unicode
// bidirectional marks, embeddings, overrides and isolates (a name that renders differently from
// what it is, "Trojan Source"). Lone surrogates are refused too: they have no UTF-8 form, so
// DynamoDB and the engines could not store the string as it was sent.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function isSafeText(value: string): boolean {
  return !UNSAFE.test(value) && !LONE_SURROGATE.test(value);
}

/** An id or name as it may appear in a message: shortened, with unsafe characters replaced. */
export function shown(value: string): string {
  const chars = [...value.slice(0, 80)].map((c) => (isSafeText(c) ? c : '\uFFFD'));
  return chars.length > 64 || value.length > 80 ? `${chars.slice(0, 64).join('')}...` : chars.join('');
}
