import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError, envName, helpText, loadConfig, strayEnvNames } from '../../src/config/index.ts';
import { OPTIONS } from '../../src/config/options.ts';
import { parseCli } from '../../src/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

function yaml(text: string): string {
  const f = join(tempDir(), 'c.yaml');
  writeFileSync(f, text);
  return f;
}

describe('configuration', () => {
  it('has the documented defaults and is frozen', () => {
    const c = loadConfig();
    expect(c['storage.backend']).toBe('sqlite');
    expect(c['storage.sqlite.path']).toBe('./data/tracehouse.db');
    expect(c['receiver.grpc.listen']).toBe('127.0.0.1:4317');
    // Closed by default: nothing listens beyond loopback unless configured to.
    expect(c['receiver.http.listen']).toBe('127.0.0.1:4318');
    expect(c['query.listen']).toBe('127.0.0.1:16686');
    expect(c['ops.listen']).toBe('127.0.0.1:8888');
    expect(c['receiver.maxMessageBytes']).toBe(64 * 1024 * 1024);
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => ((c as any)['storage.backend'] = 'memory')).toThrow();
  });

  it('refuses two enabled listeners on one port, and takes one that is off, port 0 or two addresses', () => {
    expect(() => loadConfig({ flags: { 'receiver.http.listen': '127.0.0.1:9000', 'query.listen': '127.0.0.1:9000' } })).toThrow(ConfigError);
    expect(() => loadConfig({ flags: { 'receiver.grpc.listen': '[::]:9000', 'ops.listen': '127.0.0.1:9000' } })).toThrow(/receiver.grpc.listen = "\[::\]:9000" \(from flag --receiver.grpc.listen\) and ops.listen = "127.0.0.1:9000"/);
    for (const flags of [
      { 'query.enabled': 'false', 'query.listen': '127.0.0.1:9000', 'ops.listen': '127.0.0.1:9000' },
      { 'receiver.grpc.enabled': 'false', 'receiver.grpc.listen': '127.0.0.1:9000', 'ops.listen': '127.0.0.1:9000' },
      { 'receiver.http.listen': '127.0.0.1:0', 'ops.listen': '127.0.0.1:0' },
      { 'receiver.http.listen': '127.0.0.1:9000', 'ops.listen': '10.1.2.3:9000' },
    ]) expect(() => loadConfig({ flags }), JSON.stringify(flags)).not.toThrow();
  });

  it('refuses a CORS origin without a scheme, which no browser Origin would match', () => {
    for (const origin of ['*.example.com', 'example.com', 'localhost:3000']) {
      expect(() => loadConfig({ flags: { 'receiver.http.corsAllowedOrigins': `https://ok.example,${origin}` } }), origin).toThrow(
        `receiver.http.corsAllowedOrigins entry ${JSON.stringify(origin)} (from flag --receiver.http.corsAllowedOrigins) has no scheme`,
      );
    }
    for (const origins of ['*', 'https://*.example.com,http://localhost:3000', 'null', 'chrome-extension://abcdef']) {
      expect(loadConfig({ flags: { 'receiver.http.corsAllowedOrigins': origins } })['receiver.http.corsAllowedOrigins'].length, origins).toBeGreaterThan(0);
    }
  });

  it('refuses an allowedHosts entry that is no host name, which no Host header would match', () => {
    // Each listener compares each entry with the Host header's name (its port, brackets and a
    // trailing dot left out): a URL or a wildcard there matched nothing, and the proxy it was
    // written for got 403 telling it to add itself to the option.
    for (const key of ['query.allowedHosts', 'receiver.http.allowedHosts', 'ops.allowedHosts'] as const) {
      for (const entry of ['http://proxy.example', 'https://proxy.example:8443/', '*.example.com', 'proxy.example/ui']) {
        expect(() => loadConfig({ flags: { [key]: `ok.example,${entry}` } }), entry).toThrow(
          `${key} entry ${JSON.stringify(entry)} (from flag --${key}) is no host name`,
        );
      }
      for (const hosts of ['proxy.example', 'proxy.example:8080,Other.Example.', 'tracehouse.internal,[::1],::1,127.0.0.2']) {
        expect(loadConfig({ flags: { [key]: hosts } })[key].length, hosts).toBeGreaterThan(0);
      }
      // A quoted YAML item with spaces around it: the comparison drops them, so does the check.
      const [section, option] = key.split('.') as [string, string];
      const file = join(tempDir(), 'hosts.yaml');
      writeFileSync(file, section === 'receiver' ? `receiver:\n  http:\n    allowedHosts: [" proxy.example "]\n` : `${section}:\n  ${option}: [" proxy.example "]\n`);
      expect(loadConfig({ file })[key]).toEqual([' proxy.example ']);
    }
  });

  it('tells a guessed port variable (TRACEHOUSE_OPS_PORT=9090) from a Kubernetes service link (tcp://…), warning of the first', () => {
    // A Service's link {NAME}_PORT is always proto://address:port; a port number there is someone
    // guessing at an option (the port is part of ops.listen), which nothing reads.
    const stray = strayEnvNames({
      TRACEHOUSE_OPS_PORT: '9090',
      TRACEHOUSE_QUERY_PORT: '16687',
      TRACEHOUSE_PORT: 'tcp://10.0.0.1:4317',
      TRACEHOUSE_POSTGRES_PORT: 'tcp://10.0.0.2:5432',
      TRACEHOUSE_SERVICE_PORT: '4317',
      TRACEHOUSE_PORT_4317_TCP_PORT: '4317',
    });
    expect(stray).toEqual(['TRACEHOUSE_OPS_PORT', 'TRACEHOUSE_QUERY_PORT']);
  });

  it('refuses localhost beside a loopback address on one port: the name binds that address', () => {
    // Node and grpc-js bind localhost as 127.0.0.1 (and ::1): the second listener failed with
    // EADDRINUSE after the store had opened, exit 1, naming neither option.
    for (const [a, b] of [
      ['localhost:9000', '127.0.0.1:9000'],
      ['LOCALHOST:9000', '[::1]:9000'],
      ['localhost:9000', 'localhost:9000'],
    ]) {
      expect(() => loadConfig({ flags: { 'query.listen': a!, 'ops.listen': b! } }), `${a} ${b}`).toThrow(/query.listen = .* and ops.listen = .* are the same port/);
    }
    expect(() => loadConfig({ flags: { 'query.listen': 'localhost:9000', 'ops.listen': '10.1.2.3:9000' } })).not.toThrow();
  });

  it('takes the IPv4 wildcard and an IPv6 address on one port: they bind side by side', () => {
    // 0.0.0.0 takes the port on IPv4 addresses only: [::1]:9000 binds beside it (Linux, Node).
    for (const flags of [
      { 'query.listen': '0.0.0.0:9000', 'ops.listen': '[::1]:9000' },
      { 'receiver.http.listen': '[fd00::5]:9000', 'ops.listen': '0.0.0.0:9000' },
    ]) expect(() => loadConfig({ flags }), JSON.stringify(flags)).not.toThrow();
    // `::` (dual stack) still takes the IPv4 addresses too.
    expect(() => loadConfig({ flags: { 'query.listen': '[::]:9000', 'ops.listen': '0.0.0.0:9000' } })).toThrow(ConfigError);
  });

  it('refuses the IPv4 wildcard beside `::` or an IPv4-mapped address however the IPv6 address is spelled: they cannot bind side by side', () => {
    // [::0] and [0:0:0:0:0:0:0:0] are `::` (dual stack); a mapped address takes an IPv4 address's port.
    for (const v6 of ['[::0]', '[0:0:0:0:0:0:0:0]', '[0:0:0:0:0:ffff:127.0.0.1]', '[::ffff:7f00:1]']) {
      expect(() => loadConfig({ flags: { 'query.listen': '0.0.0.0:9000', 'ops.listen': `${v6}:9000` } }), v6).toThrow(ConfigError);
    }
    expect(() => loadConfig({ flags: { 'query.listen': '127.0.0.1:9000', 'ops.listen': '[::ffff:127.0.0.1]:9000' } })).toThrow(ConfigError);
  });

  it('applies flags over env over file over defaults', () => {
    const file = yaml('writer:\n  maxBatchRows: 100\n  flushIntervalMs: 50\n  maxInFlightBatches: 2\nstorage:\n  backend: memory\n');
    const c = loadConfig({
      file,
      env: { TRACEHOUSE_WRITER_FLUSH_INTERVAL_MS: '60', TRACEHOUSE_WRITER_MAX_IN_FLIGHT_BATCHES: '3' },
      flags: { 'writer.maxInFlightBatches': '7' },
    });
    expect(c['writer.maxBatchRows']).toBe(100);
    expect(c['writer.flushIntervalMs']).toBe(60);
    expect(c['writer.maxInFlightBatches']).toBe(7);
    expect(c['storage.backend']).toBe('memory');
  });

  it('parses sizes, booleans and lists', () => {
    const c = loadConfig({ flags: { 'writer.maxQueueBytes': '16MiB', 'receiver.http.enabled': 'false', 'storage.clickhouse.urls': 'http://a:8123, http://b:8123' } });
    expect(c['writer.maxQueueBytes']).toBe(16 * 1024 * 1024);
    expect(c['receiver.http.enabled']).toBe(false);
    expect(c['storage.clickhouse.urls']).toEqual(['http://a:8123', 'http://b:8123']);
  });

  it('says what a byte size or a count takes when a value is not one (README: byte sizes accept KiB/MiB/GiB)', () => {
    // A user writing 0.5GiB or 10XB read "expected number, received string", which names no unit.
    for (const v of ['0.5GiB', '10XB', '1 TiB']) {
      expect(() => loadConfig({ flags: { 'writer.maxQueueBytes': v } }), v).toThrow(/writer\.maxQueueBytes = ".*" \(from flag --writer\.maxQueueBytes\): expected a whole number of bytes, alone or with KiB, MiB or GiB \(512MiB\)/);
    }
    expect(() => loadConfig({ file: yaml('writer:\n  maxBatchRows: 10k\n') })).toThrow(/writer\.maxBatchRows = "10k" .*: expected a whole number$/);
    // 5m on a …Ms key is not 5 minutes: no unit is named there.
    expect(() => loadConfig({ flags: { 'shutdown.timeoutMs': '5m' } })).toThrow(/shutdown\.timeoutMs = "5m" .*: expected a whole number$/);
  });

  it('says a whole number below an option\'s least is too small, not that it is no number', () => {
    // A byte size or count under its least (a queue of 512 bytes, 0 concurrent reads) read
    // "expected a whole number of bytes, alone or with KiB, MiB or GiB": the value is one.
    expect(() => loadConfig({ flags: { 'writer.maxQueueBytes': '512' } })).toThrow(/writer\.maxQueueBytes = "512" .*: Too small: expected number to be >=1024$/);
    expect(() => loadConfig({ flags: { 'query.maxConcurrentReads': '0' } })).toThrow(/query\.maxConcurrentReads = "0" .*: Too small: expected number to be >=1$/);
    expect(() => loadConfig({ env: { TRACEHOUSE_WRITER_MAX_BATCH_ROWS: '-3' } })).toThrow(/writer\.maxBatchRows = "-3" .*: Too small: expected number to be >=1$/);
  });

  it('reads booleans and choices with spaces around them, as it reads numbers (a Secret value ending in a newline)', () => {
    const c = loadConfig({ env: { TRACEHOUSE_QUERY_ENABLED: 'false\n', TRACEHOUSE_STORAGE_BACKEND: ' memory\n', TRACEHOUSE_WRITER_MAX_BATCH_ROWS: '500\n' } });
    expect(c['query.enabled']).toBe(false);
    expect(c['storage.backend']).toBe('memory');
    expect(c['writer.maxBatchRows']).toBe(500);
    // An empty choice that means "inherit" still does.
    expect(loadConfig({ flags: { 'query.tls.minVersion': ' ' } })['query.tls.minVersion']).toBe('inherit');
  });

  it.each([
    [{ 'writer.maxBatchRows': '0' }, 'writer.maxBatchRows = "0"'],
    [{ 'writer.maxBatchRows': '1.5' }, 'writer.maxBatchRows = "1.5"'],
    [{ 'storage.backend': 'mongodb' }, 'storage.backend = "mongodb"'],
    [{ 'query.listen': 'localhost' }, 'query.listen = "localhost"'],
    [{ 'receiver.grpc.enabled': 'maybe' }, 'receiver.grpc.enabled = "maybe"'],
    [{ 'storage.sqlite.cacheMiB': '0' }, 'storage.sqlite.cacheMiB = "0"'],
    [{ 'storage.sqlite.checkpointMiB': '2048' }, 'storage.sqlite.checkpointMiB = "2048"'],
    [{ 'receiver.grpc.streamWindowBytes': '1000' }, 'receiver.grpc.streamWindowBytes = "1000"'],
    [{ 'storage.memory.maxSpans': '3000000000' }, 'storage.memory.maxSpans = "3000000000"'],
    [{ 'receiver.grpc.connectionWindowBytes': '4GiB' }, 'receiver.grpc.connectionWindowBytes = "4GiB"'],
    // A size unit belongs to byte counts: 5m on a millisecond key is not 5 MiB of milliseconds.
    [{ 'storage.postgres.maintenanceIntervalMs': '5m' }, 'storage.postgres.maintenanceIntervalMs = "5m"'],
    [{ 'storage.sqlite.cacheMiB': '64MiB' }, 'storage.sqlite.cacheMiB = "64MiB"'],
    // Node fires a timer longer than 2^31 - 1 ms after 1 ms.
    [{ 'shutdown.timeoutMs': '3000000000' }, 'shutdown.timeoutMs = "3000000000"'],
    [{ 'writer.writeTimeoutMs': '2147483648' }, 'writer.writeTimeoutMs = "2147483648"'],
    [{ 'ops.listen': '127.0.0.1:70000' }, 'ops.listen = "127.0.0.1:70000"'],
  ])('rejects %o naming key and value', (flags, message) => {
    expect(() => loadConfig({ flags })).toThrow(ConfigError);
    expect(() => loadConfig({ flags })).toThrow(message);
  });

  it('takes the longest timer on millisecond keys, and longer ages where a key is only compared with elapsed time', () => {
    expect(loadConfig({ flags: { 'shutdown.timeoutMs': String(2 ** 31 - 1) } })['shutdown.timeoutMs']).toBe(2 ** 31 - 1);
    const thirtyDays = String(30 * 86_400_000);
    expect(loadConfig({ flags: { 'storage.memory.maxAgeMs': thirtyDays, 'writer.retryMaxElapsedMs': thirtyDays } })['storage.memory.maxAgeMs']).toBe(30 * 86_400_000);
  });

  it('reads a MiB key from its environment name, and from the name --help gave before', () => {
    expect(envName('storage.sqlite.checkpointMiB')).toBe('TRACEHOUSE_STORAGE_SQLITE_CHECKPOINT_MIB');
    expect(loadConfig({ env: { TRACEHOUSE_STORAGE_SQLITE_CHECKPOINT_MIB: '64' } })['storage.sqlite.checkpointMiB']).toBe(64);
    expect(loadConfig({ env: { TRACEHOUSE_STORAGE_SQLITE_CACHE_MI_B: '256' } })['storage.sqlite.cacheMiB']).toBe(256);
  });

  it('reads a section left empty (its lines commented out) as no settings, not as an unknown key', () => {
    const c = loadConfig({ file: yaml('storage:\n  backend: memory\n  postgres:\n    # url: postgres://db/x\nwriter:\n  # maxBatchRows: 5000\n') });
    expect(c['storage.backend']).toBe('memory');
    expect(c['writer.maxBatchRows']).toBe(10_000);
    // An option left empty is still a bad value, and a scalar where a section belongs still unknown.
    expect(() => loadConfig({ file: yaml('storage:\n  backend:\n') })).toThrow('storage.backend = null');
    expect(() => loadConfig({ file: yaml('writer: 5\n') })).toThrow("unknown key 'writer'");
  });

  it('refuses a file that is not a mapping of options, saying what it is instead of an unknown key \'\'', () => {
    // A properties file (key=value lines) reads as one YAML string, a list of settings as a list.
    for (const [text, what] of [
      ['storage.backend=postgres\n', 'a string'],
      ['- storage.backend: postgres\n', 'a list'],
      ['42\n', 'a number'],
    ] as const) {
      expect(() => loadConfig({ file: yaml(text) }), text).toThrow(new RegExp(`config file .*: expected a mapping of options \\(key: value\\), not ${what}`));
    }
  });

  it('rejects unknown keys in files and flags', () => {
    expect(() => loadConfig({ file: yaml('storage:\n  backnd: memory\n') })).toThrow("unknown key 'storage.backnd'");
    expect(() => loadConfig({ flags: { 'no.such': '1' } })).toThrow("unknown option '--no.such'");
  });

  it('takes the flatter spelling of a key a file sets twice, wherever it stands (as the Helm chart reads it)', () => {
    // What a Helm values merge writes: the chart's nested default, and a user's dotted override,
    // in either order.
    expect(loadConfig({ file: yaml('writer:\n  maxQueueBytes: 64MiB\nwriter.maxQueueBytes: 1GiB\n') })['writer.maxQueueBytes']).toBe(1 << 30);
    expect(loadConfig({ file: yaml('writer.maxQueueBytes: 1GiB\nwriter:\n  maxQueueBytes: 64MiB\n') })['writer.maxQueueBytes']).toBe(1 << 30);
    expect(loadConfig({ file: yaml('storage:\n  sqlite:\n    path: /a.db\n  sqlite.path: /b.db\n') })['storage.sqlite.path']).toBe('/b.db');
    expect(loadConfig({ file: yaml('storage:\n  sqlite.path: /b.db\n  sqlite:\n    path: /a.db\n') })['storage.sqlite.path']).toBe('/b.db');
    // Two spellings as flat as each other: the later one, as the chart reads its sorted config.yaml.
    expect(loadConfig({ file: yaml('storage:\n  sqlite.path: /a.db\nstorage.sqlite:\n  path: /b.db\n') })['storage.sqlite.path']).toBe('/b.db');
  });

  it('derives environment names and lists every option in --help', () => {
    expect(envName('writer.maxQueueBytes')).toBe('TRACEHOUSE_WRITER_MAX_QUEUE_BYTES');
    const help = helpText();
    for (const o of OPTIONS) {
      expect(help).toContain(`--${o.key}=`);
      expect(help).toContain(envName(o.key));
    }
    // README's other way to name the file.
    expect(help).toContain('TRACEHOUSE_CONFIG');
  });

  it('parses the command line', () => {
    expect(parseCli(['migrate', '--config', 'x.yaml', '--storage.backend=postgres', '--log.level', 'debug'])).toEqual({
      command: 'migrate',
      help: false,
      configFile: 'x.yaml',
      flags: { 'storage.backend': 'postgres', 'log.level': 'debug' },
    });
    expect(parseCli(['--help']).help).toBe(true);
    // A list given twice keeps both (a ClickHouse shard each); another option given twice, the last.
    expect(parseCli(['--storage.clickhouse.urls=http://a:8123', '--storage.clickhouse.urls', 'http://b:8123', '--log.level=info', '--log.level=debug']).flags).toEqual({
      'storage.clickhouse.urls': 'http://a:8123,http://b:8123',
      'log.level': 'debug',
    });
    expect(parseCli([]).command).toBe('start');
  });
});

