import { endResize, extendVolume, resizeServer } from '#lib/instances/resize-steps';

// Task states of the resize workflows (statemachines/instance-resize-{flavor,volume}.asl.yml).
export const server = resizeServer;
export const volume = extendVolume;
export const end = endResize;
