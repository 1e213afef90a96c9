import { z } from 'zod';
import { GrowMembers, ShrinkMembers } from './schemas.ts';

// The bodies of Trove's grow and shrink cluster actions (TROVE_API.md §8.1), each the value of
// its action key: a list of new members, or of the members that leave.

/** `{"grow":[{flavorRef, volume, name?, type?, related_to?, ...}]}` */
export const GrowRequest = z.object({ grow: GrowMembers });
export type GrowRequest = z.infer<typeof GrowRequest>['grow'];

/** `{"shrink":[{"id":...}]}` */
export const ShrinkRequest = z.object({ shrink: ShrinkMembers });
export type ShrinkRequest = z.infer<typeof ShrinkRequest>['shrink'];
