import { Logger } from '@aws-lambda-powertools/logger';

// One structured logger for handlers, tasks and the agent. Passwords and tokens are never passed
// to it; request bodies are not logged.
export const logger = new Logger({ serviceName: 'troveless' });
