// Configuration is parsed once, at the edge: defaults < YAML file < TRACEHOUSE_* env < flags,
// validated by one zod schema built from OPTIONS, then frozen. Errors name the key, the value
// and where it came from.
import { readFileSync } from 'node:fs';
import { isIP, isIPv6 } from 'node:net';
import { parseDocument, YAMLParseError } from 'yaml';
import { canonicalHost, parseListen } from '../common/http.ts';
import { z } from 'zod';
import type { Logger } from '../telemetry/logger.ts';
import { intMax, OPTIONS, takesSizeUnit, type OptionDef, type OptionType } from './options.ts';

type Opt = (typeof OPTIONS)[number];
type ValueOf<T extends OptionType> = T extends { kind: 'int' }
  ? number
  : T extends { kind: 'bool' }
    ? boolean
    : T extends { kind: 'list' }
      ? readonly string[]
      : T extends { kind: 'enum'; values: readonly (infer V)[] }
        ? V
        : string;

/** The validated, frozen configuration, keyed by dotted option name. */
export type Config = { readonly [D in Opt as D['key']]: ValueOf<D['type']> };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

function schemaFor(o: OptionDef): z.ZodType {
  const t = o.type;
  switch (t.kind) {
    case 'string':
      return z.string();
    case 'int': {
      // What a value that is no whole number is told; one out of range keeps zod's own message,
      // which names the bound (zod gives this the issues of .int() and .min() too, whatever its
      // types say).
      const notANumber = takesSizeUnit(o) ? 'expected a whole number of bytes, alone or with KiB, MiB or GiB (512MiB)' : 'expected a whole number';
      const n = z.preprocess((v) => {
        if (typeof v !== 'string') return v;
        const m = /^\s*(-?\d+)\s*([a-zA-Z]*)\s*$/.exec(v);
        if (!m) return v;
        const unit = m[2] === '' ? 1 : takesSizeUnit(o) ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
        return unit === undefined ? v : Number(m[1]) * unit;
      }, z.number({ error: (issue: { code: string }) => (issue.code === 'too_small' || issue.code === 'too_big' ? undefined : notANumber) }).int().min(t.min));
      const max = intMax(o.key, t.max);
      return max === undefined ? n : n.pipe(z.number().max(max));
    }
    case 'bool':
      return z.preprocess((v) => {
        if (typeof v !== 'string') return v;
        const s = v.trim().toLowerCase();
        return s === 'true' || s === '1' ? true : s === 'false' || s === '0' ? false : v;
      }, z.boolean());
    case 'list':
      return z.preprocess(
        (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : v),
        z.array(z.string()),
      );
    case 'enum': {
      const e = z.enum(t.values as [string, ...string[]]);
      // A listener's tls.minVersion reads empty as inherit, as an empty certFile does (README:
      // "empty or inherit means the global value").
      // Spaces around a value are dropped, as numbers' are (a Secret's value ending in a newline).
      const empty = t.empty;
      // A listener's tls.mode `off` written unquoted in a Helm values file is YAML 1.1's false
      // (Helm's YAML reader), which the chart renders into the config file as false: read as off.
      const off = t.values.includes('off');
      return z.preprocess((v) => {
        if (v === false && off) return 'off';
        const s = typeof v === 'string' ? v.trim() : v;
        return s === '' && empty !== undefined ? empty : s;
      }, e);
    }
    case 'listen':
      return z
        .string()
        .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected host:port')
        .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'expected a port from 0 to 65535');
  }
}

const BY_KEY = new Map<string, OptionDef>(OPTIONS.map((o) => [o.key, o]));
/** The sections of the YAML layout: every dotted prefix of a key (storage, storage.postgres, …). */
const SECTIONS = new Set(OPTIONS.flatMap((o) => o.key.split('.').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('.'))));
const SCHEMA = z.object(Object.fromEntries(OPTIONS.map((o) => [o.key, schemaFor(o)]))).strict();

