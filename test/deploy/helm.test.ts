// The Helm chart as an operator meets it: `helm lint --strict`, every ci/ values file rendered and
// strictly decoded into the Kubernetes API types (offline, test/deploy/k8s-strict-decode), the
// values schema refusing what would otherwise crash-loop, and the `helm test` pod's round trip
// run against a real collector. helm comes from .ci/run ($HOME/go/bin).
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SCHEMA_FILE, renderSchemaFile } from '../../scripts/gen-helm-schema.ts';
import { envName, loadConfig } from '../../src/config/index.ts';
import { OPTIONS } from '../../src/config/options.ts';
import { makeCa, makeCert } from '../helpers/certs.ts';
import { startCollector, type TestCollector } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const CHART = join(ROOT, 'helm/tracehouse');
const CI_VALUES = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('.yaml')).map((f) => join(CHART, 'ci', f));
// Binaries built from source by go install carry no Kubernetes version; the chart wants >= 1.25.
const KUBE = ['--kube-version', '1.34.0'];
const TLS_VALUES = join(CHART, 'ci/tls-values.yaml');

function findHelm(): string {
  const cached = join(homedir(), 'go/bin/helm');
  if (existsSync(cached)) return cached;
  const r = spawnSync('helm', ['version', '--short'], { encoding: 'utf8' });
  if (r.status === 0) return 'helm';
  throw new Error('helm not found in $HOME/go/bin or PATH: .ci/run installs it (go install helm.sh/helm/v3/cmd/helm@v3.19.0)');
}
const HELM = findHelm();

function helm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(HELM, args, { encoding: 'utf8', timeout: 60_000 });
}

function template(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return helm(['template', 'th', CHART, ...KUBE, ...args]);
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

function objects(manifest: string): K8sObject[] {
  return parseAllDocuments(manifest).map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  command: string[];
  env: EnvVar[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
}
interface PodSpec {
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] } }[];
}

