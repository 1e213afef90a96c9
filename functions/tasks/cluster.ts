import {
  clusterFormed,
  connectMembers,
  deleteMembers,
  failClusterBuild,
  forgetCluster,
  formCluster,
  markClusterReady,
  membersGone,
  membersReady,
} from '#lib/clusters/steps';

// Task states of the cluster workflows (statemachines/cluster-*.asl.yml): each handler is the step.
export const waitMembers = membersReady;
export const connect = connectMembers;
export const form = formCluster;
export const checkFormed = clusterFormed;
export const ready = markClusterReady;
export const buildFailed = failClusterBuild;
export const deleteAll = deleteMembers;
export const waitGone = membersGone;
export const forget = forgetCluster;
