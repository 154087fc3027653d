// storage.clickhouse.urls → one endpoint per shard.
//
//   http(s)://[user:password@]host:port[/database][?database=name]
//   chdb:///absolute/dir[?database=name]      the embedded engine (package chdb), data in dir
//   chdb://./relative/dir[?database=name]
//
// The database defaults to storage.clickhouse.database. libchdb binds one data directory per
// process, so every chdb:// URL must name the same directory; several embedded shards are
// separate databases of that one engine (chdb:///data/ch?database=shard0, …?database=shard1).

export interface HttpEndpoint {
  kind: 'http';
  /** Origin only (http://host:port); credentials and database are taken out. */
  url: string;
  username: string;
  password: string;
  database: string;
  /** The URL as configured, password hidden (for messages). */
  display: string;
}

export interface ChdbEndpoint {
  kind: 'chdb';
  path: string;
  database: string;
  display: string;
}

export type Endpoint = HttpEndpoint | ChdbEndpoint;

export interface EndpointDefaults {
  database: string;
  username: string;
  password: string;
}

/**
 * A URL as written, its user:password@ password replaced by ***: whatever its characters (URL
 * gives the password percent-encoded, so it is not found in the text as written by that), and
 * whether or not the URL parses at all (its errors quote it).
 */
export function hidePassword(raw: string): string {
  // In a URL that parses, the password ends at the @ before the host (no / ? or # in it). One
  // that holds / ? or # ends the host part early, and the URL is refused, quoted: up to the last @.
  if (URL.canParse(raw)) return raw.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#:]*:)[^/?#]*@/, '$1***@');
  return hideToLastAt(raw);
}

/** A URL whose password was written unescaped, everything from the user's colon to its last @ replaced by ***. */
function hideToLastAt(raw: string): string {
  return raw.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#:@]*:)\S*@/, '$1***@');
}

/** Parses and checks storage.clickhouse.urls; throws an Error naming the bad URL (its password hidden). */
export function parseEndpoints(urls: readonly string[], defaults: EndpointDefaults): Endpoint[] {
  if (urls.length === 0) throw new Error('storage.clickhouse.urls is empty: give at least one endpoint');
  const out = urls.map((raw) => parseEndpoint(raw, defaults));
  const seen = new Map<string, string>();
  for (const e of out) {
    const key = e.kind === 'http' ? `${e.url}|${e.database}` : `chdb:${e.path}|${e.database}`;
    const prev = seen.get(key);
    if (prev !== undefined) {
      throw new Error(
        `storage.clickhouse.urls: ${prev} and ${e.display} are the same shard (same place and database ${e.database}); give each shard its own ?database=`,
      );
    }
    seen.set(key, e.display);
  }
  const dirs = new Set(out.flatMap((e) => (e.kind === 'chdb' ? [e.path] : [])));
  if (dirs.size > 1) {
    throw new Error(
      `storage.clickhouse.urls: chdb:// URLs name different directories (${[...dirs].join(', ')}); the embedded engine binds one directory per process, so use one directory and a ?database= per shard`,
    );
  }
  return out;
}

/**
 * database= is the one parameter read: another (a mistyped ?databse=prod, or ?user= and
 * ?password=, which ClickHouse's HTTP interface reads) would be ignored, the default database or
 * user taken in silence. Named, not quoted: its value may be a password.
 */
function refuseOtherParameters(u: URL, raw: string): void {
  const names = [...u.searchParams.keys()];
  const unknown = names.find((k) => k !== 'database') ?? (names.length > 1 ? 'database' : undefined);
  if (unknown === undefined) return;
  const at = hidePassword(raw).replace(/[?#][\s\S]*$/, '');
  throw new Error(`storage.clickhouse.urls: ${JSON.stringify(at)}: ${unknown === 'database' ? 'database= given more than once' : `unknown parameter ${JSON.stringify(unknown.slice(0, 40))}`} (the one parameter read is ?database=name)`);
}

function parseEndpoint(raw: string, defaults: EndpointDefaults): Endpoint {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`storage.clickhouse.urls: ${JSON.stringify(hidePassword(raw))} is not a URL (expected http(s)://host:port or chdb:///dir)`);
  }
  const dbParam = u.searchParams.get('database');
  if (u.protocol === 'chdb:') {
    const path = decodeURIComponent(u.host + u.pathname);
    if (path === '' || path === '/') throw new Error(`storage.clickhouse.urls: ${raw} names no directory (expected chdb:///path/to/dir)`);
    refuseOtherParameters(u, raw);
    return { kind: 'chdb', path, database: dbParam ?? defaults.database, display: raw };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new Error(`storage.clickhouse.urls: ${JSON.stringify(hidePassword(raw))}: unsupported scheme ${u.protocol} (expected http, https or chdb)`);
  }
  // user:pass@ whose password starts with / ? or # (or digits and one of them) parses as the host
  // "user", a port and a path, query or fragment holding "…@host": a password written unescaped.
  // Refused as not a URL, quoted up to its last @, never taken as a host and a database name.
  if (u.username === '' && (u.pathname + u.search + u.hash).includes('@') && /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#:@]*:\d*[/?#]/.test(raw)) {
    throw new Error(`storage.clickhouse.urls: ${JSON.stringify(hideToLastAt(raw))} is not a URL (a password holding / ? # or @ must be percent-encoded)`);
  }
  refuseOtherParameters(u, raw);
  const pathDb = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, ''));
  const username = u.username !== '' ? decodeURIComponent(u.username) : defaults.username;
  const password = u.password !== '' ? decodeURIComponent(u.password) : defaults.password;
  const display = hidePassword(raw);
  return {
    kind: 'http',
    url: `${u.protocol}//${u.host}`,
    username,
    password,
    database: dbParam ?? (pathDb !== '' ? pathDb : defaults.database),
    display,
  };
}
