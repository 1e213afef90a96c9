import { seal } from './signing.ts';

// What a guest shows to open its doorbell (lib/guest/doorbell.ts): `{method: "doorbell",
// instance_id, sent}` sealed with its instance key, in one header of the WebSocket upgrade. Here,
// apart from the doorbell's control-plane side, so that the agent imports nothing else for it.

export const DOORBELL_HEADER = 'x-troveless-doorbell';

export function doorbellToken(key: Buffer, instanceId: string, sent: number): string {
  return seal(key, instanceId, { method: 'doorbell', instance_id: instanceId, sent });
}
