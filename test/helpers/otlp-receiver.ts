// An OTLP/HTTP JSON trace receiver for tests: every export's spans, with the path, content type and service name
// they came with.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export type AnyValue = { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean };

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: AnyValue }[];
  status?: { code?: number; message?: string };
}

/** The spans of one resource in one export request. */
export interface OtlpExport {
  path: string;
  contentType: string | undefined;
  serviceName: string | undefined;
  spans: OtlpSpan[];
}

export interface OtlpReceiver {
  /** The base URL to configure as tracing.endpoint. */
  endpoint: string;
  exports: OtlpExport[];
  /** Every span received so far, in arrival order. */
  spans(): OtlpSpan[];
  close(): void;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const exports: OtlpExport[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const rs of body.resourceSpans ?? []) {
        const service = rs.resource?.attributes?.find((a: { key: string }) => a.key === 'service.name')?.value?.stringValue;
        exports.push({ path: req.url ?? '', contentType: req.headers['content-type'], serviceName: service, spans: rs.scopeSpans.flatMap((s: { spans: OtlpSpan[] }) => s.spans) });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports,
    spans: () => exports.flatMap((e) => e.spans),
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
