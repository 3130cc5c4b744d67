import type { FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { Deadline } from './deadline.js';
import type { AppError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** When this request must have been answered: each step that waits or writes checks it first. */
    deadline: Deadline;
  }
}

export interface RequestDeadlineOptions {
  timeoutMs: number;
  registry: Registry;
  /** The one error mapping of the app, to tell why a request was answered 503. */
  toAppError: (error: unknown) => AppError;
}

/**
 * Gives every request a deadline, `timeoutMs` after it arrived. The deadline is cooperative: the
 * work of a request asks it before each step (a call to another service is cut at it, a purchase not
 * yet written by then is dropped), so that a request past it is answered 503 + Retry-After with
 * nothing written — never a 503 for something that was written meanwhile, as a timer answering in
 * the work's place could give. `requests_shed_total{reason}` counts the 503s by their error code:
 * out of time, a full queue, an exhausted pool, a lock held elsewhere, a dependency down.
 */
export function registerRequestDeadline(app: FastifyInstance, options: RequestDeadlineOptions): void {
  const shed = new Counter({
    name: 'requests_shed_total',
    help: 'Requests answered 503 (nothing written), by reason: the error code',
    labelNames: ['reason'] as const,
    registers: [options.registry],
  });
  app.decorateRequest('deadline', null as unknown as Deadline);
  app.addHook('onRequest', (request, _reply, done) => {
    request.deadline = new Deadline(options.timeoutMs);
    done();
  });
  // A request whose body took its whole time to arrive is not started.
  app.addHook('preHandler', (request, _reply, done) => {
    try {
      request.deadline.check();
    } catch (err) {
      return done(err as Error);
    }
    done();
  });
  app.addHook('onError', (_request, _reply, error, done) => {
    const appError = options.toAppError(error);
    if (appError.status === 503) shed.inc({ reason: appError.code });
    done();
  });
}
