// The alerting rules and the Grafana dashboard shipped in deploy/: promtool accepts the rules and
// their unit tests pass (each alert fires on the series that should fire it), every dashboard query
// parses, and every Tracehouse metric they use is one a running collector exports.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startCollector, type TestCollector } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const ALERTS = join(ROOT, 'deploy/prometheus/alerts.yaml');
const ALERT_TESTS = join(ROOT, 'deploy/prometheus/alerts.test.yaml');
const DASHBOARD = join(ROOT, 'deploy/grafana/tracehouse.json');
const README = join(ROOT, 'README.md');

// Series that come from elsewhere: Prometheus itself.
const EXTERNAL = new Set(['up']);

function findPromtool(): string {
  const cached = join(homedir(), 'go/bin/promtool');
  if (existsSync(cached)) return cached;
  if (spawnSync('promtool', ['--version']).status === 0) return 'promtool';
  throw new Error('promtool not found in $HOME/go/bin or PATH: .ci/run builds it from the Prometheus Go module');
}
const PROMTOOL = findPromtool();

function promtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

interface Rule {
  alert: string;
  expr: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}
const rules = (parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string; refId: string; datasource: { uid: string } }[];
}
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; panels: Panel[]; templating: { list: { name: string }[] } };
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));

/** Metric names in a PromQL expression: its identifiers, less functions, keywords, label matchers and lists, ranges and strings. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w.])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()/g)) if (!KEYWORDS.has(m[1]!.toLowerCase())) names.add(m[1]!);
  return [...names];
}

describe('deploy/prometheus/alerts.yaml', () => {
  it('passes promtool check rules', () => {
    const r = promtool(['check', 'rules', ALERTS]);
    expect(r.out).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(r.status).toBe(0);
  });

  it('passes its promtool unit tests (alerts.test.yaml)', () => {
    const r = promtool(['test', 'rules', ALERT_TESTS]);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('covers queue and write-ahead log filling, failing writes, dropped rows, failing reads, refusals, readiness, certificates and reloads, each with severity and text', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual(
      ['TracehouseAbsent', 'TracehouseCertificateExpiring', 'TracehouseDown', 'TracehouseDroppingRows', 'TracehouseNotReady', 'TracehouseQueueFilling', 'TracehouseQueueFull', 'TracehouseReadsFailing', 'TracehouseRefusingLogRecords', 'TracehouseRefusingRequests', 'TracehouseRefusingSpans', 'TracehouseSecurityReloadFailing', 'TracehouseWalFilling', 'TracehouseWalRecordsLost', 'TracehouseWritesFailing'],
    );
    for (const r of rules) {
      expect(['warning', 'critical'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary.length, r.alert).toBeGreaterThan(10);
      expect(r.annotations.description.length, r.alert).toBeGreaterThan(20);
    }
  });

  it('fails promtool check when a rule is broken (the check can fail)', () => {
    const broken = join(tempDir(), 'broken.yaml');
    writeFileSync(broken, stringifyYaml({ groups: [{ name: 'x', rules: [{ alert: 'X', expr: 'sum by (pod (up)' }] }] }));
    expect(promtool(['check', 'rules', broken]).status).not.toBe(0);
  });
});

describe('deploy/grafana/tracehouse.json', () => {
  it('has unique panel ids and every query on the data source variable', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace', 'pod']);
    expect(queries.length).toBeGreaterThan(15);
    for (const q of queries) expect(q.datasource.uid, q.panel).toBe('${datasource}');
  });

  it('shows the read API\'s failed reads (the log says so once a minute only)', () => {
    const reads = queries.filter((q) => q.expr.includes('tracehouse_query_request_duration_seconds_count') && /by \([^)]*\bcode\b/.test(q.expr));
    expect(reads.map((q) => q.panel)).not.toEqual([]);
  });

  it('shows what backs up before data is refused or lost: the write-ahead log, the oldest unstored row, readiness and the memory limit, the store\'s size', () => {
    // During a store outage with delivery.ack = durable the queue may stay short of full while the
    // log grows towards delivery.walMaxBytes; the operator must see that, and how late the data is.
    const shown = new Set(queries.flatMap((q) => metricNames(q.expr)));
    const wanted = ['tracehouse_wal_bytes', 'tracehouse_wal_capacity_bytes', 'tracehouse_wal_pending_entries', 'tracehouse_queue_oldest_age_seconds', 'tracehouse_ready', 'tracehouse_memory_limited', 'tracehouse_storage_size_bytes', 'tracehouse_storage_file_size_bytes', 'tracehouse_storage_oldest_timestamp_seconds', 'tracehouse_storage_stats_refresh_failures_total'];
    expect(wanted.filter((n) => !shown.has(n))).toEqual([]);
  });

  it('shows batches split for a proxy\'s 413, and dropped rows over a fixed window its title names (the same at every zoom)', () => {
    expect(queries.filter((q) => metricNames(q.expr).includes('tracehouse_storage_split_batches_total')).map((q) => q.panel)).not.toEqual([]);
    const dropped = queries.filter((q) => metricNames(q.expr).includes('tracehouse_writer_dropped_rows_total'));
    expect(dropped).not.toEqual([]);
    for (const q of dropped) {
      // $__rate_interval and $__interval follow the zoom: increase() over them counts a different span at each.
      expect(q.expr, q.panel).not.toMatch(/\$__(rate_)?interval|\$__range/);
      expect(q.expr, q.panel).toMatch(/increase\([^)]*\[1h\]\)/);
      expect(q.panel).toMatch(/last hour/);
    }
  });

  it('every query parses as PromQL (promtool, with the dashboard variables filled in)', () => {
    const file = join(tempDir(), 'dashboard-queries.yaml');
    const fill = (e: string) => e.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', '.*').replaceAll('$pod', '.*');
    writeFileSync(file, stringifyYaml({ groups: [{ name: 'dashboard', rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: fill(q.expr) })) }] }));
    const r = promtool(['check', 'rules', file]);
    expect(r.out).toContain(`SUCCESS: ${queries.length} rules found`);
    expect(r.status).toBe(0);
  });
});

describe('metrics used by the alerts and the dashboard', () => {
  let c: TestCollector;
  let exported: Set<string>;
  let text: string;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'memory' });
    text = await (await fetch(`${c.opsUrl}/metrics`)).text();
    exported = new Set();
    // # TYPE lines list every registered metric, also labelled ones that have seen no event yet.
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exported.add(m[1]!);
      if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m[1]! + s);
    }
  });
  afterAll(() => c?.stop());

  it('are all exported by a running collector', () => {
    const used = new Set([...rules.flatMap((r) => metricNames(r.expr)), ...queries.flatMap((q) => metricNames(q.expr))]);
    expect(used.has('tracehouse_writer_dropped_rows_total')).toBe(true);
    const missing = [...used].filter((n) => !EXTERNAL.has(n) && !exported.has(n));
    expect(missing).toEqual([]);
  });

  it('are rated only where they count (counters, histogram series), and grouped only by labels they have', () => {
    const types = new Map<string, string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      types.set(m[1]!, m[2]!);
      if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) types.set(m[1]! + s, 'counter');
    }
    // A metric's labels: those of its samples here, and for those with none yet (TLS, tokens) the README's.
    const labels = (name: string): Set<string> => {
      const out = new Set<string>();
      for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\}`, 'gm'))) for (const l of m[1]!.matchAll(/(\w+)="/g)) out.add(l[1]!);
      const row = readFileSync(README, 'utf8').match(new RegExp(`^\\| \`${name.replace(/_(bucket|sum|count)$/, '')}\`[^|]*\\|([^|]*)\\|`, 'm'));
      for (const l of row?.[1]!.matchAll(/`(\w+)`/g) ?? []) out.add(l[1]!);
      return out;
    };
    // What the scrape adds (Kubernetes, a static config) and histograms' bucket bound.
    const TARGET = ['namespace', 'pod', 'instance', 'job', 'le'];
    const problems: string[] = [];
    for (const { where, expr } of [...rules.map((r) => ({ where: r.alert, expr: r.expr })), ...queries.map((q) => ({ where: q.panel, expr: q.expr }))]) {
      for (const m of expr.matchAll(/\b(rate|irate|increase)\(\s*([a-z_][a-z0-9_]*)/g)) if (types.get(m[2]!) !== 'counter') problems.push(`${where}: ${m[1]}(${m[2]}) of a ${types.get(m[2]!) ?? 'missing metric'}`);
      const own = new Set([...TARGET, ...metricNames(expr).flatMap((n) => [...labels(n)])]);
      for (const m of expr.matchAll(/\bby \(([^)]*)\)/g)) for (const l of m[1]!.split(',').map((x) => x.trim())) if (!own.has(l)) problems.push(`${where}: by (${l}), a label none of ${metricNames(expr).join(', ')} has`);
      for (const m of expr.matchAll(/(\w+)=~?"/g)) if (!own.has(m[1]!)) problems.push(`${where}: selects on ${m[1]}, a label none of ${metricNames(expr).join(', ')} has`);
    }
    expect(problems).toEqual([]);
  });

  it('are fed to the alerts\' unit tests with label values a collector exports (reasons, transports, kinds)', () => {
    // A made-up reason in alerts.test.yaml would test an alert on series no collector sends.
    const tests = parseYaml(readFileSync(ALERT_TESTS, 'utf8')) as { tests: { input_series: { series: string }[] }[] };
    const wrong: string[] = [];
    for (const { series } of tests.tests.flatMap((t) => t.input_series)) {
      const [, name, body] = series.match(/^(\w+)\{(.*)\}$/) ?? [];
      if (!name) continue;
      for (const [, label, value] of body!.matchAll(/(\w+)="([^"]*)"/g)) {
        if (['instance', 'job', 'namespace', 'pod', 'backend', 'le'].includes(label!)) continue;
        const seen = new Set([...text.matchAll(new RegExp(`^${name}\\{[^}]*\\b${label}="([^"]*)"`, 'gm'))].map((m) => m[1]!));
        if (seen.size > 0 && !seen.has(value!)) wrong.push(`${series}: ${label}="${value}" (exported: ${[...seen].join(', ')})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('are each listed in the README\'s metrics table, with the labels they are exported with', () => {
    // Rows of "| `name` | `label`, `label` | meaning |"; "`a_seconds` / `_failures_total`" names two.
    const documented = new Map<string, string[]>();
    for (const row of readFileSync(README, 'utf8').matchAll(/^\| `(tracehouse_\w+)`(?: \/ `(_\w+)`)? \|([^|]*)\|/gm)) {
      const labels = [...row[3]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!).sort();
      documented.set(row[1]!, labels);
      if (row[2]) documented.set(row[1]!.replace(/_[a-z]+_seconds$/, '') + row[2], labels);
    }
    const ours = [...text.matchAll(/^# TYPE (tracehouse_\w+) (\w+)$/gm)].map((m) => m[1]!);
    expect(ours.filter((n) => !documented.has(n))).toEqual([]);
    // Labels of the series a collector with the memory store exports (the security ones need TLS or tokens).
    for (const n of ours) {
      const labels = new Set<string>();
      for (const m of text.matchAll(new RegExp(`^${n}(?:_bucket|_sum|_count)?\\{([^}]*)\\}`, 'gm'))) for (const l of m[1]!.matchAll(/(\w+)="/g)) if (l[1] !== 'le') labels.add(l[1]!);
      if (labels.size > 0) expect([...labels].sort(), n).toEqual(documented.get(n));
    }
  });
});
