import { z } from 'zod';
import { safeText } from '../validation.ts';

// Trove's guest log routes (TROVE_API.md §8.2): the action body and the log view.

// troveclient sends 1 for each flag it sets; Trove reads any truthy value.
const flag = z.union([z.boolean(), z.literal(0), z.literal(1)]).optional();

export const LogActionRequest = z.object({
  name: safeText(255).min(1),
  enable: flag,
  disable: flag,
  publish: flag,
  discard: flag,
});
export type LogActionRequest = z.infer<typeof LogActionRequest>;

export const LogView = z.object({
  name: z.string(),
  type: z.enum(['USER', 'SYS']),
  status: z.enum([
    'Disabled',
    'Enabled',
    'Unavailable',
    'Ready',
    'Published',
    'Partial',
    'Rotated',
    'Restart Required',
  ]),
  published: z.number().int(),
  pending: z.number().int(),
  /** The Swift container once something was published, else the string "None". */
  container: z.string(),
  prefix: z.string(),
  metafile: z.string(),
});
export type LogView = z.infer<typeof LogView>;

export const LogsResponse = z.object({ logs: z.array(LogView) });
export const LogResponse = z.object({ log: LogView });
