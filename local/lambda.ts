import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { localCredentials } from './dynamodb.ts';

/** An error a function returned, carrying Lambda's errorType so Retry/Catch can match on it. */
export class FunctionError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** Invokes functions through serverless-offline's Lambda Invoke API, as AWS's services would. */
export function lambdaInvoker(endpoint: string) {
  const client = new LambdaClient({ endpoint, region: 'us-east-1', credentials: localCredentials, maxAttempts: 1 });
  return async (functionName: string, payload: unknown): Promise<unknown> => {
    const out = await client.send(
      new InvokeCommand({ FunctionName: functionName, Payload: new TextEncoder().encode(JSON.stringify(payload ?? {})) }),
    );
    const text = out.Payload ? new TextDecoder().decode(out.Payload) : '';
    const result: unknown = text ? JSON.parse(text) : null;
    if (out.FunctionError) {
      const e = (result ?? {}) as { errorType?: string; errorMessage?: string };
      throw new FunctionError(e.errorType ?? 'Error', e.errorMessage ?? `${functionName} failed`);
    }
    return result;
  };
}
