import {
  addGrownMembers,
  checkGrown,
  checkShrunk,
  connectGrown,
  deleteLeaving,
  failGrow,
  failShrink,
  grownMembersReady,
  markGrown,
  markShrunk,
  removeLeaving,
} from '#lib/clusters/resize-steps';

// Task states of the cluster-grow and cluster-shrink workflows: each handler is the step.
export const growWaitMembers = grownMembersReady;
export const growConnect = connectGrown;
export const growAdd = addGrownMembers;
export const growCheck = checkGrown;
export const growDone = markGrown;
export const growFailed = failGrow;
export const shrinkRemove = removeLeaving;
export const shrinkCheck = checkShrunk;
export const shrinkDelete = deleteLeaving;
export const shrinkDone = markShrunk;
export const shrinkFailed = failShrink;
