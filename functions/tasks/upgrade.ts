import { endUpgrade } from '#lib/instances/upgrade-steps';

// Task state of the upgrade workflow (statemachines/instance-upgrade.asl.yml); its other steps
// are the backup's and the guest order's own.
export const end = endUpgrade;
