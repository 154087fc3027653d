// ClickHouse adapter pieces that need no engine: DDL text (including cluster mode, which cannot
// run here), endpoint parsing, shard routing, error mapping, exact value tags.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { AnyValue, KeyValue } from '../../src/model/rows.ts';
import { anyValueToString } from '../../src/model/rows.ts';
import { createEncoder, hashTraceId, shardOf } from '../../src/storage/clickhouse/encoder.ts';
import { parseEndpoints } from '../../src/storage/clickhouse/endpoints.ts';
import { classifyWriteError } from '../../src/storage/clickhouse/errors.ts';
import { clickhouseSettings } from '../../src/storage/clickhouse/index.ts';
import { bootstrapStatements, migrations, validateSchemaOptions, type SchemaOptions } from '../../src/storage/clickhouse/schema.ts';
import { loadChdb } from '../../src/storage/clickhouse/shard.ts';
import { joinAttributes, parseExact, stringifyExact, tagOf } from '../../src/storage/clickhouse/values.ts';
import { allKindsAttributes, makeLog, makeSpan } from '../helpers/rows.ts';
import { clickhouseOptions } from '../../src/storage/index.ts';

const base: SchemaOptions = { database: 'otel', tracesTable: 'otel_traces', logsTable: 'otel_logs', ttlDays: 0, codec: 'ZSTD(1)', cluster: '' };
const ddl = (o: Partial<SchemaOptions> = {}) => [...bootstrapStatements({ ...base, ...o }), ...migrations({ ...base, ...o }).flatMap((m) => m.statements)];
const oneLine = (s: string) => s.replace(/\s+/g, ' ');