/** TRACEHOUSE_WRITER_MAX_QUEUE_BYTES for writer.maxQueueBytes; a MiB suffix is one word (…_CACHE_MIB). */
export function envName(key: string): string {
  return 'TRACEHOUSE_' + key.replace(/MiB$/, 'Mib').replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/\./g, '_').toUpperCase();
}

/** The name --help gave a MiB key before (TRACEHOUSE_STORAGE_SQLITE_CACHE_MI_B), still read. */
const oldEnvName = (key: string): string | undefined => (key.endsWith('MiB') ? envName(key).replace(/MIB$/, 'MI_B') : undefined);

function flatten(obj: unknown, prefix: string, out: Map<string, unknown>, depth = 0, depths = new Map<string, number>()): void {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    out.set(prefix, obj);
    return;
  }
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    // A section left empty (`writer:` with every line below it commented out) is YAML's null: no settings.
    if (v === null && SECTIONS.has(key)) continue;
    // A nested object is a section unless the key itself is an option.
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !BY_KEY.has(key)) flatten(v, key, out, depth + 1, depths);
    // One key spelled twice (`writer: {maxQueueBytes: …}` and `writer.maxQueueBytes: …`, as a
    // Helm values merge of the chart's defaults and a user's dotted override writes it): the
    // flatter spelling wins, wherever it stands in the file, as the chart reads it; of two as
    // flat (storage: {sqlite.path} and storage.sqlite: {path}), the later, as the chart (whose
    // config.yaml has its keys sorted) reads it.
    else if ((depths.get(key) ?? Infinity) >= depth) {
      out.set(key, v);
      depths.set(key, depth);
    }
  }
}

/**
 * TRACEHOUSE_* names that are not options and not a typo: the config file's, Kubernetes' service
 * links of a Service named tracehouse or tracehouse-… (TRACEHOUSE_SERVICE_HOST,
 * TRACEHOUSE_POSTGRES_PORT_5432_TCP_ADDR, …) and the test suite's and benches' own.
 */
const NOT_OPTIONS = /^TRACEHOUSE_(CONFIG|(\w+_)?(SERVICE_(HOST|PORT(_\w+)?)|PORT_\d+_(TCP|UDP|SCTP)(_\w+)?)|TEST_\w+|BENCH_\w+|CHROMIUM)$/;
/**
 * A service link's bare {NAME}_PORT, told by its value (tcp://10.0.0.1:4317): a port number
 * there is a guess at an option (TRACEHOUSE_OPS_PORT=9090), which nothing reads.
 */
const SERVICE_LINK_PORT = (name: string, value: string | undefined): boolean =>
  /^TRACEHOUSE_(\w+_)?PORT$/.test(name) && /^(tcp|udp|sctp):\/\//i.test(value ?? '');

/** Edit distance of two names, for the suggestion of a mistyped one. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * TRACEHOUSE_* variables that name no option, each with the option's variable it most likely
 * meant: loadConfig ignores them, so the collector warns rather than run on a default unseen
 * (TRACEHOUSE_STORAGE_BAKEND=postgres would otherwise store into SQLite).
 */
export function strayEnvNames(env: NodeJS.ProcessEnv): string[] {
  const known = OPTIONS.flatMap((o) => [envName(o.key), oldEnvName(o.key)]).filter((n): n is string => n !== undefined);
  const names = new Set(known);
  return Object.keys(env)
    .filter((n) => n.startsWith('TRACEHOUSE_') && !names.has(n) && !NOT_OPTIONS.test(n) && !SERVICE_LINK_PORT(n, env[n]))
    .sort()
    .map((n) => {
      let best = '';
      let bestDistance = 4;
      for (const k of known) {
        const d = distance(n, k);
        if (d < bestDistance) [best, bestDistance] = [k, d];
      }
      return best === '' ? n : `${n} (${best}?)`;
    });
}

/** Warns once of the environment's stray TRACEHOUSE_ variables (strayEnvNames), on every command that reads options from it. */
export function warnStrayEnv(logger: Logger, env: NodeJS.ProcessEnv): void {
  const stray = strayEnvNames(env);
  if (stray.length > 0) logger.warn({ variables: stray }, 'environment variables named TRACEHOUSE_ that are no option are ignored (see --help)');
}

