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
  const client = new LambdaClient({
    endpoint,
    region: 'us-east-1',
    credentials: localCredentials,
    maxAttempts: 1,
  });
  return async (functionName: string, payload: unknown): Promise<unknown> => {
    const out = await client.send(
      new InvokeCommand({
        FunctionName: functionName,
        Payload: new TextEncoder().encode(JSON.stringify(payload ?? {})),
      }),
    );
    const text = out.Payload ? new TextDecoder().decode(out.Payload) : '';
    const result: unknown = text ? JSON.parse(text) : null;
    if (out.FunctionError) {
      const e = (result ?? {}) as { errorType?: string; errorMessage?: string; trace?: string[] };
      throw new FunctionError(errorTypeOf(e), e.errorMessage ?? `${functionName} failed`);
    }
    return result;
  };
}

/**
 * AWS Lambda reports a thrown error's `name` as its errorType, and Step Functions' Retry and Catch
 * match on it. serverless-offline always says "Error", but its trace starts with "<name>: <message>".
 */
function errorTypeOf(e: { errorType?: string; errorMessage?: string; trace?: string[] }): string {
  if (e.errorType && e.errorType !== 'Error') return e.errorType;
  // serverless-offline's function timeout; AWS Lambda names the same event Sandbox.Timedout.
  if (e.errorMessage === '[504] - Lambda timeout.') return 'Sandbox.Timedout';
  const named = /^([A-Za-z_$][\w.$-]*): /.exec(e.trace?.[0] ?? '');
  return named?.[1] ?? e.errorType ?? 'Error';
}