describe('clickhouse DDL', () => {
  it('creates the exporter tables, lookup and view on plain MergeTree with a deduplication window', () => {
    const all = ddl().map(oneLine);
    expect(all[0]).toBe('CREATE DATABASE IF NOT EXISTS `otel`');
    const traces = all.find((s) => s.includes('TABLE IF NOT EXISTS `otel`.`otel_traces` ('))!;
    expect(traces).toContain('`Timestamp` DateTime64(9) CODEC(Delta(8), ZSTD(1))');
    expect(traces).toContain('`Duration` UInt64 CODEC(T64, ZSTD(1))');
    expect(traces).toContain('`Events` Nested(`Timestamp` DateTime64(9), `Name` LowCardinality(String), `Attributes` Map(LowCardinality(String), String))');
    expect(traces).toContain('INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1');
    expect(traces).toContain('INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0)');
    expect(traces).toContain('ENGINE = MergeTree PARTITION BY toDate(Timestamp) PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp)) ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)');
    expect(traces).toContain('SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000');
    expect(traces).not.toContain('TTL');
    const lookup = all.find((s) => s.includes('`otel_traces_trace_id_ts` ('))!;
    expect(lookup).toContain('`Start` SimpleAggregateFunction(min, DateTime)');
    expect(lookup).toContain('ENGINE = AggregatingMergeTree PARTITION BY toStartOfWeek(Start) ORDER BY TraceId');
    const view = all.find((s) => s.includes('MATERIALIZED VIEW'))!;
    expect(view).toContain('`otel`.`otel_traces_trace_id_ts_mv` TO `otel`.`otel_traces_trace_id_ts`');
    expect(view).toContain("FROM `otel`.`otel_traces` WHERE TraceId != '' GROUP BY TraceId");
    const logs = all.find((s) => s.includes('`otel_logs` ('))!;
    expect(logs).toContain('`TimestampTime` DateTime DEFAULT toDateTime(Timestamp)');
    expect(logs).toContain('INDEX idx_body_ngram Body TYPE ngrambf_v1(3, 32768, 3, 0)');
    expect(logs).toContain('PARTITION BY toDate(TimestampTime) PRIMARY KEY (ServiceName, TimestampTime) ORDER BY (ServiceName, TimestampTime, Timestamp)');
    expect(all.some((s) => s.includes('ON CLUSTER') || s.includes('Replicated') || s.includes('Distributed'))).toBe(false);
  });

  it('applies names, TTL and codec from the options', () => {
    const all = ddl({ database: 'tel', tracesTable: 'spans', logsTable: 'records', ttlDays: 7, codec: 'LZ4' }).map(oneLine);
    expect(all.some((s) => s.includes('`tel`.`spans` (') && s.includes('TTL toDateTime(Timestamp) + toIntervalDay(7)'))).toBe(true);
    expect(all.some((s) => s.includes('`tel`.`records` (') && s.includes('TTL TimestampTime + toIntervalDay(7)'))).toBe(true);
    // A trace's lookup row lives as long as its newest span (End), on new tables and by migration 3.
    expect(all.some((s) => s.includes('`tel`.`spans_trace_id_ts` (') && s.includes('TTL toDateTime(End) + toIntervalDay(7)'))).toBe(true);
    expect(all).toContain('ALTER TABLE `tel`.`spans_trace_id_ts` MODIFY TTL toDateTime(End) + toIntervalDay(7)');
    expect(all.some((s) => s.includes('`tel`.`spans_trace_id_ts_mv` TO `tel`.`spans_trace_id_ts`'))).toBe(true);
    expect(all.join('\n')).toContain('`SpanName` LowCardinality(String) CODEC(LZ4)');
    expect(all.join('\n')).toContain('CODEC(Delta(8), LZ4)');
    expect(all.join('\n')).not.toContain('ZSTD');
  });

  it('generates cluster DDL: ON CLUSTER, Replicated engines, Distributed tables by cityHash64(TraceId)', () => {
    const all = ddl({ cluster: 'prod-1' }).map(oneLine);
    for (const s of all) expect(s).toContain('ON CLUSTER `prod-1`');
    expect(all[0]).toBe('CREATE DATABASE IF NOT EXISTS `otel` ON CLUSTER `prod-1`');
    expect(all[1]).toContain("ENGINE = ReplicatedMergeTree('/clickhouse/tables/tracehouse/{database}/{table}', '{shard}-{replica}')");
    const local = all.find((s) => s.includes('`otel`.`otel_traces_local` ON CLUSTER `prod-1` ('))!;
    expect(local).toContain("ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}') PARTITION BY toDate(Timestamp)");
    expect(local).not.toContain('non_replicated_deduplication_window');
    expect(all.find((s) => s.includes('`otel_traces_trace_id_ts_local` ON CLUSTER `prod-1` ('))).toContain('ENGINE = ReplicatedAggregatingMergeTree(');
    expect(all.find((s) => s.includes('`otel_logs_local` ON CLUSTER `prod-1` ('))).toContain('ENGINE = ReplicatedMergeTree(');
    expect(all.find((s) => s.includes('MATERIALIZED VIEW'))).toContain(
      '`otel`.`otel_traces_trace_id_ts_mv` ON CLUSTER `prod-1` TO `otel`.`otel_traces_trace_id_ts_local`',
    );
    expect(all.find((s) => s.includes('MATERIALIZED VIEW'))).toContain('FROM `otel`.`otel_traces_local`');
    expect(all).toContain(
      "CREATE TABLE IF NOT EXISTS `otel`.`otel_traces` ON CLUSTER `prod-1` AS `otel`.`otel_traces_local` ENGINE = Distributed('prod-1', 'otel', 'otel_traces_local', cityHash64(TraceId))",
    );
    expect(all).toContain(
      "CREATE TABLE IF NOT EXISTS `otel`.`otel_traces_trace_id_ts` ON CLUSTER `prod-1` AS `otel`.`otel_traces_trace_id_ts_local` ENGINE = Distributed('prod-1', 'otel', 'otel_traces_trace_id_ts_local', cityHash64(TraceId))",
    );
    expect(all.find((s) => s.includes('`otel`.`otel_logs` ON CLUSTER'))).toContain(
      "ENGINE = Distributed('prod-1', 'otel', 'otel_logs_local', if(TraceId = '', cityHash64(ServiceName, Timestamp), cityHash64(TraceId)))",
    );
  });

  it('refuses names and codecs that are not plain identifiers', () => {
    expect(() => validateSchemaOptions({ ...base, database: 'otel; DROP' })).toThrow(/storage.clickhouse.database/);
    expect(() => validateSchemaOptions({ ...base, tracesTable: 'a`b' })).toThrow(/storage.clickhouse.tracesTable/);
    expect(() => validateSchemaOptions({ ...base, codec: 'ZSTD(1)) ENGINE = Log --' })).toThrow(/compressionCodec/);
    expect(() => validateSchemaOptions({ ...base, cluster: "c' OR 1" })).toThrow(/storage.clickhouse.cluster/);
    expect(() => validateSchemaOptions({ ...base, codec: 'Delta(8), ZSTD(3)' })).not.toThrow();
  });
});

