/**
 * Prints the Inventory service's events as they reach NATS JetStream, one JSON line each (the
 * envelope of docs/api.md §5: id, type, occurred_at, data).
 *
 *   npm run events                   events published from now on
 *   npm run events -- --all          every event the stream still holds, then new ones
 *   npm run events -- --type purchase.completed
 *
 * NATS_URL (default nats://127.0.0.1:4222), NATS_STREAM (INVENTORY) and NATS_SUBJECT_PREFIX
 * (inventory) name the server, stream and subjects, as for the service. Ctrl-C stops.
 */
import { parseArgs } from 'node:util';
import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

const { values } = parseArgs({
  options: {
    all: { type: 'boolean', default: false },
    type: { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('Uso: npm run events [-- --all] [-- --type purchase.completed|inventory.updated]\n');
  process.exit(0);
}

const url = process.env.NATS_URL?.trim() || 'nats://127.0.0.1:4222';
const stream = process.env.NATS_STREAM?.trim() || 'INVENTORY';
const prefix = process.env.NATS_SUBJECT_PREFIX?.trim() || 'inventory';
// The service's subject mapping: purchase.completed → <prefix>.purchase.completed, inventory.updated → <prefix>.updated.
const subjects = (values.type ?? []).map((type) => `${prefix}.${type.replace(/^inventory\./, '')}`);

const fail = (message: string): never => {
  process.stderr.write(`${message}\n`);
  process.exit(1);
};

const nc = await connect({
  servers: url.split(',').map((s) => s.trim()),
  name: 'inventory-events-cli',
}).catch((err: Error) => fail(`No se pudo conectar a NATS en ${url}: ${err.message}`));
// An ordered consumer: ephemeral, in stream order, recreated by the client after any gap.
const consumer = await jetstream(nc)
  .consumers.get(stream, {
    deliver_policy: values.all ? DeliverPolicy.All : DeliverPolicy.New,
    // One subject goes as a string: a list needs NATS 2.10, and one filter works everywhere.
    ...(subjects.length > 0 ? { filter_subjects: subjects.length === 1 ? subjects[0]! : subjects } : {}),
  })
  .catch((err: Error) =>
    fail(
      err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound
        ? `El stream ${stream} no existe todavía: arranque el servicio de inventario con NATS_URL`
        : `No se pudo leer el stream ${stream}: ${err.message}`,
    ),
  );

const stop = async () => {
  await nc.drain().catch(() => undefined);
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
// `npm run events | head` closes the pipe: that is a normal way to stop.
process.stdout.on('error', stop);

process.stderr.write(
  `Escuchando ${stream} en ${url}${values.all ? ' (desde el principio)' : ''}; Ctrl-C para salir\n`,
);
for await (const message of await consumer.consume()) {
  process.stdout.write(`${message.string()}\n`);
}
