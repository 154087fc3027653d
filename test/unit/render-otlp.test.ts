// The read API's OTLP/JSON of a trace: the same spans give the same answer whatever order the
// store handed them over in.
import { describe, expect, it } from 'vitest';
import { renderTraces } from '../../src/query/render-otlp.ts';
import { makeSpan } from '../helpers/rows.ts';

describe('renderTraces', () => {
  it('orders spans that start together by span id, as the Jaeger API does, whatever order the store gave', () => {
    // A millisecond clock (a browser's) starts siblings together; each store hands a trace's
    // spans over in its own order (memory and SQLite as they arrived, PostgreSQL and ClickHouse
    // as their reads found them), and the web UI keeps the answer's order for siblings that
    // start together.
    const t = 1_700_000_000_000_000_000n;
    const root = makeSpan({ spanId: '00'.repeat(8), serviceName: 'web', startTimeUnixNano: t });
    const kids = ['cc', 'aa', 'bb'].map((b, i) => makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, spanId: b.repeat(8), serviceName: i === 1 ? 'api' : 'db', startTimeUnixNano: t + 5n }));
    const names = (spans: typeof kids) => renderTraces(spans).resourceSpans.map((r) => [r.resource.attributes.find((a) => a.key === 'service.name')?.value, r.scopeSpans.flatMap((s) => s.spans.map((x) => x.spanId))]);
    const expected = [[{ stringValue: 'web' }, ['00'.repeat(8)]], [{ stringValue: 'api' }, ['aa'.repeat(8)]], [{ stringValue: 'db' }, ['bb'.repeat(8), 'cc'.repeat(8)]]];
    expect(names([root, ...kids])).toEqual(expected);
    expect(names([...kids].reverse().concat(root))).toEqual(expected);
    expect(names([kids[2]!, root, kids[0]!, kids[1]!])).toEqual(expected);
  });
});
