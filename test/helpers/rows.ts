// Row builders and a writer that goes through a backend's own encoder, as the workers do.
import { randomBytes, randomUUID } from 'node:crypto';
import type { KeyValue, LogRow, SpanRow } from '../../src/model/rows.ts';
import type { Signal } from '../../src/model/signal.ts';
import { loadRowEncoder, type RowEncoder } from '../../src/storage/encoders.ts';
import type { EncodedChunk, StorageBackend, WriteResult } from '../../src/storage/backend.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';

export const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** Attributes of every AnyValue kind, including int64 beyond 2^53 and nesting. */
export function allKindsAttributes(): KeyValue[] {
  return [
    { key: 'str', value: { stringValue: 'hello ✓ "quoted"' } },
    { key: 'bool', value: { boolValue: true } },
    { key: 'int.big', value: { intValue: '9223372036854775807' } },
    { key: 'int.neg', value: { intValue: '-9007199254740993' } },
    { key: 'double', value: { doubleValue: 3.25 } },
    { key: 'double.nan', value: { doubleValue: 'NaN' } },
    { key: 'bytes', value: { bytesValue: Buffer.from([0, 1, 2, 255]).toString('base64') } },
    { key: 'array', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '2' }, { arrayValue: { values: [{ boolValue: false }] } }] } } },
    { key: 'kvlist', value: { kvlistValue: { values: [{ key: 'inner', value: { kvlistValue: { values: [{ key: 'deep', value: { doubleValue: -1.5 } }] } } }] } } },
    { key: 'empty', value: {} },
    { key: '__proto__', value: { stringValue: "x'); DROP TABLE spans; --" } },
  ];
}

/** A span with every field set; override what the test needs. */
export function makeSpan(o: Partial<SpanRow> = {}): SpanRow {
  const start = o.startTimeUnixNano ?? BigInt(Date.now()) * 1_000_000n + 123n;
  const end = o.endTimeUnixNano ?? start + 5_000_001n;
  const service = o.serviceName ?? 'svc-' + randomUUID();
  return {
    traceId: hex(16),
    spanId: hex(8),
    parentSpanId: '',
    traceState: 'k=v',
    flags: 1,
    name: 'GET /items',
    kind: 2,
    statusCode: 0,
    statusMessage: '',
    resource: {
      attributes: [{ key: 'service.name', value: { stringValue: service } }, { key: 'host.cores', value: { intValue: '8' } }],
      droppedAttributesCount: 1,
      schemaUrl: 'https://opentelemetry.io/schemas/1.21.0',
    },
    scope: { name: 'test-scope', version: '1.2.3', attributes: [{ key: 'scope.attr', value: { boolValue: false } }], droppedAttributesCount: 0, schemaUrl: 'https://scope.example/schema' },
    attributes: allKindsAttributes(),
    droppedAttributesCount: 2,
    events: [{ timeUnixNano: start + 1000n, name: 'evt', attributes: [{ key: 'e', value: { intValue: '-1' } }], droppedAttributesCount: 3 }],
    droppedEventsCount: 4,
    links: [{ traceId: hex(16), spanId: hex(8), traceState: 'a=b', flags: 1, attributes: [{ key: 'l', value: { doubleValue: 0.5 } }], droppedAttributesCount: 5 }],
    droppedLinksCount: 6,
    ...o,
    serviceName: service,
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    durationNano: o.durationNano ?? (end > start ? end - start : 0n),
  };
}

/** Spans of one trace: a root and children under it. */
export function makeTrace(spans: number, o: Partial<SpanRow> = {}): SpanRow[] {
  const root = makeSpan(o);
  const out = [root];
  for (let i = 1; i < spans; i++) {
    out.push(makeSpan({ ...o, traceId: root.traceId, parentSpanId: root.spanId, serviceName: root.serviceName, name: `child-${i}`, kind: 3, startTimeUnixNano: root.startTimeUnixNano + BigInt(i) * 1000n, endTimeUnixNano: root.startTimeUnixNano + BigInt(i) * 2000n }));
  }
  return out;
}

