import { projectHandler } from '#lib/http/handler';
import { byRouteKey } from '#lib/http/routing';
import * as databases from './databases.ts';
import * as root from './root.ts';
import * as users from './users.ts';

// One function for Trove's database, user, access and root routes (TROVE_API.md §4), picked by
// route key: they share their dependencies and IAM, and one function per route would push the
// stack past CloudFormation's 500 resources.
const i = 'GET /v1.0/{project_id}/instances/{instance_id}';
const at = (method: string, path: string) => `${method} /v1.0/{project_id}/instances/{instance_id}${path}`;

export const handler = projectHandler(
  byRouteKey({
    [`${i}/databases`]: databases.list,
    [at('POST', '/databases')]: databases.create,
    [`${i}/databases/{database}`]: databases.show,
    [at('DELETE', '/databases/{database}')]: databases.remove,
    [`${i}/users`]: users.list,
    [at('POST', '/users')]: users.create,
    [at('PUT', '/users')]: users.passwords,
    [`${i}/users/{user}`]: users.show,
    [at('PUT', '/users/{user}')]: users.update,
    [at('DELETE', '/users/{user}')]: users.remove,
    [`${i}/users/{user}/databases`]: users.access,
    [at('PUT', '/users/{user}/databases')]: users.grant,
    [at('DELETE', '/users/{user}/databases/{database}')]: users.revoke,
    [`${i}/root`]: root.show,
    [at('POST', '/root')]: root.enable,
    [at('DELETE', '/root')]: root.disable,
  }),
);
