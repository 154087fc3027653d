// The memory store's trace index against a model: each trace's spans are chained through their
// blocks' columns (each span names the one of its trace stored before it), a trace keeps a bit per
// span id it has held (a clear bit: no walk), and its span ids go into a set once it has enough
// spans. Random writes of a few traces, with spans sent again (whole batches and single spans,
// within one chunk and across chunks of one batch), past maxSpans so that eviction cuts chains in
// the middle: every trace must read back as the model's live spans of it, in the order they were
// stored, each once. It fails when the walk misses the rows of the chunk being stored or stops a
// span late, when eviction leaves a span id in its trace's set, or when a trace's id bits lose an
// earlier span's bit (each checked), and when a span's link to the one before it is kept in a way
// that breaks once a long-running store has numbered 2^31 spans.
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { loadRowEncoder } from '../../src/storage/encoders.ts';
import { createMemoryBackend } from '../../src/storage/memory/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { makeSpan } from '../helpers/rows.ts';

const TRACES = 3;
/** Span ids per trace: past the 32 from which a trace keeps its ids in a set. */
const SPAN_IDS = 45;

const traceId = (t: number) => (t + 1).toString(16).padStart(32, '0');
// Spread over every bit (as real ids are random), so the store's per-trace filter of id bits is exercised too.
const word = (v: number) => (v >>> 0).toString(16).padStart(8, '0');
const spanId = (s: number) => word(Math.imul(s + 1, 0x9e3779b1)) + word(Math.imul(s + 7, 0x85ebca6b));

/** A write: chunks of (trace, span) picks. */
type Write = [number, number][][];

describe('memory store trace index', () => {
  it('reads every trace back as the spans it holds, in stored order, each once, through resends and eviction', async () => {
    const encoder = await loadRowEncoder({ name: 'otlp', options: {} });
    // Trace 0 gets most spans, so that it often holds past 32 when its oldest are evicted and sent again.
    const trace = fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: 0, max: TRACES - 1 }), weight: 1 });
    const pick = fc.tuple(trace, fc.integer({ min: 0, max: SPAN_IDS - 1 }));
    const write = fc.array(fc.array(pick, { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 3 });
    // A store that has run long: its spans' insertion numbers pass 2^31 (an int32 column) and 2^32 during the writes.
    const firstSeq = fc.oneof(fc.constant(0), fc.integer({ min: 2 ** 31 - 400, max: 2 ** 31 }), fc.integer({ min: 2 ** 32 - 400, max: 2 ** 32 }));
    await fc.assert(
      fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 12 }), fc.integer({ min: 5, max: 60 }), firstSeq, async (writes: Write[], maxSpans, firstSpanSeq) => {
        const store = createMemoryBackend({ maxSpans, maxLogs: 10, maxBytes: 1 << 30, maxAgeMs: 0, firstSpanSeq }, { logger: pino({ level: 'silent' }), metrics: createMetrics() });
        await store.start();
        // The model: the live spans, oldest first, as "trace/span".
        let live: string[] = [];
        try {
          for (const [w, chunks] of writes.entries()) {
            const encoded = chunks.map((picks) => {
              const rows: SpanRow[] = picks.map(([t, s]) => makeSpan({ traceId: traceId(t), spanId: spanId(s), serviceName: `svc-${t}`, name: `op-${s % 3}` }));
              for (const [t, s] of picks) if (!live.includes(`${t}/${s}`)) live.push(`${t}/${s}`);
              const out = encoder.encodeSpans(rows);
              expect(out).toHaveLength(1);
              return out[0]!;
            });
            live = live.slice(Math.max(0, live.length - maxSpans));
            const result = await store.write({
              signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, batchId: `b${w}`,
              rows: encoded.reduce((n, c) => n + c.rows, 0), bytes: encoded.reduce((n, c) => n + c.data.byteLength, 0), chunks: encoded.map((c) => c.data),
            });
            expect(result.kind).toBe('success');
            for (let t = 0; t < TRACES; t++) {
              const want = live.filter((k) => k.startsWith(`${t}/`)).map((k) => spanId(Number(k.split('/')[1])));
              const got = (await store.getTrace(DEFAULT_TENANT, traceId(t))).map((s) => s.spanId);
              expect(got).toEqual(want);
            }
            expect((await store.stats!()).signals.find((s) => s.signal === 'traces')?.rows).toBe(live.length);
          }
        } finally {
          await store.shutdown();
        }
      }),
      { numRuns: 100 },
    );
  });
});