/** A log record with every field set. */
export function makeLog(o: Partial<LogRow> = {}): LogRow {
  const service = o.serviceName ?? 'svc-' + randomUUID();
  const t = BigInt(Date.now()) * 1_000_000n + 7n;
  return {
    timeUnixNano: t,
    observedTimeUnixNano: t + 10n,
    traceId: hex(16),
    spanId: hex(8),
    flags: 1,
    severityNumber: 9,
    severityText: 'INFO',
    body: { kvlistValue: { values: [{ key: 'msg', value: { stringValue: 'hello' } }, { key: 'n', value: { intValue: '9007199254740993' } }] } },
    eventName: 'app.event',
    resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }], droppedAttributesCount: 0, schemaUrl: '' },
    scope: { name: 'logger', version: '0.1', attributes: [], droppedAttributesCount: 0, schemaUrl: '' },
    attributes: allKindsAttributes(),
    droppedAttributesCount: 1,
    ...o,
    serviceName: service,
  };
}

const encoders = new WeakMap<StorageBackend, Promise<RowEncoder>>();

function encoderOf(backend: StorageBackend): Promise<RowEncoder> {
  let e = encoders.get(backend);
  if (!e) {
    e = loadRowEncoder(backend.encoder);
    encoders.set(backend, e);
  }
  return e;
}

async function writeChunks(backend: StorageBackend, signal: Signal, chunks: EncodedChunk[], batchId?: string, tenant: string = DEFAULT_TENANT): Promise<WriteResult[]> {
  const byPartition = new Map<number, EncodedChunk[]>();
  for (const c of chunks) byPartition.set(c.partition, [...(byPartition.get(c.partition) ?? []), c]);
  const results: WriteResult[] = [];
  for (const [partition, cs] of byPartition) {
    const batch = {
      signal,
      partition,
      tenant,
      rows: cs.reduce((n, c) => n + c.rows, 0),
      bytes: cs.reduce((n, c) => n + c.data.byteLength, 0),
      chunks: cs.map((c) => c.data),
      batchId: batchId ?? randomUUID(),
    };
    results.push(await backend.write(batch));
  }
  return results;
}

function expectSuccess(results: WriteResult[]): void {
  for (const r of results) if (r.kind !== 'success') throw new Error(`write failed (${r.kind}): ${r.error.message}`);
}

/** Encodes spans with the backend's encoder and writes them, one batch per partition; throws unless every write succeeds. */
export async function writeSpans(backend: StorageBackend, rows: SpanRow[], batchId?: string): Promise<void> {
  expectSuccess(await writeChunks(backend, 'traces', (await encoderOf(backend)).encodeSpans(rows), batchId));
}

/** Encodes spans with the backend's encoder and writes them as one tenant's batch. */
export async function writeSpansAs(backend: StorageBackend, tenant: string, rows: SpanRow[]): Promise<void> {
  expectSuccess(await writeChunks(backend, 'traces', (await encoderOf(backend)).encodeSpans(rows), undefined, tenant));
}

/** Encodes log records with the backend's encoder and writes them as one tenant's batch. */
export async function writeLogsAs(backend: StorageBackend, tenant: string, rows: LogRow[]): Promise<void> {
  expectSuccess(await writeChunks(backend, 'logs', (await encoderOf(backend)).encodeLogs(rows), undefined, tenant));
}

/** Encodes log records with the backend's encoder and writes them; throws unless every write succeeds. */
export async function writeLogs(backend: StorageBackend, rows: LogRow[], batchId?: string): Promise<void> {
  expectSuccess(await writeChunks(backend, 'logs', (await encoderOf(backend)).encodeLogs(rows), batchId));
}

/** Sorts attribute lists by key so stored and expected rows compare regardless of order. */
export function canonical<T>(v: T): T {
  return JSON.parse(
    JSON.stringify(v, (_k, x) => {
      if (typeof x === 'bigint') return x.toString();
      if (Array.isArray(x) && x.every((e) => e && typeof e === 'object' && 'key' in e && 'value' in e)) return [...x].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      return x;
    }),
  );
}
