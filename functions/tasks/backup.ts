import { backupCompleted, backupFailed, sendBackupRequest } from '#lib/backups/steps';

// Task states of the backup workflow (statemachines/backup-create.asl.yml).
export const send = sendBackupRequest;
export const completed = backupCompleted;
export const failed = backupFailed;
