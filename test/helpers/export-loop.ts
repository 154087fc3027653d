// A worker thread that exports one batch of 500 SDK spans over OTLP/gRPC in a loop until told to
// stop, then reports how many exports succeeded and why others failed. It keeps the load
// generator off the collector's event loop: in production the exporter is another process, and
// a test whose client serializes on the collector's loop measures its own client too.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { parentPort, workerData } from 'node:worker_threads';

/** What the loop reports when stopped. */
export interface ExportLoopResult {
  exported: number;
  failures: string[];
}

const { address, timeoutMillis } = workerData as { address: string; timeoutMillis: number };
const memory = new InMemorySpanExporter();
const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'ingest' }), spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
const tracer = provider.getTracer('stall');
for (let i = 0; i < 500; i++) tracer.startSpan(`op ${i % 10}`, { attributes: { 'http.route': '/r', i } }).end();
const batch = [...memory.getFinishedSpans()];
const exporter = new OTLPTraceExporter({ url: `http://${address}`, timeoutMillis });
let running = true;
const result: ExportLoopResult = { exported: 0, failures: [] };
parentPort!.once('message', () => (running = false));
parentPort!.postMessage('started');
while (running) {
  await new Promise<void>((resolve) =>
    exporter.export(batch, (r) => {
      if (r.code === 0) result.exported++;
      else result.failures.push(r.error?.message ?? 'export failed');
      resolve();
    }),
  );
}
await exporter.shutdown();
parentPort!.postMessage(result);
