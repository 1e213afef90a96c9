import { z } from 'zod';
import { idRef, safeText } from '../http/validation.ts';

// Trove's backup create body: `incremental` is an integer 0/1, not a boolean.
export const CreateBackupRequest = z.object({
  backup: z.object({
    name: safeText(255).min(1),
    instance: idRef(),
    description: safeText(512).optional(),
    parent_id: idRef().optional(),
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
