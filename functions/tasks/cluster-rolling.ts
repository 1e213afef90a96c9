import {
  clusterHealthy,
  failRolling,
  finishRolling,
  memberSettled,
  nextMember,
} from '#lib/clusters/rolling-steps';

// Task states of the rolling cluster workflows (statemachines/cluster-{restart,upgrade,configuration}.asl.yml).
export const next = nextMember;
export const settled = memberSettled;
export const healthy = clusterHealthy;
export const finish = finishRolling;
export const failed = failRolling;
