import { z } from 'zod';

// Trove's backup create body: `incremental` is an integer 0/1, not a boolean.
export const CreateBackupRequest = z.object({
  backup: z.object({
    name: z.string().min(1).max(255),
    instance: z.string().min(1),
    description: z.string().max(512).optional(),
    parent_id: z.string().optional(),
    incremental: z.union([z.literal(0), z.literal(1)]).optional(),
    swift_container: z.string().optional(),
    storage_driver: z.enum(['swift', 'cinder']).optional(),
  }),
});

export const BackupStrategyRequest = z.object({
  backup_strategy: z.object({
    swift_container: z.string().min(1).max(255),
    instance_id: z.string().optional(),
  }),
});