describe('storage.postgres.url refused at start', () => {
  it('never shows the password of a URL it refuses (a JDBC URL, a libpq string, a password with a slash or an @)', async () => {
    const { createBackend } = await import('../../src/storage/index.ts');
    const { createMetrics } = await import('../../src/telemetry/metrics.ts');
    const pino = (await import('pino')).default;
    for (const url of [
      'jdbc:postgresql://db:5432/traces?user=th&password=s3cret',
      'host=db port=5432 dbname=traces user=th password=s3cret',
      'th:s3/cret@db:5432/traces',
      // A scheme typo, and an @ in the password (pg takes it unescaped: the last @ ends it).
      'postgress://th:p@s3cret@db:5432/traces',
    ]) {
      const c = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url } });
      const err = await createBackend(c, { logger: pino({ level: 'silent' }), metrics: createMetrics() }).then(() => undefined, (e: unknown) => e);
      expect(err, url).toBeInstanceOf(ConfigError);
      expect((err as Error).message, url).toContain('storage.postgres.url');
      expect((err as Error).message, url).not.toContain('s3');
    }
  });

  it('never shows the ClickHouse password a file gives as a number (YAML reads 987654321 as one), nor a URL password', () => {
    const refusal = (text: string): string => {
      try {
        loadConfig({ file: yaml(text) });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('not refused');
    };
    const m = refusal('storage:\n  clickhouse:\n    password: 987654321\n');
    expect(m).toContain('storage.clickhouse.password');
    expect(m).toContain('expected string');
    expect(m).not.toContain('987654321');
    const u = refusal('storage:\n  postgres:\n    url:\n      - postgres://th:s3cret@db/traces\n');
    expect(u).toContain('storage.postgres.url');
    expect(u).not.toContain('s3cret');
  });

  it('prints a YAML warning of the config file (a tag it does not know) by position, without the line that holds a password', () => {
    const emitted: string[] = [];
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation((w: string | Error) => void emitted.push(String(w instanceof Error ? w.message : w)));
    try {
      const c = loadConfig({ file: yaml('storage:\n  clickhouse:\n    password: !vault s3cretpw\n') });
      expect(c['storage.clickhouse.password']).toBe('s3cretpw');
    } finally {
      spy.mockRestore();
    }
    expect(emitted.length).toBeGreaterThan(0);
    expect(emitted.join('\n')).toMatch(/line 3/);
    for (const w of emitted) expect(w).not.toContain('s3cretpw');
  });

  it('never shows any of a refused URL\'s password that holds an @ or a /', () => {
    for (const [key, text] of [
      ['storage.postgres.url', 'storage:\n  postgres:\n    url:\n      - postgres://th:s3c@ret@db/traces\n'],
      ['storage.postgres.url', 'storage:\n  postgres:\n    url:\n      - postgres://th:s3c/ret@db/traces\n'],
      ['storage.clickhouse.urls', 'storage:\n  clickhouse:\n    urls:\n      - url: http://default:s3c@ret@ch:8123\n'],
    ] as const) {
      let m = '';
      try {
        loadConfig({ file: yaml(text) });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        m = (err as Error).message;
      }
      expect(m, text).toContain(key);
      expect(m, text).not.toContain('ret@');
      expect(m, text).not.toContain('s3c');
    }
  });

  it('reports a config file that is no valid YAML by position, without quoting the lines that may hold a password', () => {
    for (const text of [
      'storage:\n  postgres:\n    url: "postgres://th:s3cret@db/traces\n  backend: postgres\n',
      'storage:\n  postgres:\n    url: postgres://th:s3cret@db/traces\n   backend: postgres\n',
    ]) {
      const f = yaml(text);
      let message = '';
      try {
        loadConfig({ file: f });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toContain(`config file ${f}`);
      expect(message).toMatch(/line \d+, column \d+/);
      expect(message).not.toContain('s3cret');
    }
  });
});

describe('the example configurations (deploy/examples)', () => {
  const dir = join(import.meta.dirname, '../../deploy/examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

  // The examples are started from a checkout by its user, or in the image as UID 1000, which may
  // write only its working directory's data/ (/app/data): a directory elsewhere (/var/lib/…) is
  // one the collector cannot create at start, and it stops.
  it('each loads as written, names its write-ahead log with a PostgreSQL or ClickHouse store, and writes only under ./data', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      const c = loadConfig({ file: join(dir, f) });
      if (c['storage.backend'] !== 'sqlite' && c['delivery.ack'] === 'durable') expect(c['delivery.walDir'], f).not.toBe('');
      for (const key of ['delivery.walDir', 'storage.sqlite.path'] as const) {
        const path = c[key];
        if (path !== '') expect(path, `${f} ${key}`).toMatch(/^\.\/data\//);
      }
    }
  });
});