/** Options whose value is a secret: a refusal names the option and the problem, never the value. */
const SECRET_KEYS = new Set(['storage.clickhouse.password']);
/** Options whose values are URLs, which may carry a user:password@. */
const URL_KEYS = new Set(['storage.postgres.url', 'storage.clickhouse.urls']);

/** A refused value as its error quotes it: a secret's hidden, a URL's password replaced by ***. */
function shownValue(key: string, value: unknown): string | undefined {
  if (SECRET_KEYS.has(key)) return '(hidden)';
  const text = JSON.stringify(value);
  // Up to the last @ of the quoted URL: a password may hold / ? # or @ (redactUrl's reading).
  return URL_KEYS.has(key) ? text?.replace(/(\/\/[^/?#:@"\s]*:)[^"\s]*@/g, '$1***@') : text;
}

/**
 * A YAML file's text parsed as yaml's parse() does, but its warnings (a tag it does not know:
 * `password: !vault …`) told by position and code only: yaml prints them with the lines around
 * them, which may hold a password or a token. Throws yaml's first error, as parse() does.
 */
export function parseYamlQuietly(text: string, what: string): unknown {
  const doc = parseDocument(text, { logLevel: 'error' });
  for (const w of doc.warnings) {
    const at = w.linePos?.[0];
    process.emitWarning(`${what}: YAML warning${at ? ` at line ${at.line}, column ${at.col}` : ''} (${w.code})`);
  }
  if (doc.errors.length > 0) throw doc.errors[0];
  return doc.toJS();
}

export interface ConfigSources {
  /** CLI flags already split into key → raw value (without leading dashes). */
  flags?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
  /** YAML file path (from --config or TRACEHOUSE_CONFIG). */
  file?: string;
  /** Where file was named (env TRACEHOUSE_CONFIG), said in its errors: a path from a variable set long ago is otherwise a riddle. */
  fileFrom?: string;
}

/** Merges and validates every source into a frozen Config; throws ConfigError naming the key and value. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const raw = new Map<string, { value: unknown; from: string }>();
  for (const o of OPTIONS) raw.set(o.key, { value: o.default, from: 'default' });

  if (sources.file) {
    const named = `config file ${sources.file}${sources.fileFrom ? ` (from ${sources.fileFrom})` : ''}`;
    let doc: unknown;
    try {
      doc = parseYamlQuietly(readFileSync(sources.file, 'utf8'), named);
    } catch (err) {
      // The parser's message quotes the lines around the fault, which may hold a password (as
      // the tokens file's do a token): a syntax error is told by its position and code only.
      if (err instanceof YAMLParseError) {
        const at = err.linePos?.[0];
        throw new ConfigError(`${named}: not valid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''} (${err.code})`);
      }
      throw new ConfigError(`${named}: ${(err as Error).message}`);
    }
    // A properties file (key=value lines) is one YAML string: say so, not "unknown key ''". Not
    // quoted: it may hold a password.
    if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
      const what = Array.isArray(doc) ? 'a list' : typeof doc === 'string' ? 'a string' : typeof doc === 'number' ? 'a number' : `a ${typeof doc}`;
      throw new ConfigError(`${named}: expected a mapping of options (key: value), not ${what}`);
    }
    const flat = new Map<string, unknown>();
    if (doc !== null && doc !== undefined) flatten(doc, '', flat);
    for (const [k, v] of flat) {
      if (!BY_KEY.has(k)) throw new ConfigError(`${named}: unknown key '${k}'`);
      raw.set(k, { value: v, from: `file ${sources.file}` });
    }
  }
  const env = sources.env ?? {};
  for (const o of OPTIONS) {
    const name = [envName(o.key), oldEnvName(o.key)].find((n) => n !== undefined && env[n] !== undefined);
    if (name !== undefined) raw.set(o.key, { value: env[name], from: `env ${name}` });
  }
  for (const [k, v] of Object.entries(sources.flags ?? {})) {
    if (!BY_KEY.has(k)) throw new ConfigError(`unknown option '--${k}' (see --help)`);
    raw.set(k, { value: v, from: `flag --${k}` });
  }

  const input = Object.fromEntries([...raw].map(([k, v]) => [k, v.value]));
  const parsed = SCHEMA.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const src = raw.get(key);
    throw new ConfigError(
      `invalid configuration: ${key} = ${shownValue(key, src?.value)} (from ${src?.from ?? 'unknown'}): ${issue.message}`,
    );
  }
  const cfg = parsed.data as Record<string, unknown>;
  // The memory store loses everything it holds on a crash: a write-ahead log would replay only
  // the rows it had not taken yet, at the cost of an fsync per round. So it defaults to queued;
  // set delivery.ack to have the log anyway.
  if (raw.get('delivery.ack')?.from === 'default' && cfg['storage.backend'] === 'memory') cfg['delivery.ack'] = 'queued';
  // One request's rows must fit in the log several times over, or a single large export could
  // fill it and every client would be refused until the store catches up.
  const walMax = cfg['delivery.walMaxBytes'] as number;
  const maxMessage = cfg['receiver.maxMessageBytes'] as number;
  if (cfg['delivery.ack'] === 'durable' && walMax < 4 * maxMessage) {
    const src = raw.get('delivery.walMaxBytes') ?? raw.get('receiver.maxMessageBytes');
    throw new ConfigError(
      `invalid configuration: delivery.walMaxBytes = ${walMax} (from ${src?.from ?? 'default'}) must be at least 4 × receiver.maxMessageBytes (${maxMessage}) with delivery.ack = durable`,
    );
  }
  refuseSharedPorts(cfg, raw);
  refuseOriginsWithoutScheme(cfg, raw);
  refuseAllowedHostsThatAreNoHost(cfg, raw);
  for (const v of Object.values(cfg)) if (Array.isArray(v)) Object.freeze(v);
  return Object.freeze(cfg) as Config;
}

/** The listeners with the option that turns each on (the operations port is always on). */
const LISTENERS = [
  ['receiver.grpc.listen', 'receiver.grpc.enabled'],
  ['receiver.http.listen', 'receiver.http.enabled'],
  ['query.listen', 'query.enabled'],
  ['ops.listen', undefined],
] as const;

/** Names of the loopback addresses: a listener on one takes the port on 127.0.0.1 (and ::1). */
const LOCALHOST = new Set(['localhost', 'localhost.']);
/** A wildcard address takes the port on every address (on Linux, `::` on IPv4 too). */
const WILDCARD = new Set(['0.0.0.0', '::', '']);

/** Whether two listeners' hosts take a port in common: 0.0.0.0 takes IPv4 addresses only, not an IPv6 one. */
function overlap(a: string, b: string): boolean {
  a = canonicalHost(a);
  b = canonicalHost(b);
  if (a === b) return true;
  // localhost is bound as the loopback addresses it names (Node's lookup; grpc-js binds each).
  const named = (h: string): string[] => (LOCALHOST.has(h) ? ['127.0.0.1', '::1'] : [h]);
  if (named(a).some((h) => named(b).includes(h))) return true;
  if (!WILDCARD.has(a) && !WILDCARD.has(b)) return false;
  // An IPv6 address other than `::` (which takes IPv4 too) binds beside 0.0.0.0.
  const v6 = (h: string) => h !== '::' && isIPv6(h) && !h.startsWith('::ffff:');
  return !((a === '0.0.0.0' && v6(b)) || (b === '0.0.0.0' && v6(a)));
}

/**
 * Two of the collector's own listeners on one port: the second would fail to bind with "address
 * already in use", naming neither option, after the store and the write-ahead log were opened.
 */
function refuseSharedPorts(cfg: Record<string, unknown>, raw: Map<string, { value: unknown; from: string }>): void {
  const on = LISTENERS.filter(([, enabled]) => enabled === undefined || cfg[enabled] === true).map(([key]) => {
    const { host, port } = parseListen(cfg[key] as string);
    return { key, host: host.toLowerCase(), port };
  });
  for (let i = 0; i < on.length; i++) {
    for (let j = i + 1; j < on.length; j++) {
      const a = on[i]!;
      const b = on[j]!;
      if (a.port === 0 || a.port !== b.port || !overlap(a.host, b.host)) continue;
      const shown = (k: string) => `${k} = ${JSON.stringify(cfg[k])} (from ${raw.get(k)?.from ?? 'default'})`;
      throw new ConfigError(`invalid configuration: ${shown(a.key)} and ${shown(b.key)} are the same port: give each listener its own`);
    }
  }
}

/**
 * A CORS origin is scheme://host[:port], as browsers send it: an entry without the scheme
 * (`*.example.com`, `example.com`, which the Collector's CORS library matches for a wildcard)
 * would match no browser here, and browser exporters would be refused without a word.
 */
function refuseOriginsWithoutScheme(cfg: Record<string, unknown>, raw: Map<string, { value: unknown; from: string }>): void {
  const key = 'receiver.http.corsAllowedOrigins';
  // '*' allows any origin; 'null' is the origin a file:// page or a sandboxed frame sends.
  const bad = (cfg[key] as string[]).find((o) => o !== '*' && o !== 'null' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(o));
  if (bad === undefined) return;
  throw new ConfigError(`invalid configuration: ${key} entry ${JSON.stringify(bad)} (from ${raw.get(key)?.from ?? 'default'}) has no scheme, so no browser's Origin matches it: write it as a browser sends it, e.g. ${JSON.stringify(`https://${bad.replace(/^\/+/, '')}`)} (* stands for any characters but /), or * for any origin`);
}

/**
 * The allowedHosts options are compared with the Host header's name (its port, brackets and a
 * trailing dot left out, HttpService in src/common/http.ts): an entry written as a URL
 * (`http://proxy`), with a path or a wildcard matched no request, and the proxy it was written
 * for got 403 without a word here.
 */
function refuseAllowedHostsThatAreNoHost(cfg: Record<string, unknown>, raw: Map<string, { value: unknown; from: string }>): void {
  for (const key of ['query.allowedHosts', 'receiver.http.allowedHosts', 'ops.allowedHosts']) {
    // Spaces around an entry (a quoted YAML item) are dropped where it is compared, as here.
    const bad = (cfg[key] as string[]).find((h) => isIP(h.trim()) === 0 && !/^(\[[0-9a-fA-F:.]+\]|[^\s:/\\*?#@[\]]+)(:\d*)?$/.test(h.trim()));
    if (bad === undefined) continue;
    throw new ConfigError(`invalid configuration: ${key} entry ${JSON.stringify(bad)} (from ${raw.get(key)?.from ?? 'default'}) is no host name, so no request's Host matches it: write the name alone, as a client sends it in Host (e.g. ${JSON.stringify(bad.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/[/?#].*$/, '').replace(/:\d*$/, '').replace(/^\*\.?/, '') || 'proxy.example')}), one entry per name`);
  }
}

/** The --help text: every option with its default and environment variable. */
export function helpText(): string {
  const lines = [
    'Usage: tracehouse [start|migrate] [--config file.yaml] [--key=value ...]',
    '',
    'The YAML file is --config, else the file TRACEHOUSE_CONFIG names.',
    'Precedence: flags > TRACEHOUSE_* environment > YAML file > defaults. Byte sizes (…Bytes) accept KiB/MiB/GiB.',
    '',
    'Options:',
  ];
  for (const o of OPTIONS) {
    const def = Array.isArray(o.default) ? o.default.join(',') : String(o.default);
    lines.push(`  --${o.key}=<${o.type.kind === 'enum' ? o.type.values.join('|') : o.type.kind}>`);
    lines.push(`      ${o.help}. Default: ${def === '' ? '""' : def}. Env: ${envName(o.key)}`);
  }
  return lines.join('\n');
}
