import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { connectDoorbell, DOORBELL_HEADER } from '#lib/conductor/doorbell';

type ConnectEvent = APIGatewayProxyWebsocketEventV2 & { headers?: Record<string, string | undefined> };

/** The doorbell API's $connect (lib/guest/doorbell.ts): a guest with its instance's key, or nobody. */
export const handler = async (event: ConnectEvent): Promise<APIGatewayProxyResultV2> => {
  const headers = Object.fromEntries(
    Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
  );
  const outcome = await connectDoorbell(headers[DOORBELL_HEADER], event.requestContext.connectionId);
  return { statusCode: outcome === 'opened' ? 200 : 403 };
};
