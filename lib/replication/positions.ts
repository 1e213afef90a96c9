// Where each replica stands, as its engine says (Trove's get_last_txn), made comparable: eject
// makes the most advanced one the source, so no replica has to go back.

/** A position as one number: MariaDB's GTID set (sequence numbers summed over domains), PostgreSQL's LSN, Redis's offset. */
export function positionValue(manager: string, position: string): bigint {
  if (manager === 'postgresql') {
    const [hi, lo] = position.split('/');
    if (!hi || !lo) return -1n;
    return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
  }
  if (manager === 'redis') return /^\d+$/.test(position) ? BigInt(position) : -1n;
  // MariaDB: "domain-server-seq" entries, comma separated.
  return position
    .split(',')
    .map((gtid) => gtid.trim().split('-')[2])
    .filter((seq): seq is string => seq !== undefined && /^\d+$/.test(seq))
    .reduce((sum, seq) => sum + BigInt(seq), 0n);
}

/** The id of the member with the highest position (the first one on a tie). */
export function mostAdvanced(manager: string, members: { id: string; position: string }[]): string {
  const [first, ...rest] = members;
  if (!first) throw new Error('no replica to choose from');
  let best = first;
  for (const m of rest) {
    if (positionValue(manager, m.position) > positionValue(manager, best.position)) best = m;
  }
  return best.id;
}
