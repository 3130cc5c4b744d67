import { hostname } from 'node:os';

/**
 * Which process answered: the host (a pod's name in Kubernetes) and the process id, so that every
 * worker of a cluster and every replica of a deployment has its own, stable for its life. It is in
 * every log line (`instance`) and in the `X-Instance-Id` header of every response.
 */
export const INSTANCE_ID = `${hostname()}-${process.pid}`;