/** The ingest pods' spec and the `helm test` pod's, as rendered with args. */
function pods(args: string[]): { ingest: PodSpec; test: PodSpec | undefined } {
  const all = objects(template(args).stdout);
  const dep = all.find((o) => o.kind === 'Deployment')!;
  const test = all.find((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test');
  return { ingest: (dep.spec as { template: { spec: PodSpec } }).template.spec, test: test?.spec as PodSpec | undefined };
}

/** A container's plain environment variables. */
function plainEnv(c: Container): Record<string, string> {
  return Object.fromEntries(c.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
}

let decoder = '';
beforeAll(() => {
  // Go's build cache makes this fast after the first build (several minutes on a cold cache).
  decoder = join(tempDir(), 'k8s-strict-decode');
  execFileSync('go', ['build', '-o', decoder, '.'], { cwd: join(ROOT, 'test/deploy/k8s-strict-decode'), stdio: 'inherit', timeout: 900_000 });
}, 900_000);

describe('helm chart', () => {
  it.each(['(defaults)', ...CI_VALUES])('lints clean with --strict: %s', (file) => {
    const r = helm(['lint', '--strict', ...KUBE, CHART, ...(file === '(defaults)' ? [] : ['-f', file])]);
    expect(r.stdout + r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(r.status).toBe(0);
  });

  it.each(['(defaults)', ...CI_VALUES])('renders objects the Kubernetes API types decode strictly: %s', (file) => {
    const rendered = template(file === '(defaults)' ? [] : ['-f', file]);
    expect(rendered.stderr).toBe('');
    expect(rendered.status).toBe(0);
    const decoded = spawnSync(decoder, [], { input: rendered.stdout, encoding: 'utf8' });
    expect(decoded.stdout).not.toContain('ERROR');
    expect(decoded.status).toBe(0);
    expect(decoded.stdout).toContain('ok apps/v1/Deployment th-tracehouse');
    expect(decoded.stdout.trim().split('\n')).toHaveLength(objects(rendered.stdout).length);
  });

  it('the strict decoder refuses what the API server would', () => {
    const bad = 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: 1\n  replica: 2\n';
    const r = spawnSync(decoder, [], { input: bad, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('unknown field "spec.replica"');
  });

  it.each([
    [['--set', 'resources=foo'], "at '/resources': got string, want object"],
    [['--set', 'resources.limits.memory=lots'], "at '/resources/limits/memory'"],
    [['--set', 'persistence.size=abc'], "at '/persistence/size': 'abc' does not match pattern"],
    [['--set', 'serviceMonitor.interval=30'], "at '/serviceMonitor/interval': got number, want string"],
    [['--set', 'config.writer.maxBatchRowz=5'], "at '/config/writer': additional properties 'maxBatchRowz' not allowed"],
    [['--set-string', 'config.storage\\.bakend=x'], "at '/config': additional properties 'storage.bakend' not allowed"],
    [['--set', 'config.storage.backend=oracle'], "at '/config/storage/backend'"],
    [['--set', 'config.writer.maxQueueBytes=lots'], "at '/config/writer/maxQueueBytes'"],
    [['--set', 'config.receiver.grpc.listen=nowhere'], "at '/config/receiver/grpc/listen': 'nowhere' does not match pattern"],
    // A port past 65535: the collector refuses it at start.
    [['--set', 'config.ops.listen=0.0.0.0:70000'], "at '/config/ops/listen': '0.0.0.0:70000' does not match pattern"],
    [['--set', 'config.storage.backend=postgres'], "at '/secrets/postgresUrl': minLength: got 0, want 1"],
    [['--set', 'config.storage\\.backend=postgres'], "at '/secrets/postgresUrl': minLength: got 0, want 1"],
    // ClickHouse's default URL, http://localhost:8123, is the pod itself: it waited storage.startWaitMs and crash-looped.
    [['--set', 'config.storage.backend=clickhouse'], "storage.clickhouse.urls"],
    [['--set', 'config.storage\\.backend=clickhouse'], "storage.clickhouse.urls"],
    [['--set', 'replicaz=2'], "additional properties 'replicaz' not allowed"],
    // Port 0 (any free port) rendered containerPort: 0, which the API server refuses (1-65535), and probes to nowhere.
    [['--set', 'config.ops.listen=0.0.0.0:0'], "at '/config/ops/listen'"],
    [['--set', 'config.receiver.grpc.listen=0.0.0.0:00000'], "at '/config/receiver/grpc/listen'"],
    // A volume of ReadOnlyMany alone is mounted read-only (or never provisioned): SQLite cannot write its store there.
    [['--set', 'persistence.accessModes={ReadOnlyMany}'], "at '/persistence/accessModes'"],
    // A size unit on a millisecond key: the collector refuses it, and the grace period would read it as 0.
    [['--set-string', 'config.shutdown.timeoutMs=2m'], "at '/config/shutdown/timeoutMs'"],
  ])('values schema refuses %j', (args, message) => {
    const r = template(args);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("values don't meet the specifications of the schema");
    expect(r.stderr).toContain(message);
  });

  it.each([
    ['postgres with the URL in a chart Secret', ['--set', 'config.storage.backend=postgres', '--set', 'secrets.postgresUrl=postgres://u:p@db:5432/t']],
    ['postgres with an existing Secret', ['--set', 'config.storage.backend=postgres', '--set', 'secrets.existingSecret=db']],
    ['postgres with the URL in config', ['--set', 'config.storage.backend=postgres', '--set', 'config.storage.postgres.url=postgres://u@db/t']],
    ['clickhouse with the URLs in config', ['--set', 'config.storage.backend=clickhouse', '--set', 'config.storage.clickhouse.urls={http://ch-0:8123,http://ch-1:8123}']],
    ['clickhouse with the URLs as a flat key', ['--set', 'config.storage.backend=clickhouse', '--set', 'config.storage\\.clickhouse\\.urls=http://ch-0:8123']],
    ['clickhouse with the URLs from extraEnvFrom', ['--set', 'config.storage.backend=clickhouse', '--set', 'extraEnvFrom[0].secretRef.name=ch']],
    ['postgres with the URL from extraEnv', ['--set', 'config.storage.backend=postgres', '--set', 'extraEnv[0].name=TRACEHOUSE_STORAGE_POSTGRES_URL', '--set', 'extraEnv[0].value=postgres://u@db/t']],
    ['a data volume readable by many and writable by one', ['--set', 'persistence.accessModes={ReadWriteOnce,ReadOnlyMany}']],
    ['sizes with units and booleans as text', ['--set-string', 'config.writer.maxQueueBytes=512MiB', '--set-string', 'config.query.enabled=false']],
  ])('values schema accepts %s', (_what, args) => {
    const r = template(args);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.each([
    ['an HPA on memory alone', ['--set', 'config.storage.backend=postgres', '--set', 'secrets.existingSecret=db', '--set', 'autoscaling.enabled=true', '--set', 'autoscaling.targetCPUUtilizationPercentage=null', '--set', 'autoscaling.targetMemoryUtilizationPercentage=80'], 'HorizontalPodAutoscaler'],
    ['an Ingress without hosts', ['--set', 'ingress.enabled=true', '--set', 'ingress.hosts=null'], 'Ingress'],
  ])('renders %s as an object the API types decode strictly', (_what, args, kind) => {
    const rendered = template(args);
    expect(rendered.stderr).toBe('');
    const decoded = spawnSync(decoder, [], { input: rendered.stdout, encoding: 'utf8' });
    expect(decoded.stdout).not.toContain('ERROR');
    expect(decoded.status).toBe(0);
    const o = objects(rendered.stdout).find((x) => x.kind === kind)!;
    if (kind === 'HorizontalPodAutoscaler') expect((o.spec!['metrics'] as { resource: { name: string } }[]).map((m) => m.resource.name)).toEqual(['memory']);
    else expect(o.spec!['defaultBackend']).toEqual({ service: { name: 'th-tracehouse', port: { name: 'query' } } });
  });

  it('refuses an HPA with neither a CPU nor a memory target', () => {
    const r = template(['--set', 'config.storage.backend=postgres', '--set', 'secrets.existingSecret=db', '--set', 'autoscaling.enabled=true', '--set', 'autoscaling.targetCPUUtilizationPercentage=null']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('autoscaling.enabled needs autoscaling.targetCPUUtilizationPercentage or autoscaling.targetMemoryUtilizationPercentage');
  });

  it('refuses two enabled listeners on one port, which the collector refuses at every start of the pod', () => {
    const cases: [string[], string][] = [
      [['--set', 'config.receiver.grpc.listen=0.0.0.0:8888'], 'config.receiver.grpc.listen = "0.0.0.0:8888" and config.ops.listen = "0.0.0.0:8888" (the chart\'s default) are the same port 8888'],
      [['--set', 'config.query.listen=0.0.0.0:4318'], 'config.receiver.http.listen = "0.0.0.0:4318" (the chart\'s default) and config.query.listen = "0.0.0.0:4318" are the same port 4318'],
      // Leading zeros as the collector reads them: the same port.
      [['--set-string', 'config.ops.listen=0.0.0.0:04317'], 'config.receiver.grpc.listen = "0.0.0.0:4317" (the chart\'s default) and config.ops.listen = "0.0.0.0:04317" are the same port 4317'],
    ];
    for (const [args, message] of cases) {
      const r = template(args);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain(message);
    }
    // What the pod would have been given, which the collector refuses (it exits 2).
    expect(() => loadConfig({ env: { TRACEHOUSE_RECEIVER_GRPC_LISTEN: '0.0.0.0:8888', TRACEHOUSE_OPS_LISTEN: '0.0.0.0:8888' } })).toThrow(/same port/);
    // A listener turned off takes no port, in the chart as in the collector.
    const off = ['--set', 'config.receiver.grpc.enabled=false', '--set', 'config.receiver.grpc.listen=0.0.0.0:8888'];
    expect(template(off).status).toBe(0);
    expect(() => loadConfig({ env: plainEnv(pods(off).ingest.containers[0]!), flags: { 'receiver.grpc.enabled': 'false' } })).not.toThrow();
  });

  it('the committed values.schema.json matches the options table (node scripts/gen-helm-schema.ts)', () => {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    expect(renderSchemaFile(committed)).toBe(committed);
  });

  it('binds every listener on 0.0.0.0 unless the values say otherwise', () => {
    expect(plainEnv(pods([]).ingest.containers[0]!)).toMatchObject({
      TRACEHOUSE_RECEIVER_GRPC_LISTEN: '0.0.0.0:4317',
      TRACEHOUSE_RECEIVER_HTTP_LISTEN: '0.0.0.0:4318',
      TRACEHOUSE_QUERY_LISTEN: '0.0.0.0:16686',
      TRACEHOUSE_OPS_LISTEN: '0.0.0.0:8888',
    });
    const memory = ['-f', join(CHART, 'ci/memory-values.yaml')];
    expect(plainEnv(pods(memory).ingest.containers[0]!)['TRACEHOUSE_QUERY_LISTEN']).toBe('0.0.0.0:9999');
    expect(template(memory).stdout).toContain('containerPort: 9999');
  });

  it('refuses the options it renders from set past config, which its manifests would not follow', () => {
    // A certificate in the environment gave the ops port TLS while the probes speak HTTP: pods
    // restarted forever. ops.requireAuth there made every ServiceMonitor scrape 401.
    for (const [key, args] of [
      ['shutdown.timeoutMs', ['--set', 'extraArgs[0]=--shutdown.timeoutMs=120000']],
      ['shutdown.timeoutMs', ['--set', 'extraEnv[0].name=TRACEHOUSE_SHUTDOWN_TIMEOUT_MS', '--set-string', 'extraEnv[0].value=120000']],
      ['tls.certFile', ['--set', 'extraEnv[0].name=TRACEHOUSE_TLS_CERT_FILE', '--set', 'extraEnv[0].value=/etc/certs/tls.crt']],
      ['ops.requireAuth', ['--set', 'extraArgs[0]=--ops.requireAuth']],
      ['receiver.http.tls.mode', ['--set', 'extraArgs[0]=--receiver.http.tls.mode=tls']],
      ['query.enabled', ['--set', 'extraEnv[0].name=TRACEHOUSE_QUERY_ENABLED', '--set-string', 'extraEnv[0].value=false']],
      ['storage.backend', ['--set', 'extraEnv[0].name=TRACEHOUSE_STORAGE_BACKEND', '--set', 'extraEnv[0].value=postgres']],
      // The store's file is checked against the data volume: from the environment or a flag it
      // went unchecked, into /tmp (an emptyDir, lost with the pod) or the read-only root.
      ['storage.sqlite.path', ['--set', 'extraArgs[0]=--storage.sqlite.path=/tmp/tracehouse.db']],
      ['storage.sqlite.path', ['--set', 'extraEnv[0].name=TRACEHOUSE_STORAGE_SQLITE_PATH', '--set', 'extraEnv[0].value=/tmp/tracehouse.db']],
    ] as const) {
      const r = template([...args]);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain(`set config.${key} instead`);
    }
    // Options the chart does not read stay free.
    expect(template(['--set', 'extraArgs[0]=--log.level=debug', '--set', 'extraEnv[0].name=TRACEHOUSE_WRITER_MAX_QUEUE_BYTES', '--set', 'extraEnv[0].value=64MiB']).status).toBe(0);
    expect(template(['--set', 'config.shutdown.timeoutMs=120000']).stdout).toMatch(/terminationGracePeriodSeconds: 1[2-9]\d/);
  });

  it('refuses an embedded store outside the data volume, which a replaced pod would lose', () => {
    for (const [key, args] of [
      ['storage.sqlite.path', ['--set', 'config.storage.sqlite.path=/tmp/tracehouse.db']],
      ['storage.sqlite.path', ['--set', 'config.storage.sqlite.path=./data/../tracehouse.db']],
      ['storage.clickhouse.urls', ['-f', join(CHART, 'ci/chdb-values.yaml'), '--set', 'config.storage.clickhouse.urls=chdb:///var/lib/ch?database=a']],
    ] as const) {
      const r = template([...args]);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain(`config.${key}`);
      expect(r.stderr, args.join(' ')).toContain('outside /app/data');
    }
    for (const args of [[], ['--set', 'config.storage.sqlite.path=data/sub/t.db'], ['-f', join(CHART, 'ci/chdb-values.yaml'), '--set', 'config.storage.clickhouse.urls=chdb://./data/ch?database=a']]) {
      expect(template(args).status, args.join(' ')).toBe(0);
    }
  });

  it('refuses a durable write-ahead log outside every volume, where the read-only root filesystem takes no file', () => {
    // delivery.ack = durable acknowledges rows once they are in the log: a directory in the
    // container cannot be created (readOnlyRootFilesystem: the pod restarts for ever), or, made
    // writable, loses the acknowledged rows with the container.
    for (const args of [
      ['--set', 'config.delivery.walDir=/var/lib/tracehouse-wal'],
      ['--set', 'config.delivery.walDir=./wal'],
      ['-f', join(CHART, 'ci/postgres-values.yaml'), '--set', 'config.delivery.walDir=/wal'],
    ]) {
      const r = template(args);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain('config.delivery.walDir');
      expect(r.stderr, args.join(' ')).toContain('outside');
    }
    for (const args of [
      ['--set', 'config.delivery.walDir=./data/wal-elsewhere'],
      ['--set', 'config.delivery.walDir=/app/data/wal'],
      ['-f', join(CHART, 'ci/postgres-values.yaml'), '--set', 'config.delivery.walDir=/wal', '--set', 'extraVolumes[0].name=wal', '--set', 'extraVolumes[0].persistentVolumeClaim.claimName=wal', '--set', 'extraVolumeMounts[0].name=wal', '--set', 'extraVolumeMounts[0].mountPath=/wal', '--set', 'replicaCount=1'],
      // Acknowledged before the log, or after the store: no log.
      ['--set', 'config.delivery.walDir=/wal', '--set', 'config.delivery.ack=queued'],
      ['-f', join(CHART, 'ci/memory-values.yaml'), '--set', 'config.delivery\\.walDir=/wal'],
    ]) {
      const r = template(args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
  });

  it('refuses a chdb:// directory outside the data volume in every spelling the collector reads as chdb', () => {
    // new URL() takes the scheme in any case and chdb:/dir without the slashes: the collector runs
    // the embedded engine on /var/lib/ch for each of these.
    for (const url of ['CHDB:///var/lib/ch', 'chdb:/var/lib/ch', 'Chdb:///var/lib/ch#x']) {
      const r = template(['-f', join(CHART, 'ci/chdb-values.yaml'), '--set-string', `config.storage.clickhouse.urls=${url}`]);
      expect(r.status, url).not.toBe(0);
      expect(r.stderr, url).toContain('outside /app/data');
    }
    for (const url of ['CHDB:///app/data/ch', 'chdb:/app/data/ch?database=a', 'chdb:data/ch']) {
      const r = template(['-f', join(CHART, 'ci/chdb-values.yaml'), '--set-string', `config.storage.clickhouse.urls=${url}`]);
      expect(r.status, `${url}: ${r.stderr}`).toBe(0);
    }
  });

  it("refuses SQLite's in-memory database with the collector's reason, not as a path off the volume", () => {
    // The collector refuses these at start (exit 2: each thread would open a database of its own);
    // rendered, the pod restarts for ever. The chart says why, and names no volume.
    for (const path of [':memory:', 'file::memory:', 'file:x.db?mode=memory']) {
      const r = template(['--set-string', `config.storage.sqlite.path=${path}`]);
      expect(r.status, path).not.toBe(0);
      expect(r.stderr, path).toContain('names no file');
      expect(r.stderr, path).not.toContain('outside /app/data');
    }
    expect(template(['--set-string', 'config.storage.sqlite.path=file:data/t.db?mode=rwc']).status).toBe(0);
    // Refused at start too (reads that meet a write fail): said here, not by a pod failing.
    const shared = template(['--set-string', 'config.storage.sqlite.path=file:data/t.db?cache=shared']);
    expect(shared.status).not.toBe(0);
    expect(shared.stderr).toContain('cache=shared makes');
  });

  it('refuses a database credential for a backend the values do not choose, which the pod would ignore', () => {
    // secrets.postgresUrl with config.storage.backend left at its default rendered a Secret and an
    // SQLite pod on a claim: installed, helm test passing, every span in SQLite, not PostgreSQL.
    for (const [value, args] of [
      ['secrets.postgresUrl', ['--set', 'secrets.postgresUrl=postgres://th:s3cret@db:5432/traces']],
      ['secrets.postgresUrl', ['--set', 'secrets.postgresUrl=postgres://th:s3cret@db:5432/traces', '--set', 'config.storage.backend=memory']],
      ['secrets.clickhousePassword', ['--set', 'secrets.clickhousePassword=s3cret']],
    ] as const) {
      const r = template([...args]);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain(value);
      expect(r.stderr, args.join(' ')).toContain('config.storage.backend');
      expect(r.stderr, args.join(' ')).not.toContain('s3cret');
    }
    expect(template(['--set', 'config.storage.backend=postgres', '--set', 'secrets.postgresUrl=postgres://th:s3cret@db:5432/traces']).status).toBe(0);
    // A Secret of the operator's own may hold both keys whatever the backend: not judged.
    expect(template(['--set', 'secrets.existingSecret=db']).status).toBe(0);
  });

  it('takes an embedded store on a volume of extraVolumeMounts, as values of earlier releases had it', () => {
    // An operator's own PVC (another StorageClass, say) mounted beside the data volume: the store
    // there outlives the pod, and these values rendered before the chart checked the path.
    const dir = tempDir('helm-extra-mount');
    const values = join(dir, 'values.yaml');
    writeFileSync(
      values,
      [
        'extraVolumes:',
        '  - name: store',
        '    persistentVolumeClaim: { claimName: fast-ssd }',
        'extraVolumeMounts:',
        '  - name: store',
        '    mountPath: /var/lib/tracehouse/',
      ].join('\n'),
    );
    for (const args of [
      ['--set', 'config.storage.sqlite.path=/var/lib/tracehouse/tracehouse.db'],
      ['-f', join(CHART, 'ci/chdb-values.yaml'), '--set', 'config.storage.clickhouse.urls=chdb:///var/lib/tracehouse'],
    ]) {
      const r = template(['-f', values, ...args]);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    // Beside the mount, not in it: still refused.
    const r = template(['-f', values, '--set', 'config.storage.sqlite.path=/var/lib/tracehouse-other/t.db']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('outside /app/data');
  });

  it('leaves out the read API port when query.enabled is off in any spelling the collector reads', () => {
    for (const off of ['false', 'FALSE', '0']) {
      const rendered = template(['--set-string', `config.query.enabled=${off}`]);
      expect(rendered.status, off).toBe(0);
      expect(rendered.stdout, off).not.toContain('containerPort: 16686');
    }
    expect(template([]).stdout).toContain('containerPort: 16686');
  });

  it('prints a port-forward of the read API after an install only when the Service has that port', () => {
    // `helm template` does not print NOTES.txt (an install does, and needs a cluster): a copy of
    // the chart renders it into a ConfigMap of its own.
    const copy = join(tempDir('tracehouse-notes-'), 'chart');
    cpSync(CHART, copy, { recursive: true });
    writeFileSync(join(copy, 'templates/zz-notes.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "tracehouse/templates/NOTES.txt" . | toJson }}\n');
    const notes = (args: string[]): string => {
      const r = helm(['template', 'th', copy, ...KUBE, '--show-only', 'templates/zz-notes.yaml', ...args]);
      expect(r.status, r.stderr).toBe(0);
      return objects(r.stdout)[0]!.data!.notes!;
    };
    expect(notes([])).toContain('port-forward svc/th-tracehouse 16686 8888');
    expect(notes([])).toContain("curl 'http://localhost:16686/v1/traces?limit=10'");
    // Off: `kubectl port-forward` of a port the Service lacks fails, and nothing answers the curl.
    const off = notes(['--set-string', 'config.query.enabled=false']);
    expect(off).not.toContain('16686');
    expect(off).toContain('port-forward svc/th-tracehouse 8888\n');
    expect(off).toContain('curl http://localhost:8888/readyz');
  });

  it('deletes the migration Secret holding the database URL once the hooks succeeded', () => {
    const migrate = objects(template(['-f', join(CHART, 'ci/postgres-values.yaml')]).stdout).filter((o) => o.metadata.name === 'th-tracehouse-migrate');
    const secret = migrate.find((o) => o.kind === 'Secret')!;
    expect(secret.metadata.annotations?.['helm.sh/hook-delete-policy']?.split(',')).toContain('hook-succeeded');
    expect(Buffer.from(secret.data!['postgres-url']!, 'base64').toString()).toContain('postgres://');
    const config = migrate.find((o) => o.kind === 'ConfigMap')!;
    expect(config.metadata.annotations?.['helm.sh/hook-delete-policy']?.split(',')).toContain('hook-succeeded');
  });

  it('mounts the TLS and tokens Secrets as folders (so renewals reach the pod) and points the collector at their files', () => {
    const { ingest } = pods(['-f', TLS_VALUES]);
    const c = ingest.containers[0]!;
    const mounts = new Map(c.volumeMounts!.map((m) => [m.name, m]));
    expect(mounts.get('tls')).toEqual({ name: 'tls', mountPath: '/etc/tracehouse-tls', readOnly: true });
    expect(mounts.get('auth')).toEqual({ name: 'auth', mountPath: '/etc/tracehouse-auth', readOnly: true });
    expect(mounts.get('extra-ca')).toEqual({ name: 'extra-ca', mountPath: '/etc/corporate-ca', readOnly: true });
    const volumes = new Map(ingest.volumes!.map((v) => [v.name, v]));
    expect(volumes.get('tls')?.secret?.secretName).toBe('tracehouse-tls');
    expect(volumes.get('auth')?.secret?.secretName).toBe('tracehouse-tokens');
    expect(volumes.has('extra-ca')).toBe(true);
    expect(plainEnv(c)).toMatchObject({
      TRACEHOUSE_TLS_CERT_FILE: '/etc/tracehouse-tls/tls.crt',
      TRACEHOUSE_TLS_KEY_FILE: '/etc/tracehouse-tls/tls.key',
      TRACEHOUSE_TLS_CLIENT_CA_FILE: '/etc/tracehouse-tls/ca.crt',
      TRACEHOUSE_AUTH_TOKENS_FILE: '/etc/tracehouse-auth/tokens.yaml',
      // The kubelet's probes and Prometheus speak plain HTTP to the ops port.
      TRACEHOUSE_OPS_TLS_MODE: 'off',
    });
    // ops TLS as config asks, and no TLS files without the Secrets.
    expect(plainEnv(pods(['-f', TLS_VALUES, '--set', 'config.ops.tls.mode=tls']).ingest.containers[0]!)['TRACEHOUSE_OPS_TLS_MODE']).toBeUndefined();
    expect(Object.keys(plainEnv(pods([]).ingest.containers[0]!)).filter((k) => /_TLS_|_AUTH_/.test(k))).toEqual([]);
  });

  it.each([
    [['--set', 'config.tls.certFile=/x/cert.pem'], 'config.tls.certFile: "/x/cert.pem" is set as well as tls.existingSecret'],
    [['--set', 'config.auth.tokensFile=/x/tokens.yaml'], 'config.auth.tokensFile: "/x/tokens.yaml" is set as well as auth.existingSecret'],
    [['--set', 'tests.tokenSecret.name='], 'tests.tokenSecret.name: empty while auth.existingSecret is set'],
    [['--set', 'tests.clientCertSecret='], 'tests.clientCertSecret: empty while tls.clientCaKey requires client certificates'],
  ])('refuses TLS and tokens values that could not work: %j', (args, message) => {
    const r = template(['-f', TLS_VALUES, ...args]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it('takes a client CA named in config (from extraVolumes) beside the certificate of tls.existingSecret', () => {
    const args = ['--set', 'tls.existingSecret=tracehouse-tls', '--set', 'config.tls.clientCaFile=/etc/corporate-ca/ca.crt', '--set', 'tests.clientCertSecret=test-client'];
    const r = template(args);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const env = plainEnv(pods(args).ingest.containers[0]!);
    expect(env['TRACEHOUSE_TLS_CERT_FILE']).toBe('/etc/tracehouse-tls/tls.crt');
    expect(env['TRACEHOUSE_TLS_CLIENT_CA_FILE']).toBeUndefined();
  });

  it('lets the helm test pod through a NetworkPolicy that lists who may send OTLP and read', () => {
    // ci/exposed-values.yaml admits OTLP from the namespace "apps" only: the test pod, in the
    // release's namespace, must still reach the OTLP/HTTP and read API ports or `helm test` fails.
    const args = ['-f', join(CHART, 'ci/exposed-values.yaml'), '--set', 'networkPolicy.queryFrom[0].ipBlock.cidr=10.0.0.0/8'];
    const all = objects(template(args).stdout);
    const test = all.find((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test') as unknown as { metadata: { labels: Record<string, string> } };
    expect(test).toBeDefined();
    type Peer = { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown; ipBlock?: unknown };
    type Rule = { ports: { port: string }[]; from?: Peer[] };
    const policy = all.find((o) => o.kind === 'NetworkPolicy')!;
    const rules = (policy.spec as { ingress: Rule[] }).ingress;
    // A peer with a podSelector alone selects pods of the policy's namespace, the test pod's.
    const admitsTestPod = (port: string): boolean => {
      const rule = rules.find((r) => r.ports.some((p) => p.port === port))!;
      if (rule.from === undefined) return true;
      return rule.from.some((p) => p.podSelector !== undefined && p.namespaceSelector === undefined && p.ipBlock === undefined
        && Object.entries(p.podSelector.matchLabels ?? {}).every(([k, v]) => test.metadata.labels[k] === v));
    };
    expect(admitsTestPod('otlp-http')).toBe(true);
    expect(admitsTestPod('query')).toBe(true);
    // Without the test pod, the lists stay as given.
    const without = objects(template([...args, '--set', 'tests.enabled=false']).stdout).find((o) => o.kind === 'NetworkPolicy')!;
    expect((without.spec as { ingress: Rule[] }).ingress.map((r) => r.from?.length)).toEqual([1, 1, 1]);
  });

  it('scrapes the ops port over HTTPS when config gives it TLS', () => {
    // config.ops.tls.mode: tls served /metrics over TLS while the ServiceMonitor spoke HTTP to it:
    // every scrape failed, and the chart had no value to say otherwise.
    type Endpoint = { port: string; scheme?: string; tlsConfig?: Record<string, unknown> };
    const endpoint = (args: string[]) => {
      const rendered = template(['--set', 'serviceMonitor.enabled=true', '--set', 'tests.enabled=false', ...args]);
      expect(rendered.stderr).toBe('');
      const decoded = spawnSync(decoder, [], { input: rendered.stdout, encoding: 'utf8' });
      expect(decoded.stdout).not.toContain('ERROR');
      const monitor = objects(rendered.stdout).find((o) => o.kind === 'ServiceMonitor')!;
      return (monitor.spec as { endpoints: Endpoint[] }).endpoints[0]!;
    };
    const tls = ['--set', 'tls.existingSecret=tracehouse-tls', '--set', 'config.ops.tls.mode=tls'];
    expect(endpoint(tls).scheme).toBe('https');
    const ca = { ca: { secret: { name: 'tracehouse-tls', key: 'ca.crt' } }, serverName: 'th-tracehouse' };
    expect(endpoint([...tls, '--set-json', `serviceMonitor.tlsConfig=${JSON.stringify(ca)}`]).tlsConfig).toEqual(ca);
    // The chart's own certificate alone leaves the ops port plain (ops.tls.mode: off), and the scrape too.
    expect(endpoint(['--set', 'tls.existingSecret=tracehouse-tls']).scheme ?? 'http').toBe('http');
    expect(endpoint([]).scheme ?? 'http').toBe('http');
  });

  it('renders no NetworkPolicy, Ingress or other opt-in object by default', () => {
    const kinds = objects(template([]).stdout).map((o) => o.kind);
    expect(kinds).not.toContain('NetworkPolicy');
    expect(kinds).not.toContain('Ingress');
    expect(kinds).not.toContain('ServiceMonitor');
  });
});

/** The `helm test` pod's script, as rendered with args. */
function testScript(args: string[]): string {
  const pod = pods(args).test;
  expect(pod, 'a helm.sh/hook: test Pod').toBeDefined();
  const command = pod!.containers[0]!.command;
  expect(command.slice(0, 2)).toEqual(['node', '-e']);
  return command[2]!;
}

// Asynchronous: the collector runs in this process and must keep answering while the pod script runs.
function runPodScript(script: string, env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

describe('helm test pod', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'memory' });
  });
  afterAll(() => c?.stop());

  it('sends one span and reads it back from a real collector', async () => {
    const r = await runPodScript(testScript([]), { OTLP_URL: `${c.httpUrl}/v1/traces`, QUERY_URL: `${c.queryUrl}/v1/traces/`, TIMEOUT_SECONDS: '20' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^span [0-9a-f]{32} sent over OTLP\/HTTP and read back from the read API/);
    expect(r.status).toBe(0);
  });

  it('fails, saying why, when the span does not come back', async () => {
    // A trace id with a leading 0: one the read API refuses, so the span never comes back.
    const r = await runPodScript(testScript([]), { OTLP_URL: `${c.httpUrl}/v1/traces`, QUERY_URL: `${c.queryUrl}/v1/traces/0`, TIMEOUT_SECONDS: '3' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/round trip failed for trace [0-9a-f]{32}: read: HTTP 4\d\d/);
  });
});

// The chart's TLS, mTLS and tokens as an operator sets them (ci/tls-values.yaml): the collector is
// started with the very variables the Deployment sets, its Secrets' folders made here, and the
// `helm test` pod's script runs with the variables and files its pod gets.
describe('helm test pod with TLS, mTLS and bearer tokens', () => {
  const TOKEN = 'helm-test-token-0123456789abcdef';
  let c: TestCollector;
  let dir = '';
  let podEnv: Record<string, string> = {};

  /** A path in a pod, at its Secret's copy under dir. */
  const local = (path: string) => path.replace(/^\/etc\//, `${dir}/`);

  beforeAll(async () => {
    dir = tempDir('tracehouse-helm-tls-');
    const ca = makeCa(dir, 'helm-ca');
    const server = makeCert(dir, ca, 'localhost');
    const client = makeCert(dir, ca, 'helm-test', 'client');
    // The Secrets as the kubelet mounts them: one file per key.
    for (const [folder, files] of Object.entries({
      'tracehouse-tls': { 'tls.crt': server.certFile, 'tls.key': server.keyFile, 'ca.crt': ca.certFile },
      'tracehouse-test/ca': { 'ca.crt': ca.certFile },
      'tracehouse-test/client': { 'tls.crt': client.certFile, 'tls.key': client.keyFile },
    })) {
      mkdirSync(join(dir, folder), { recursive: true });
      for (const [name, from] of Object.entries(files)) copyFileSync(from, join(dir, folder, name));
    }
    mkdirSync(join(dir, 'tracehouse-auth'));
    writeFileSync(join(dir, 'tracehouse-auth/tokens.yaml'), `tokens:\n  - token: "${TOKEN}"\n    tenant: helm\n    scopes: [ingest, read]\n`);

    const { ingest, test } = pods(['-f', TLS_VALUES]);
    const byEnv = new Map(OPTIONS.map((o) => [envName(o.key), o.key]));
    const options: Record<string, string> = { 'storage.backend': 'memory' };
    for (const [name, value] of Object.entries(plainEnv(ingest.containers[0]!))) {
      const key = byEnv.get(name);
      expect(key, `${name} is an option the collector reads`).toBeDefined();
      if (!key!.endsWith('.listen')) options[key!] = local(value);
    }
    c = await startCollector(options);

    const rendered = plainEnv(test!.containers[0]!);
    expect(rendered['OTLP_URL']).toBe('https://th-tracehouse:4318/v1/traces');
    expect(rendered['QUERY_URL']).toBe('https://th-tracehouse:16686/v1/traces/');
    const origin = (url: string) => url.replace('http://', 'https://');
    podEnv = {
      ...Object.fromEntries(Object.entries(rendered).map(([k, v]) => [k, local(v)])),
      OTLP_URL: `${origin(c.httpUrl)}/v1/traces`,
      QUERY_URL: `${origin(c.queryUrl)}/v1/traces/`,
      TIMEOUT_SECONDS: '20',
    };
    // The token comes from tests.tokenSecret.
    expect(test!.containers[0]!.env.find((e) => e.name === 'TOKEN')?.valueFrom?.secretKeyRef).toEqual({ name: 'tracehouse-test-token', key: 'token' });
  });
  afterAll(() => c?.stop());

  it('sends one span with its token and client certificate and reads it back over HTTPS', async () => {
    const r = await runPodScript(testScript(['-f', TLS_VALUES]), { ...podEnv, TOKEN });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^span [0-9a-f]{32} sent over OTLP\/HTTP and read back from the read API/);
    expect(r.status).toBe(0);
    // The ops port stays plain for the kubelet's probes.
    expect((await fetch(`${c.opsUrl}/readyz`)).status).toBe(200);
  });

  it('fails without the client certificate that tls.clientCaKey requires', async () => {
    const withoutClient = Object.fromEntries(Object.entries(podEnv).filter(([k]) => !k.startsWith('CLIENT_')));
    const r = await runPodScript(testScript(['-f', TLS_VALUES]), { ...withoutClient, TOKEN, TIMEOUT_SECONDS: '3' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/round trip failed for trace [0-9a-f]{32}: Error: /);
  });

  it('fails, saying why, without the token', async () => {
    const r = await runPodScript(testScript(['-f', TLS_VALUES]), { ...podEnv, TIMEOUT_SECONDS: '3' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/round trip failed for trace [0-9a-f]{32}: export: HTTP 401/);
  });
});
