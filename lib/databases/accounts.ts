import { BadRequest } from '../errors.ts';
import { accountRulesFor, hostOrAny, nameProblem, type Problem } from './rules/index.ts';

// Names the URL carries (a database, a user as `name` or `name@host`), checked with the engine's
// rules (rules/) before they reach its guest. Bodies are checked by the same rules through
// zod (schemas.ts, requestsFor).

function refuseIf(problem: Problem): void {
  if (problem) throw new BadRequest(problem);
}

export function checkDatabaseName(manager: string, name: string): string {
  refuseIf(nameProblem(name, accountRulesFor(manager).database));
  return name;
}

export function checkUserName(manager: string, name: string): string {
  refuseIf(nameProblem(name, accountRulesFor(manager).user));
  return name;
}

/** The host as given, '%' when none is. */
export function checkHost(manager: string, host: string | undefined): string {
  const given = hostOrAny(host);
  refuseIf(accountRulesFor(manager).hostProblem(given));
  return given;
}

/**
 * `name` or `name@host` from the URL; the host defaults to '%'. The edge (lib/http/edge.ts) has
 * decoded the path parameter exactly once: decoding again would turn `a%2541` into another name.
 */
export function parseUserRef(manager: string, decoded: string): { name: string; host: string } {
  const at = decoded.lastIndexOf('@');
  const name = at >= 0 ? decoded.slice(0, at) : decoded;
  return {
    name: checkUserName(manager, name),
    host: checkHost(manager, at >= 0 ? decoded.slice(at + 1) : undefined),
  };
}
