import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpSink {
  /** The OTLP endpoint to give the services as OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  received(): { requests: number; bytes: number };
  close(): Promise<void>;
}

/**
 * A stand-in for a trace collector on 127.0.0.1 for `--tracing`: accepts every OTLP/HTTP export,
 * counts it and drops it, so that the services pay the full cost of making and sending their spans
 * and nothing else runs beside them.
 */
export async function startOtlpSink(): Promise<OtlpSink> {
  let requests = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      requests += 1;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: () => ({ requests, bytes }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
