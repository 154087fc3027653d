// What the README and the example configurations tell a user to set must be options the collector
// takes: a key renamed in src/config/options.ts and left in the docs stops a start that copies it
// ("unknown key") or, in prose, sends the user looking for a setting that is not there.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envName } from '../../src/config/index.ts';
import { OPTIONS } from '../../src/config/options.ts';

const ROOT = join(import.meta.dirname, '../..');
const keys = new Set<string>(OPTIONS.map((o) => o.key));
// Sections (`storage.postgres`, `receiver.grpc`) are named in prose too.
const sections = new Set<string>(
  OPTIONS.flatMap((o) => {
    const parts = o.key.split('.');
    return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('.'));
  }),
);
const tops = new Set<string>(OPTIONS.map((o) => o.key.split('.')[0]!));
// Dotted names the README gives that are not options: api_v3's query parameters (its proto3 JSON
// names), and a source file.
const NOT_OPTIONS = new Set(['query.serviceName', 'query.filter', 'auth.ts']);
// Environment variables the README names that are not options.
const NOT_OPTION_ENV = new Set(['TRACEHOUSE_CONFIG', 'TRACEHOUSE_TEST_POSTGRES_URL', 'TRACEHOUSE_CHROMIUM']);

const docs = [
  'README.md',
  'docs/benchmarks.md',
  ...readdirSync(join(ROOT, 'deploy/examples')).filter((f) => f.endsWith('.yaml')).map((f) => `deploy/examples/${f}`),
];

describe('the docs name only options, variables and metrics the collector has', () => {
  it('every dotted option key in backquotes (or a flag) in the README, docs/benchmarks.md and the example configurations', () => {
    const unknown: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      // `writer.maxQueueBytes`, `--storage.backend=postgres`, `ops.tls.mode=off`, `writer.maxQueueBytes: 512MiB`;
      // in the YAML examples' comments, names such as storage.clickhouse.cluster without quotes.
      const pattern = doc.endsWith('.yaml') ? /(?:^|[\s`(-])-{0,2}([a-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)+)/gm : /`-{0,2}([a-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)+)(?=[=` :])/g;
      for (const m of text.matchAll(pattern)) {
        const k = m[1]!;
        if (!tops.has(k.split('.')[0]!) || keys.has(k) || sections.has(k) || NOT_OPTIONS.has(k)) continue;
        unknown.push(`${doc}: ${k}`);
      }
    }
    expect([...new Set(unknown)]).toEqual([]);
  });

  it('every TRACEHOUSE_* environment variable the README and the example configurations name', () => {
    const envs = new Set<string>(OPTIONS.map((o) => envName(o.key)));
    const unknown: string[] = [];
    for (const doc of docs) {
      for (const m of readFileSync(join(ROOT, doc), 'utf8').matchAll(/\bTRACEHOUSE_[A-Z0-9_]*[A-Z0-9]/g)) {
        if (!envs.has(m[0]) && !NOT_OPTION_ENV.has(m[0])) unknown.push(`${doc}: ${m[0]}`);
      }
    }
    expect([...new Set(unknown)]).toEqual([]);
  });

  it('every tracehouse_* metric the README, the chart README and docs/benchmarks.md name is one the collector defines', () => {
    // Metrics are registered by several components (receivers, security, storage stats, read API):
    // the names their sources define, with a histogram's series.
    const registered = new Set<string>();
    for (const f of readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
      for (const m of readFileSync(join(ROOT, 'src', f), 'utf8').matchAll(/['"`](tracehouse_[a-z0-9_]+)['"`]/g)) {
        for (const s of ['', '_bucket', '_sum', '_count']) registered.add(m[1]! + s);
      }
    }
    expect(registered.has('tracehouse_queue_size_bytes')).toBe(true);
    const unknown: string[] = [];
    for (const doc of ['README.md', 'helm/tracehouse/README.md', 'docs/benchmarks.md']) {
      for (const m of readFileSync(join(ROOT, doc), 'utf8').matchAll(/\btracehouse_[a-z0-9_]*[a-z0-9]/g)) {
        if (!registered.has(m[0])) unknown.push(`${doc}: ${m[0]}`);
      }
    }
    expect([...new Set(unknown)]).toEqual([]);
  });
});
