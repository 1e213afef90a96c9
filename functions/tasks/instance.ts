import { issueCertificate as issueInstanceCertificate } from '#lib/instances/certificate';
import {
  createPort,
  endTask,
  failBuild,
  failDelete,
  forgetInstance,
  launchServer,
  markReady,
  prepareGuestQueue,
  rebootServer,
  rebuildServer,
  removeGuestQueue,
  sendGuestRequest,
  terminateServer,
} from '#lib/instances/steps';

// Task states of the instance workflows. Each handler is the step itself: the state machine
// passes the instance's ids and gets back what later states need.
export const createQueue = prepareGuestQueue;
export const port = createPort;
export const launch = launchServer;
export const issueCertificate = issueInstanceCertificate;
export const sendRequest = sendGuestRequest;
export const ready = markReady;
export const finish = endTask;
export const buildFailed = failBuild;
export const terminate = terminateServer;
export const reboot = rebootServer;
export const rebuild = rebuildServer;
export const deleteQueue = removeGuestQueue;
export const forget = forgetInstance;
export const deleteFailed = failDelete;
