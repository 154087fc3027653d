// The chart's pods as they would run: the configuration each container ends up with (its
// config.yaml and the environment the chart sets, read by the collector's own loadConfig) checked
// against the volumes and ports the chart gives it, for every ci/ values file and the defaults.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { walDir } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { resolveTls } from '../../src/security/tls.ts';
import { tempDir } from '../helpers/tmp.ts';

const CHART = join(new URL('../../', import.meta.url).pathname, 'helm/tracehouse');
const HELM = existsSync(join(homedir(), 'go/bin/helm')) ? join(homedir(), 'go/bin/helm') : 'helm';
const CI_VALUES = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('.yaml')).map((f) => join(CHART, 'ci', f));
/** The image's WORKDIR (deploy/Dockerfile): relative paths in the configuration start there. */
const WORKDIR = '/app';

interface EnvVar {
  name: string;
  value?: string;
}
interface Probe {
  httpGet?: { path: string; port: string | number; scheme?: string };
}
interface Container {
  args: string[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Volume {
  name: string;
  emptyDir?: unknown;
  persistentVolumeClaim?: { claimName: string };
  configMap?: { name: string };
}
interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
}
interface K8sObject {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: { template?: { spec: PodSpec } };
  data?: Record<string, string>;
}

function template(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(HELM, ['template', 'th', CHART, '--kube-version', '1.34.0', ...args], { encoding: 'utf8', timeout: 60_000 });
}

function render(args: string[]): K8sObject[] {
  const r = template(args);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
}

/** The configuration a workload's container runs with: its ConfigMap's config.yaml, then its plain environment. */
function effectiveConfig(all: K8sObject[], kind: 'Deployment' | 'Job'): { config: Config; pod: PodSpec } {
  const pod = all.find((o) => o.kind === kind)!.spec!.template!.spec;
  const c = pod.containers[0]!;
  const mount = c.volumeMounts!.find((m) => m.mountPath === posix.dirname(c.args[c.args.indexOf('--config') + 1]!))!;
  const configMap = all.find((o) => o.kind === 'ConfigMap' && o.metadata.name === pod.volumes!.find((v) => v.name === mount.name)!.configMap!.name)!;
  const file = join(tempDir(), 'config.yaml');
  writeFileSync(file, configMap.data!['config.yaml']!);
  const env = Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
  return { config: loadConfig({ file, env }), pod };
}

/** The volume holding path in the pod's first container, by the longest mount path containing it. */
function volumeAt(pod: PodSpec, path: string): Volume | undefined {
  const abs = posix.resolve(WORKDIR, path);
  const mounts = pod.containers[0]!.volumeMounts!.filter((m) => abs === m.mountPath || abs.startsWith(`${m.mountPath}/`));
  const mount = mounts.sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  return mount && pod.volumes!.find((v) => v.name === mount.name);
}

describe('helm chart pods as they run', () => {
  it.each(['(defaults)', ...CI_VALUES])('keeps an acknowledged write-ahead log only on a volume that outlives the pod: %s', (file) => {
    const all = render(file === '(defaults)' ? [] : ['-f', file]);
    const { config, pod } = effectiveConfig(all, 'Deployment');
    if (config['delivery.ack'] !== 'durable') return;
    // durable acknowledges rows once they are in the log, and a stop keeps in it what the store
    // did not take for the next start to write: on an emptyDir the next pod starts on an empty log.
    const volume = volumeAt(pod, walDir(config));
    expect(volume, `the log directory ${walDir(config)} is on a volume`).toBeDefined();
    // The store itself on an emptyDir (sqlite without persistence) loses everything with the pod anyway.
    const store = config['storage.backend'] === 'sqlite' ? volumeAt(pod, config['storage.sqlite.path']) : undefined;
    if (store?.emptyDir !== undefined) return;
    expect(volume!.emptyDir, `delivery.ack = durable with ${config['storage.backend']}: the log ${walDir(config)} is on an emptyDir`).toBeUndefined();
  });

  // A write-ahead log (or an embedded store) on a PersistentVolumeClaim of extraVolumes, as the
  // chart README offers for delivery.walDir: every pod of the Deployment mounts that one claim, and
  // the log's directory lock admits one collector. A rolling update starts the new pod beside the
  // old (maxUnavailable 0): it cannot take the lock, restarts for ever, and the rollout never ends.
  const WAL_CLAIM = [
    '-f', join(CHART, 'ci/postgres-values.yaml'), '--set', 'replicaCount=1', '--set', 'config.delivery.walDir=/var/lib/tracehouse-wal',
    '--set', 'extraVolumes[0].name=wal', '--set', 'extraVolumes[0].persistentVolumeClaim.claimName=tracehouse-wal',
    '--set', 'extraVolumeMounts[0].name=wal', '--set', 'extraVolumeMounts[0].mountPath=/var/lib/tracehouse-wal',
  ];
  const STORE_CLAIM = [
    '--set', 'persistence.enabled=false', '--set', 'config.storage.sqlite.path=/var/lib/tracehouse/tracehouse.db',
    '--set', 'extraVolumes[0].name=store', '--set', 'extraVolumes[0].persistentVolumeClaim.claimName=fast-ssd',
    '--set', 'extraVolumeMounts[0].name=store', '--set', 'extraVolumeMounts[0].mountPath=/var/lib/tracehouse',
  ];
  it.each([
    ['(defaults)', []],
    ...CI_VALUES.map((f) => [f, ['-f', f]] as [string, string[]]),
    ['the write-ahead log on a claim of extraVolumes', WAL_CLAIM],
    ['the write-ahead log on a claim of extraVolumes, three replicas', [...WAL_CLAIM, '--set', 'replicaCount=3']],
    ['the write-ahead log on a claim of extraVolumes, autoscaled', [...WAL_CLAIM, '--set', 'autoscaling.enabled=true']],
    ['the SQLite file on a claim of extraVolumes', STORE_CLAIM],
    // An updateStrategy of the values' own (a habit of other charts' values files) replaced the
    // Recreate the claim needs: the new pod exited 1 on the log's lock beside the old one, which
    // the rollout kept until the new one was ready, so `helm upgrade` never finished.
    ['(defaults) with updateStrategy RollingUpdate', ['--set', 'updateStrategy.type=RollingUpdate']],
    ['the write-ahead log on a claim of extraVolumes with updateStrategy RollingUpdate', [...WAL_CLAIM, '--set', 'updateStrategy.type=RollingUpdate', '--set', 'updateStrategy.rollingUpdate.maxSurge=1']],
  ])('runs one pod at a time on a claim its write-ahead log or store holds: %s', (_what, args) => {
    const r = template(args);
    // Refusing the combination, naming the option, is an answer too.
    if (r.status !== 0) return expect(r.stderr).toMatch(/config\.(delivery\.walDir|storage\.sqlite\.path)/);
    const all = render(args);
    const { config, pod } = effectiveConfig(all, 'Deployment');
    const held = [
      ...(config['delivery.ack'] === 'durable' ? [walDir(config)] : []),
      ...(config['storage.backend'] === 'sqlite' ? [config['storage.sqlite.path']] : []),
    ].filter((path) => volumeAt(pod, path)?.persistentVolumeClaim !== undefined);
    if (held.length === 0) return;
    const spec = all.find((o) => o.kind === 'Deployment')!.spec as unknown as { replicas?: number; strategy: { type: string } };
    expect(spec.strategy.type, `${held.join(', ')} on a claim: the old pod must let go of it before the new one starts`).toBe('Recreate');
    expect(spec.replicas, `${held.join(', ')} on a claim every replica mounts`).toBe(1);
    expect(all.map((o) => o.kind)).not.toContain('HorizontalPodAutoscaler');
  });

  it('leaves the claim the ingest pod\'s write-ahead log holds out of the migration Job, which runs beside that pod', () => {
    // The Job is a pre-upgrade hook: it runs while the old ingest pod still holds the log's claim
    // (ReadWriteOnce: attached to that pod's node). Scheduled on another node, the Job's pod waits
    // for the volume (Multi-Attach error; with ReadWriteOncePod it is never scheduled), the hook
    // times out and every `helm upgrade` fails. The Job migrates the database: it needs no log.
    const all = render([...WAL_CLAIM, '--set', 'config.storage.postgres.autoMigrate=false']);
    const claims = (kind: 'Deployment' | 'Job') => (effectiveConfig(all, kind).pod.volumes ?? []).flatMap((v) => (v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : []));
    const mounts = (kind: 'Deployment' | 'Job') => effectiveConfig(all, kind).pod.containers[0]!.volumeMounts!.map((m) => m.mountPath);
    expect(claims('Deployment')).toContain('tracehouse-wal');
    expect(claims('Job')).not.toContain('tracehouse-wal');
    expect(mounts('Job')).not.toContain('/var/lib/tracehouse-wal');
    // Other volumes of extraVolumes (a database CA, say) stay the Job's.
    const ca = render([...WAL_CLAIM, '--set', 'config.storage.postgres.autoMigrate=false', '--set', 'extraVolumes[1].name=db-ca', '--set', 'extraVolumes[1].configMap.name=db-ca', '--set', 'extraVolumeMounts[1].name=db-ca', '--set', 'extraVolumeMounts[1].mountPath=/etc/db-ca']);
    const job = effectiveConfig(ca, 'Job').pod;
    expect(volumeAt(job, '/etc/db-ca/ca.crt')?.configMap?.name).toBe('db-ca');
  });

  // gRPC clients (the OpenTelemetry Collector, Go and Java SDKs) keep one HTTP/2 connection for
  // good, and a Service balances connections, not calls: a busy exporter never idles long enough
  // (receiver.grpc.maxConnectionIdleMs) to be closed. Pods the HPA or a larger replicaCount added
  // got no gRPC traffic from the clients already connected, however long they ran, while the
  // first pods stayed saturated. With several pods the chart closes connections by age, so each
  // client reconnects within minutes and lands on any pod.
  it.each([
    ['three replicas', ['-f', join(CHART, 'ci/postgres-values.yaml')]],
    ['autoscaled', ['-f', join(CHART, 'ci/clickhouse-values.yaml')]],
  ])('moves gRPC clients onto pods added later: %s', (_what, args) => {
    const age = (extra: string[]) => effectiveConfig(render([...args, ...extra]), 'Deployment').config['receiver.grpc.maxConnectionAgeMs'] as number;
    expect(age([])).toBeGreaterThan(0);
    expect(age([])).toBeLessThanOrEqual(10 * 60_000);
    // An age of the values' own, flat or nested, or none (0), is left as given.
    expect(age(['--set', 'config.receiver.grpc.maxConnectionAgeMs=60000'])).toBe(60_000);
    expect(age(['--set', 'config.receiver.grpc.maxConnectionAgeMs=0'])).toBe(0);
  });

  it('leaves gRPC connections open for good with one pod', () => {
    expect(effectiveConfig(render([]), 'Deployment').config['receiver.grpc.maxConnectionAgeMs']).toBe(0);
  });

  it('leaves delivery.ack and delivery.walDir to the values that set them', () => {
    const postgres = ['-f', join(CHART, 'ci/postgres-values.yaml')];
    expect(effectiveConfig(render(postgres), 'Deployment').config['delivery.ack']).toBe('stored');
    expect(effectiveConfig(render([...postgres, '--set', 'config.delivery.ack=queued']), 'Deployment').config['delivery.ack']).toBe('queued');
    // The log on a claim of the operator's own (one pod at a time: see below).
    const wal = ['--set', 'replicaCount=1', '--set', 'extraVolumes[0].name=wal', '--set', 'extraVolumes[0].persistentVolumeClaim.claimName=wal', '--set', 'extraVolumeMounts[0].name=wal', '--set', 'extraVolumeMounts[0].mountPath=/wal'];
    expect(effectiveConfig(render([...postgres, ...wal, '--set', 'config.delivery.walDir=/wal']), 'Deployment').config['delivery.ack']).toBe('durable');
  });

  it('migrates the store the ingest pods use, or refuses: never an in-pod chdb directory the Job cannot reach', () => {
    const args = ['-f', join(CHART, 'ci/chdb-values.yaml'), '--set', 'config.storage.clickhouse.autoMigrate=false'];
    const r = template(args);
    if (r.status === 0) {
      // A Job rendered: its chdb:// directory must be the ingest pods' volume, or the pods find an unmigrated store and refuse to start.
      const all = render(args);
      const dir = (urls: readonly string[]) => new URL(urls[0]!).pathname;
      const ingest = effectiveConfig(all, 'Deployment');
      const job = effectiveConfig(all, 'Job');
      const claim = (e: { config: Config; pod: PodSpec }) => volumeAt(e.pod, dir(e.config['storage.clickhouse.urls']))?.persistentVolumeClaim?.claimName;
      expect(claim(ingest)).toBe('th-tracehouse-data');
      expect(claim(job), 'the migration Job migrates the chdb directory on the ingest pods\' volume').toBe(claim(ingest));
    } else {
      expect(r.stderr).toContain('config.storage.clickhouse.autoMigrate');
      expect(r.stderr).toContain('chdb://');
    }
  });

  // TLS set up in config from files of extraVolumes, as the chart README offers, and the
  // certificate of tls.existingSecret: each with the kubelet's probes as the chart renders them.
  const CONFIG_TLS = [
    '--set', 'config.tls.certFile=/etc/certs/tls.crt', '--set', 'config.tls.keyFile=/etc/certs/tls.key',
    '--set', 'extraVolumes[0].name=certs', '--set', 'extraVolumes[0].secret.secretName=my-certs',
    '--set', 'extraVolumeMounts[0].name=certs', '--set', 'extraVolumeMounts[0].mountPath=/etc/certs',
  ];
  // The ops port's own certificate (ops.tls.certFile, mode left to inherit): the README keeps the
  // ops port plain unless config sets ops.tls.mode, for the kubelet's probes and Prometheus.
  const OPS_CERT = ['--set', 'config.ops.tls.certFile=/etc/certs/tls.crt', '--set', 'config.ops.tls.keyFile=/etc/certs/tls.key', ...CONFIG_TLS.slice(4)];
  it.each([
    ['(defaults)', []],
    ...CI_VALUES.map((f) => [f, ['-f', f]] as [string, string[]]),
    ['TLS from config and extraVolumes', CONFIG_TLS],
    ['TLS from config on the memory store', [...CONFIG_TLS, '-f', join(CHART, 'ci/memory-values.yaml')]],
    ['a certificate of the ops port\'s own in config', OPS_CERT],
  ])('probes the ops port in the scheme it serves: %s', (_what, args) => {
    const { config, pod } = effectiveConfig(render(args), 'Deployment');
    const opsTls = resolveTls(config, 'ops') !== undefined;
    const c = pod.containers[0]!;
    for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe]) {
      expect(probe?.httpGet?.port).toBe('ops');
      // The kubelet speaks plain HTTP unless the probe says HTTPS: a plain request to a TLS port fails every time.
      expect((probe!.httpGet!.scheme ?? 'HTTP') === 'HTTPS', `ops serves ${opsTls ? 'TLS' : 'plain HTTP'}, the probe ${probe!.httpGet!.scheme ?? 'HTTP'}`).toBe(opsTls);
    }
  });

