import type { APIGatewayProxyResultV2 } from 'aws-lambda';

/**
 * The doorbell API's $default: a guest's keep-alive (API Gateway closes a WebSocket connection
 * idle for 10 minutes). The connection was proven at $connect; what the guest says is not read.
 */
export const handler = async (): Promise<APIGatewayProxyResultV2> => ({ statusCode: 200 });
