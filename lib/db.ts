import * as dynamoose from 'dynamoose';

// Tables are owned by CloudFormation (and by the local cloud's provisioner, from the same
// definitions); the models must never create or alter them at run time. The client takes its
// endpoint from the SDK's standard configuration (AWS_ENDPOINT_URL_DYNAMODB locally).
dynamoose.aws.ddb.set(new dynamoose.aws.ddb.DynamoDB({}));

export const tableOptions = { create: false, update: false, waitForActive: false } as const;
export { dynamoose };
