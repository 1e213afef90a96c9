import { z } from 'zod';
import { idRef } from '../validation.ts';
import { ClusterInstanceRequest } from './schemas.ts';

// The bodies of Trove's grow and shrink cluster actions (TROVE_API.md §8.1), each the value of
// its action key: a list of new members, or of the members that leave.

/** `{"grow":[{flavorRef, volume, name?, type?, related_to?, ...}]}` */
export const GrowRequest = z.object({ grow: z.array(ClusterInstanceRequest).min(1).max(64) });
export type GrowRequest = z.infer<typeof GrowRequest>['grow'];

/** `{"shrink":[{"id":...}]}` */
export const ShrinkRequest = z.object({
  shrink: z
    .array(z.looseObject({ id: idRef() }))
    .min(1)
    .max(64),
});
export type ShrinkRequest = z.infer<typeof ShrinkRequest>['shrink'];
