// Trove's five rate limits (its api-paste `limits` syntax) with chosen values per minute, for the
// test clouds: the suites poll far more than Trove's 200 requests a minute per verb.

export const rateLimits = (others: number, get: number) =>
  [
    `(POST, *, .*, ${others}, MINUTE)`,
    `(PUT, *, .*, ${others}, MINUTE)`,
    `(DELETE, *, .*, ${others}, MINUTE)`,
    `(GET, *, .*, ${get}, MINUTE)`,
    `(POST, */mgmt, ^/mgmt, ${others}, MINUTE)`,
  ].join(';');

/** Limits no test reaches: every request is still counted, none refused. */
export const UNREACHED_RATE_LIMITS = rateLimits(1_000_000, 1_000_000);
