// The chart's derived values (migration Job, embedded store, container ports) read the config the
// way the collector reads it: every spelling the values schema accepts.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/index.ts';
import { tempDir } from '../helpers/tmp.ts';

const CHART = join(new URL('../../', import.meta.url).pathname, 'helm/tracehouse');
const HELM = existsSync(join(homedir(), 'go/bin/helm')) ? join(homedir(), 'go/bin/helm') : 'helm';

function template(values: string): { status: number | null; stdout: string; stderr: string } {
  const file = join(tempDir(), 'values.yaml');
  writeFileSync(file, values);
  return spawnSync(HELM, ['template', 'th', CHART, '--kube-version', '1.34.0', '-f', file], { encoding: 'utf8', timeout: 60_000 });
}

const kinds = (manifest: string): string[] =>
  parseAllDocuments(manifest).map((d) => d.toJS() as { kind: string; metadata: { name: string } } | null).filter((o) => o !== null).map((o) => `${o.kind}/${o.metadata.name}`);

const POSTGRES = 'config:\n  storage:\n    backend: postgres\nsecrets:\n  postgresUrl: postgres://u:p@db:5432/t\n';

/** The collector's configuration from a render's config.yaml, read as the pod's start reads it. */
function renderedConfig(r: ReturnType<typeof template>) {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const configMap = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; data?: Record<string, string> } | null).find((o) => o?.kind === 'ConfigMap')!;
  const file = join(tempDir(), 'config.yaml');
  writeFileSync(file, configMap.data!['config.yaml']!);
  return loadConfig({ file });
}