describe('clickhouse endpoints', () => {
  const d = { database: 'otel', username: 'default', password: '' };

  it('parses http URLs with credentials and a database, hiding the password', () => {
    const [e] = parseEndpoints(['https://bob:s%40cret@ch.example:8443/tel'], d);
    expect(e).toEqual({ kind: 'http', url: 'https://ch.example:8443', username: 'bob', password: 's@cret', database: 'tel', display: 'https://bob:***@ch.example:8443/tel' });
    expect(parseEndpoints(['http://h:8123?database=x'], d)[0]).toMatchObject({ database: 'x', username: 'default' });
    expect(parseEndpoints(['http://h:8123'], d)[0]).toMatchObject({ database: 'otel' });
  });

  it('never shows a password, whatever characters it holds or however the URL is refused', () => {
    // URL percent-encodes ^ | { } ; = in a password: the URL as written still holds it raw.
    const [e] = parseEndpoints(['http://default:s3cr^t|x{y}@ch:8123/otel'], d);
    expect(e).toMatchObject({ password: 's3cr^t|x{y}', display: 'http://default:***@ch:8123/otel' });
    expect(parseEndpoints(['http://u:p@ss@ch:8123'], d)[0]).toMatchObject({ password: 'p@ss', display: 'http://u:***@ch:8123' });
    const message = (urls: string[]): string => {
      try {
        parseEndpoints(urls, d);
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('not refused');
    };
    for (const urls of [['http://default:hunter2secret@ch:99999'], ['clickhouse://default:hunter2secret@ch:9000'], ['http://a:hunter2secret@h:8123', 'http://b:hunter2secret@h:8123/otel']]) {
      const m = message(urls);
      expect(m).toMatch(/storage\.clickhouse\.urls/);
      expect(m).not.toContain('hunter2');
    }
  });

  it('never shows a password holding / ? or # (which end the URL\'s host part, so the URL is refused as not a URL)', () => {
    for (const raw of ['http://default:ab/cd@ch:8123', 'http://default:pa?ss@ch:8123', 'http://default:pa#ss@ch:8123', 'clickhouse://default:ab/cd@ch:9000']) {
      let m = '';
      try {
        parseEndpoints([raw], d);
      } catch (err) {
        m = (err as Error).message;
      }
      expect(m, raw).toMatch(/storage\.clickhouse\.urls/);
      expect(m, raw).toContain('default:***@');
      for (const part of ['ab/cd', 'cd@', 'pa?ss', 'pa#ss']) expect(m, raw).not.toContain(part);
    }
    // A URL that parses keeps its host and query in the display.
    expect(parseEndpoints(['http://u:pw@ch:8123/?database=a@b'], d)[0]).toMatchObject({ display: 'http://u:***@ch:8123/?database=a@b' });
  });

  it('never shows a password whose / ? or # comes first or after digits, which the URL reads as a port and a path, query or fragment', () => {
    // http://default:/s3cret@ch:8123 parses (host "default", empty port, path "/s3cret@ch:8123"):
    // taken as written, the path became the database, refused quoting it, password included.
    for (const raw of ['http://default:/s3cret@ch:8123', 'http://default:2024/s3cret@ch:8123', 'http://default:#s3cret@ch:8123', 'http://default:?s3cret@ch:8123']) {
      let m = '';
      try {
        const es = parseEndpoints([raw], d);
        validateSchemaOptions({ ...base, database: es[0]!.database });
        m = es.map((e) => e.display).join(' ');
      } catch (err) {
        m = (err as Error).message;
      }
      expect(m, raw).not.toContain('s3cret');
    }
  });

  it('parses chdb URLs: one directory, a database per shard', () => {
    const es = parseEndpoints(['chdb:///data/ch?database=s0', 'chdb:///data/ch?database=s1'], d);
    expect(es.map((e) => [e.kind, e.kind === 'chdb' ? e.path : '', e.database])).toEqual([
      ['chdb', '/data/ch', 's0'],
      ['chdb', '/data/ch', 's1'],
    ]);
    expect(parseEndpoints(['chdb://./rel/dir'], d)[0]).toMatchObject({ kind: 'chdb', path: './rel/dir', database: 'otel' });
  });

  it('refuses two shards in one place and chdb URLs in different directories', () => {
    expect(() => parseEndpoints(['chdb:///a?database=x', 'chdb:///a?database=x'], d)).toThrow(/same shard/);
    expect(() => parseEndpoints(['http://h:8123', 'http://h:8123/otel'], d)).toThrow(/same shard/);
    expect(() => parseEndpoints(['chdb:///a?database=x', 'chdb:///b?database=y'], d)).toThrow(/one directory per process/);
    expect(() => parseEndpoints(['ftp://h'], d)).toThrow(/unsupported scheme/);
    expect(() => parseEndpoints([], d)).toThrow(/empty/);
  });

  it('refuses a parameter other than database= (a mistyped one went to the default database), naming it and no value', () => {
    for (const raw of ['http://h:8123/?databse=prod', 'http://h:8123?user=bob&password=hunter2secret', 'chdb:///data/ch?db=s1', 'http://h:8123?database=a&database=b']) {
      let m = '';
      try {
        m = JSON.stringify(parseEndpoints([raw], d));
      } catch (err) {
        m = (err as Error).message;
      }
      expect(m, raw).toMatch(/^storage\.clickhouse\.urls: .*(unknown parameter "(databse|user|db)"|database= given more than once)/);
      expect(m, raw).not.toContain('hunter2');
    }
    expect(parseEndpoints(['http://h:8123/?database=prod'], d)[0]).toMatchObject({ database: 'prod' });
  });

  it('refuses cluster mode on the embedded engine', () => {
    const config = loadConfig({ flags: { 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': 'chdb:///tmp/x', 'storage.clickhouse.cluster': 'c' } });
    expect(() => clickhouseSettings(clickhouseOptions(config))).toThrow(/cluster cannot be used with chdb/);
  });

  it('names the package when chdb is not installed', async () => {
    await expect(loadChdb('chdb-not-installed-here/connection')).rejects.toThrow(/optional package 'chdb' is not installed: run `npm install chdb`/);
  });
});

describe('clickhouse shard routing', () => {
  it('hashes trace ids stably (FNV-1a): a change would move stored traces to other shards', () => {
    expect(hashTraceId('')).toBe(0x811c9dc5);
    expect(hashTraceId('0af7651916cd43dd8448eb211c80319c')).toBe(hashTraceId('0af7651916cd43dd8448eb211c80319c'));
    expect(hashTraceId('a')).toBe(0xe40c292c);
    expect(shardOf('anything', 1)).toBe(0);
  });

  it('spreads random trace ids evenly', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 8000; i++) counts[shardOf(randomBytes(16).toString('hex'), 4)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(1700);
  });

  it('puts every row of a trace in its shard chunk, and log records with their trace', () => {
    const enc = createEncoder({ partitions: 3 });
    const spans = Array.from({ length: 30 }, () => makeSpan());
    const chunks = enc.encodeSpans(spans);
    expect(chunks.reduce((n, c) => n + c.rows, 0)).toBe(30);
    for (const c of chunks) {
      const mine = spans.filter((s) => shardOf(s.traceId, 3) === c.partition);
      expect(c.rows).toBe(mine.length);
      expect(c.data).toEqual(enc.encodeSpans(mine)[0]!.data);
    }
    const log = makeLog({ traceId: spans[0]!.traceId });
    expect(enc.encodeLogs([log])[0]!.partition).toBe(shardOf(spans[0]!.traceId, 3));
    const unlinked = makeLog({ traceId: '', spanId: '' });
    expect(enc.encodeLogs([unlinked])[0]!.partition).toBe(enc.encodeLogs([unlinked])[0]!.partition);
    expect(enc.encodeSpans([])).toEqual([]);
  });

  it('gives each chunk an ArrayBuffer of its own (transferable without the scratch buffer)', () => {
    const [c] = createEncoder({ partitions: 1 }).encodeSpans([makeSpan()]);
    expect(c!.data.byteOffset).toBe(0);
    expect(c!.data.buffer.byteLength).toBe(c!.data.byteLength);
  });
});

describe('clickhouse write errors', () => {
  const chError = (code: string) => Object.assign(new Error(`Code: ${code}`), { code, type: 'X' });

  it('maps data errors to permanent, overload to a delayed retry, the rest to retryable', () => {
    expect(classifyWriteError(chError('33')).kind).toBe('permanent');
    expect(classifyWriteError(chError('27')).kind).toBe('permanent');
    expect(classifyWriteError(chError('252'))).toMatchObject({ kind: 'retryable', retryAfterMs: 1000 });
    expect(classifyWriteError(chError('60')).kind).toBe('retryable');
    expect(classifyWriteError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).kind).toBe('retryable');
    expect(classifyWriteError('weird').kind).toBe('retryable');
  });

  it('marks a write the user may not make as denied: an import or copy fails it at once instead of retrying it for minutes', () => {
    // ACCESS_DENIED (no INSERT grant), READONLY (a readonly profile), DATABASE_ACCESS_DENIED.
    for (const code of ['497', '164', '291']) expect(classifyWriteError(chError(code)), code).toMatchObject({ kind: 'retryable', denied: true });
    expect(classifyWriteError(chError('60'))).not.toHaveProperty('denied');
  });
});

describe('clickhouse exact values', () => {
  const cases: AnyValue[] = [
    { stringValue: 'x' },
    { boolValue: false },
    { intValue: '-9223372036854775808' },
    { doubleValue: 0.1 },
    { doubleValue: 'Infinity' },
    { doubleValue: Number.NEGATIVE_INFINITY },
    { doubleValue: Number.NaN },
    { doubleValue: -0 },
    { bytesValue: 'AAE=' },
    {},
    { arrayValue: { values: [{ doubleValue: -0 }, { doubleValue: Number.NaN }] } },
  ];

  it('rebuilds every AnyValue from its rendered string, tag and whole form', () => {
    const attrs: KeyValue[] = [...allKindsAttributes(), ...cases.map((value, i) => ({ key: `c${i}`, value }))];
    const tags = attrs.map((a) => tagOf(a.value)).join('');
    const whole = attrs.filter((a) => tagOf(a.value) === 'j').map((a) => a.value);
    const back = joinAttributes(
      attrs.map((a) => a.key),
      attrs.map((a) => anyValueToString(a.value)),
      tags,
      parseExact<AnyValue[]>(stringifyExact(whole, true)),
    );
    expect(back).toEqual(attrs);
    expect(Object.is((back.at(-4)!.value as { doubleValue: number }).doubleValue, -0)).toBe(true);
    expect(joinAttributes(['a'], ['b'], undefined, undefined)).toEqual([{ key: 'a', value: { stringValue: 'b' } }]);
  });
});
