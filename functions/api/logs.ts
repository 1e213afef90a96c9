import type { z } from 'zod';
import { parsedBody } from '#lib/http/body';
import { projectHandler } from '#lib/http/handler';
import { json } from '#lib/http/response';
import { byRouteKey } from '#lib/http/routing';
import { LogActionRequest, type LogResponse, type LogsResponse } from '#lib/logs/schemas';
import { listLogs, logAction } from '#lib/logs/service';
import { validate } from '#lib/validation';

/** Trove's guest log routes (TROVE_API.md §8.2): a guest call each. */
export const handler = projectHandler(
  byRouteKey({
    'GET /v1.0/{project_id}/instances/{instance_id}/log': async (event, caller) => {
      const logs = await listLogs(caller, event.pathParameters?.instance_id ?? '');
      return json(200, { logs } satisfies z.infer<typeof LogsResponse>);
    },
    'POST /v1.0/{project_id}/instances/{instance_id}/log': async (event, caller) => {
      const request = validate(LogActionRequest, parsedBody(event));
      const log = await logAction(caller, event.pathParameters?.instance_id ?? '', request);
      return json(200, { log } satisfies z.infer<typeof LogResponse>);
    },
  }),
);