describe('helm chart derived values', () => {
  it('runs the migration Job for autoMigrate off in every spelling the collector reads as false', () => {
    for (const off of ['false', '"false"', '"False"', '"FALSE"', '"0"']) {
      const r = template(POSTGRES.replace('backend: postgres\n', `backend: postgres\n    postgres:\n      autoMigrate: ${off}\n`));
      expect(r.stderr, off).toBe('');
      expect(kinds(r.stdout), off).toContain('Job/th-tracehouse-migrate');
    }
    expect(kinds(template(POSTGRES).stdout)).not.toContain('Job/th-tracehouse-migrate');
  });

  it('gives the pod a grace period longer than the drain the collector reads from shutdown.timeoutMs, in every spelling the schema takes', () => {
    // A quoted value with a space around it, or a leading zero, is 120000 to the collector; the
    // chart read " 120000" as 0 and "0120000" as octal, and Kubernetes killed the pod 15 s (56 s)
    // into a drain allowed 120 s.
    for (const v of ['120000', '"120000"', '" 120000"', '"120000 "', '"0120000"']) {
      const r = template(`config:\n  shutdown:\n    timeoutMs: ${v}\n`);
      const drainSeconds = renderedConfig(r)['shutdown.timeoutMs'] / 1000;
      const deployment = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; spec: { template: { spec: { terminationGracePeriodSeconds: number } } } } | null).find((o) => o?.kind === 'Deployment')!;
      expect(deployment.spec.template.spec.terminationGracePeriodSeconds, v).toBeGreaterThan(drainSeconds);
    }
  });

  it('lets the migration Job fail within Helm\'s default --timeout (5 m) when the database stays unreachable, each attempt waiting storage.startWaitMs', () => {
    // `tracehouse migrate` waits storage.startWaitMs for a database it cannot reach before it
    // exits 1; the Job then starts another pod after Kubernetes' back-off (10 s, doubling). Helm
    // waits for a hook Job up to --timeout (5 m by default): past it, helm says only "timed out
    // waiting for the condition" while the Job goes on retrying.
    const r = template(POSTGRES.replace('backend: postgres\n', 'backend: postgres\n    postgres:\n      autoMigrate: false\n'));
    const config = renderedConfig(r);
    const job = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; spec: { backoffLimit: number; activeDeadlineSeconds: number } } | null).find((o) => o?.kind === 'Job')!;
    const attempts = job.spec.backoffLimit + 1;
    let seconds = attempts * (config['storage.startWaitMs'] / 1000);
    for (let i = 0; i < job.spec.backoffLimit; i++) seconds += 10 * 2 ** i;
    expect(seconds).toBeLessThan(300);
    expect(seconds).toBeLessThan(job.spec.activeDeadlineSeconds);
  });

  it('takes a listener\'s tls.mode off written unquoted, which Helm\'s YAML reads as false, as the collector\'s off', () => {
    // The chart's README writes `ops.tls.mode: off`; in a values file Helm reads that as YAML 1.1's
    // boolean false. The schema refused it ("value must be one of 'inherit', 'off', 'tls', 'mtls'")
    // and, let through, the collector would have refused the false the chart renders.
    for (const [listener, port] of [['ops', 'ops'], ['receiver.grpc', 'otlp-grpc']] as const) {
      const nested = listener.split('.').reduceRight((inner, k) => `${k}:\n${inner.replace(/^/gm, '  ')}`, 'tls:\n  mode: off');
      const r = template(`config:\n${nested.replace(/^/gm, '  ')}\n`);
      expect(r.stderr, listener).toBe('');
      const config = renderedConfig(r);
      expect(config[`${listener}.tls.mode`]).toBe('off');
      expect(r.stdout, listener).toContain(`name: ${port}`);
    }
  });

  it('takes a section left empty (its lines commented out), as the collector reads it: no settings', () => {
    // YAML reads `writer:` followed by comments only as null; the collector takes a null section as
    // no settings (src/config/index.ts), so install must not refuse what start-up accepts.
    const r = template('config:\n  storage:\n    backend: sqlite\n    sqlite:\n      # path: ./data/other.db\n  writer:\n    # maxBatchRows: 5000\n  receiver:\n    grpc:\n      # enabled: false\n');
    const config = renderedConfig(r);
    expect(config['writer.maxBatchRows']).toBe(10_000);
    expect(config['storage.sqlite.path']).toBe('./data/tracehouse.db');
    expect(config['receiver.grpc.enabled']).toBe(true);
    expect(r.stdout).toContain('name: otlp-grpc');
    // An empty postgres section names no URL: PostgreSQL still needs one from somewhere.
    const noUrl = template('config:\n  storage:\n    backend: postgres\n    postgres:\n      # url: postgres://db/x\n');
    expect(noUrl.status).not.toBe(0);
    expect(template(POSTGRES.replace('backend: postgres\n', 'backend: postgres\n    postgres:\n      # autoMigrate: false\n')).status).toBe(0);
  });

  it('keeps the chart\'s decode worker count when the workers section is left empty', () => {
    // `workers:` with its lines commented out is YAML's null, which Helm reads as "delete the
    // chart's default": the collector would then start one decode worker per core of the node
    // (workers.threads 0), which values.yaml says to keep near the pod's CPU request.
    const configOf = (values: string) => renderedConfig(template(values));
    expect(configOf('config:\n  workers:\n    # threads: 4\n')['workers.threads']).toBe(2);
    expect(configOf('config:\n  workers:\n    threads: 4\n')['workers.threads']).toBe(4);
    expect(configOf('config:\n  workers.threads: 0\n')['workers.threads']).toBe(0);
  });

  it('reads keys flat below a section, as the values schema and the collector accept them', () => {
    // storage: {"postgres.autoMigrate": false} is storage.postgres.autoMigrate for the collector.
    const job = template(POSTGRES.replace('backend: postgres\n', 'backend: postgres\n    postgres.autoMigrate: false\n'));
    expect(job.stderr).toBe('');
    expect(kinds(job.stdout)).toContain('Job/th-tracehouse-migrate');

    // The in-process ClickHouse engine is a single-writer store inside the pod: one replica, on the PVC.
    const chdb = template('replicaCount: 3\nconfig:\n  storage:\n    backend: clickhouse\n    clickhouse.urls: chdb:///app/data/ch\n');
    expect(chdb.status).not.toBe(0);
    expect(chdb.stderr).toContain('replicaCount=3 with clickhouse on chdb://');

    // The listen address set in the file is the one the pod uses, not overridden by the chart's env.
    const grpc = template('config:\n  receiver:\n    grpc.listen: 0.0.0.0:5317\n');
    expect(grpc.stderr).toBe('');
    expect(grpc.stdout).toContain('containerPort: 5317');
    expect(grpc.stdout).toMatch(/name: TRACEHOUSE_RECEIVER_GRPC_LISTEN\n\s+value: "0\.0\.0\.0:5317"/);
  });

  it('renders a listen port written with a leading zero as the port the collector binds', () => {
    // The collector binds 0.0.0.0:04321 as 4321; the chart wrote `containerPort: 04321`, which
    // Kubernetes' YAML reads as octal 2257 (the probes then knocked on a port nothing listens on),
    // and `containerPort: 08888`, no number at all. (Not 04317: that is the gRPC receiver's port,
    // which the chart refuses for a second listener as the collector does.)
    for (const [listen, port] of [['0.0.0.0:04321', '4321'], ['0.0.0.0:08888', '8888']]) {
      const r = template(`config:\n  ops:\n    listen: "${listen}"\n`);
      expect(r.stderr, listen).toBe('');
      expect(r.stdout, listen).toMatch(new RegExp(`- name: ops\\n\\s+containerPort: ${port}\\n`));
    }
  });
});
