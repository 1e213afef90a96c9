import {
  finishReseed,
  planReseed,
  removeReseedSnapshot,
  reseedFailed as reseedFailedStep,
  restoreMember,
  snapshotForReseed,
} from '#lib/replication/reseed';
import { joinReplicaSet, takeSnapshot } from '#lib/replication/snapshot';
import {
  chooseCandidate,
  fenceSource,
  finishDetach,
  finishSwitch,
  orderMember,
  planEjection,
  planPromotion,
  switchFailed,
} from '#lib/replication/switchover';
import { pointWriter as pointWriterTo } from '#lib/replication/writer';

// Task states of a replica's create workflow (statemachines/instance-create.asl.yml) and of the
// replica set's promote, eject, detach and re-seed (statemachines/replica-*.asl.yml).
export const snapshot = takeSnapshot;
export const join = joinReplicaSet;
export const planPromote = planPromotion;
export const planEject = planEjection;
export const choose = chooseCandidate;
export const order = orderMember;
export const finish = finishSwitch;
export const failed = switchFailed;
export const detached = finishDetach;
export const pointWriter = pointWriterTo;
export const fence = fenceSource;
export const reseedPlan = planReseed;
export const reseedSnapshot = snapshotForReseed;
export const reseedRestore = restoreMember;
export const reseedRemoveSnapshot = removeReseedSnapshot;
export const reseedFinish = finishReseed;
export const reseedFailed = reseedFailedStep;