  it('schedules the migration Job and the helm test pod where the values place the ingest pods', () => {
    // Node affinity keeps pods on nodes of the image's architecture, or in the zone that reaches
    // the database: a Job scheduled elsewhere fails (exec format error, no route), and with it
    // every install and upgrade.
    const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] }] }] } } };
    const dir = tempDir();
    writeFileSync(join(dir, 'values.yaml'), JSON.stringify({ affinity, nodeSelector: { pool: 'db-access' }, tolerations: [{ key: 'dedicated', operator: 'Exists' }] }));
    const all = render(['-f', join(CHART, 'ci/postgres-values.yaml'), '-f', join(dir, 'values.yaml')]);
    const placement = (kind: string) => {
      const o = all.find((x) => x.kind === kind && (kind !== 'Pod' || x.metadata.annotations?.['helm.sh/hook'] === 'test'))!;
      const spec = (kind === 'Pod' ? o.spec : o.spec!.template!.spec) as unknown as Record<string, unknown>;
      return { affinity: spec['affinity'], nodeSelector: spec['nodeSelector'], tolerations: spec['tolerations'] };
    };
    expect(placement('Deployment')).toEqual({ affinity, nodeSelector: { pool: 'db-access' }, tolerations: [{ key: 'dedicated', operator: 'Exists' }] });
    expect(placement('Job')).toEqual(placement('Deployment'));
    // The `helm test` pod runs the same image.
    expect(placement('Pod')).toEqual(placement('Deployment'));
    // Pod (anti-)affinity places the ingest pods among themselves: a Job kept off their nodes
    // could find none left.
    writeFileSync(join(dir, 'values.yaml'), JSON.stringify({ affinity: { ...affinity, podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'tracehouse' } } }] } } }));
    const spread = render(['-f', join(CHART, 'ci/postgres-values.yaml'), '-f', join(dir, 'values.yaml')]);
    expect((spread.find((o) => o.kind === 'Job')!.spec!.template!.spec as unknown as Record<string, unknown>)['affinity']).toEqual(affinity);
  });

  it('gives the migration Job the volumes its configuration and environment name, as the ingest pods have them', () => {
    // PostgreSQL verified against a private CA: the URL names the CA file (pg reads sslrootcert),
    // and Node trusts it for https too (NODE_EXTRA_CA_CERTS), both from a volume of extraVolumes.
    const args = [
      '-f', join(CHART, 'ci/postgres-values.yaml'),
      '--set', 'secrets.postgresUrl=',
      '--set', 'config.storage.postgres.url=postgres://tracehouse@db.example.com:5432/tracehouse?sslmode=verify-full&sslrootcert=/etc/db-ca/ca.crt',
      '--set', 'extraEnv[0].name=NODE_EXTRA_CA_CERTS', '--set', 'extraEnv[0].value=/etc/db-ca/ca.crt',
      '--set', 'extraVolumes[0].name=db-ca', '--set', 'extraVolumes[0].configMap.name=db-ca',
      '--set', 'extraVolumeMounts[0].name=db-ca', '--set', 'extraVolumeMounts[0].mountPath=/etc/db-ca',
    ];
    const all = render(args);
    for (const kind of ['Deployment', 'Job'] as const) {
      const { config, pod } = effectiveConfig(all, kind);
      const env = Object.fromEntries((pod.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
      const files = [new URL(config['storage.postgres.url']).searchParams.get('sslrootcert')!, env['NODE_EXTRA_CA_CERTS']!];
      for (const file of files) expect(volumeAt(pod, file)?.configMap?.name, `${kind}: ${file}`).toBe('db-ca');
    }
  });

  it.each([
    ['(defaults)', []],
    ...CI_VALUES.map((f) => [f, ['-f', f]] as [string, string[]]),
    ['TLS from config and extraVolumes', CONFIG_TLS],
    ['TLS on the read API only', [...CONFIG_TLS, '--set', 'config.receiver.grpc.tls.mode=off', '--set', 'config.receiver.http.tls.mode=off']],
    ['TLS on the ops port too', ['-f', join(CHART, 'ci/tls-values.yaml'), '--set', 'config.ops.tls.mode=tls']],
    ['a certificate of the ops port\'s own in config', OPS_CERT],
    // 'inherit' in a listener's file keys is the global file (README, TLS): none here, so plain.
    ['listener files spelled inherit, no certificate', ['--set', 'config.query.tls.certFile=inherit', '--set', 'config.query.tls.keyFile=inherit', '--set', 'config.receiver.http.tls.certFile=inherit', '--set', 'config.receiver.http.tls.keyFile=inherit']],
    ['listener files spelled inherit, the global certificate from config', [...CONFIG_TLS, '--set', 'config.query.tls.certFile=inherit', '--set', 'config.query.tls.keyFile=inherit']],
  ])('declares the application protocol each Service port serves, TLS or not: %s', (_what, args) => {
    const all = render(args);
    const { config } = effectiveConfig(all, 'Deployment');
    const service = all.find((o) => o.kind === 'Service') as unknown as { spec: { ports: { name: string; appProtocol?: string }[] } };
    const listener = { 'otlp-grpc': 'receiver.grpc', 'otlp-http': 'receiver.http', query: 'query', ops: 'ops' } as const;
    for (const port of service.spec.ports) {
      const tls = resolveTls(config, listener[port.name as keyof typeof listener]) !== undefined;
      // A mesh or gateway takes http / grpc for cleartext and parses the bytes as such: a TLS port declared so is broken through it.
      if (tls) expect(port.appProtocol, `${port.name} serves TLS`).toBe('https');
      else expect(port.appProtocol, `${port.name} serves cleartext`).toBe(port.name === 'otlp-grpc' ? 'grpc' : 'http');
    }
  });

  it.each([
    ['no tokens at all', ['--set', 'config.ops.requireAuth=true'], false],
    ['no tokens, requireAuth spelled 1', ['--set-string', 'config.ops.requireAuth=1'], false],
    ['an empty tokens file variable', ['--set', 'config.ops.requireAuth=true', '--set', 'extraEnv[0].name=TRACEHOUSE_AUTH_TOKENS_FILE', '--set', 'extraEnv[0].value='], false],
    ['tokens from auth.existingSecret', ['--set', 'config.ops.requireAuth=true', '--set', 'auth.existingSecret=tokens', '--set', 'tests.enabled=false'], true],
    ['tokens named in config (extraVolumes)', ['--set', 'config.ops.requireAuth=true', '--set', 'config.auth.tokensFile=/etc/tokens/tokens.yaml', '--set', 'tests.enabled=false'], true],
  ])('renders /metrics behind a token only with tokens to check it against, as the collector starts: %s', (_what, args, renders) => {
    const r = template(args as string[]);
    if (!renders) {
      // The collector refuses ops.requireAuth without auth.tokensFile at start: the pod would restart for ever.
      expect(r.status).not.toBe(0);
      return expect(r.stderr).toContain('config.ops.requireAuth');
    }
    const { config } = effectiveConfig(render(args as string[]), 'Deployment');
    expect(config['ops.requireAuth']).toBe(true);
    expect(config['auth.tokensFile']).not.toBe('');
  });

  it.each([
    ['ci/postgres-values.yaml', ['-f', join(CHART, 'ci/postgres-values.yaml')]],
    ['/metrics behind a token', ['-f', join(CHART, 'ci/tls-values.yaml'), '--set', 'serviceMonitor.enabled=true', '--set', 'config.ops.requireAuth=true']],
    ['/metrics behind a token, the scrape with one', ['-f', join(CHART, 'ci/tls-values.yaml'), '--set', 'serviceMonitor.enabled=true', '--set-string', 'config.ops.requireAuth=TRUE', '--set', 'serviceMonitor.tokenSecret.name=scrape-token']],
  ])('has the ServiceMonitor scrape /metrics with what the collector asks of a scrape: %s', (_what, args) => {
    const r = template(args);
    // Refusing the combination is an answer too.
    if (r.status !== 0) return expect(r.stderr).toContain('ops.requireAuth');
    const all = render(args);
    const { config } = effectiveConfig(all, 'Deployment');
    const monitor = all.find((o) => o.kind === 'ServiceMonitor') as unknown as { spec: { endpoints: { port: string; authorization?: { type?: string; credentials?: { name: string; key: string } } }[] } };
    const endpoint = monitor.spec.endpoints.find((e) => e.port === 'ops')!;
    // With ops.requireAuth /metrics answers 401 to a scrape without a token: the target stays down.
    if (config['ops.requireAuth']) expect(endpoint.authorization?.credentials, 'a bearer token for /metrics').toBeDefined();
    else expect(endpoint.authorization).toBeUndefined();
  });
});
