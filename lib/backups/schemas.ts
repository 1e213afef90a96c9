import { z } from 'zod';
import { Link } from '../openapi/schemas.ts';
import { idRef, safeText, troveUuid } from '../validation.ts';
import { compileSchedule, DAY_MS, HOUR_MS, type Schedule } from './schedule.ts';

// Trove's backup create body: `incremental` is an integer 0/1, not a boolean.
export const CreateBackupRequest = z.object({
  backup: z.object({
    name: safeText(255).min(1),
    // Trove's schema wants UUIDs here (troveclient resolves a name to its id before it sends).
    instance: troveUuid(),
    description: safeText(512).optional(),
    parent_id: troveUuid().optional(),
    incremental: z.union([z.literal(0), z.literal(1)]).optional(),
    swift_container: safeText(255).optional(),
    storage_driver: z.enum(['swift', 'cinder']).optional(),
  }),
});

export const BackupStrategyRequest = z.object({
  backup_strategy: z.object({
    swift_container: safeText(255).min(1),
    instance_id: idRef().optional(),
  }),
});
export type CreateBackupRequest = z.infer<typeof CreateBackupRequest>;
export type BackupStrategyRequest = z.infer<typeof BackupStrategyRequest>;

// Body of the Troveless extension route `PUT /v1.0/{project_id}/instances/{id}/backup_policy`.
const schedule = z
  .string()
  .max(255)
  .superRefine((expression, ctx) => {
    let problem: string | undefined;
    try {
      problem = frequencyProblem(compileSchedule(expression));
    } catch (err) {
      problem = (err as Error).message;
    }
    if (problem) ctx.addIssue({ code: 'custom', message: problem.replace('$expr', expression) });
  });

// Each backup loads the instance and takes quota, so more than one an hour is refused; a cron
// with a single minute value cannot fire twice within an hour.
function frequencyProblem(s: Schedule): string | undefined {
  if (s.kind === 'cron') {
    return s.minutes.size === 1
      ? undefined
      : '$expr is too frequent: give one minute so backups are 1 hour apart';
  }
  if (s.intervalMs < HOUR_MS) return '$expr is too frequent: backups must be at least 1 hour apart';
  // Beyond this the next run is not worth waiting for (and soon not a valid date).
  if (s.intervalMs > 366 * DAY_MS) return '$expr is too rare: backups must be at most 366 days apart';
  return undefined;
}

const count = z.int().min(1).max(1000);
const days = z.int().min(1).max(3650);
export const BackupRetention = z
  .strictObject({ count: count.optional(), days: days.optional() })
  .refine((r) => r.count !== undefined || r.days !== undefined, 'needs count, days or both');
export type BackupRetention = z.infer<typeof BackupRetention>;

export const BackupPolicy = z.strictObject({
  schedule,
  /** One full backup, then `full_every - 1` incrementals; 1 or absent means always full. */
  full_every: z.int().min(1).max(1000).optional(),
  /** With both count and days, a backup is kept when either keeps it. */
  retention: BackupRetention,
  enabled: z.boolean().default(true),
});
export type BackupPolicy = z.infer<typeof BackupPolicy>;

export const PutBackupPolicyRequest = z.strictObject({ backup_policy: BackupPolicy });

// Answers, as the OpenAPI description states them (lib/openapi), and the types views.ts and
// strategies.ts build.
const links = z.array(Link);

/** Trove's BackupView: the same for create, show and lists. Size is in GB, null until known. */
export const BackupView = z.looseObject({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  locationRef: z.string().nullable(),
  instance_id: z.string(),
  created: z.string(),
  updated: z.string(),
  size: z.number().nullable(),
  status: z.string(),
  parent_id: z.string().nullable(),
  project_id: z.string(),
  datastore: z.looseObject({ type: z.string(), version: z.string(), version_id: z.string() }),
});
export type BackupView = z.infer<typeof BackupView>;
export const BackupsResponse = z.object({ backups: z.array(BackupView), links: links.optional() });
export const BackupResponse = z.object({ backup: BackupView });

/** Trove's backup strategy: the container for a project's ('' instance) or an instance's backups. */
export const BackupStrategy = z.looseObject({
  project_id: z.string(),
  instance_id: z.string(),
  backend: z.literal('swift'),
  swift_container: z.string(),
});
export type BackupStrategy = z.infer<typeof BackupStrategy>;
export const BackupStrategyResponse = z.object({ backup_strategy: BackupStrategy });
export const BackupStrategiesResponse = z.object({ backup_strategies: z.array(BackupStrategy) });

export const BackupPolicyResponse = z.object({ backup_policy: BackupPolicy });
/** `GET .../backup_policy`: the policy and where its schedule stands. */
export const BackupPolicyStateResponse = z.object({
  backup_policy: BackupPolicy,
  state: z.object({ last_run: z.string().optional(), runs_since_full: z.int().optional() }),
});
