// One shard: an @clickhouse/client over HTTP, or over chdb's in-process engine (its Connection
// plugs into createClient). Reads and DDL go through the client the same way for both; only the
// RowBinary insert differs (see insertRowBinary).
import { randomUUID } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseError, ClickHouseLogLevel, createClient, parseError, type ClickHouseClient, type ExecResult } from '@clickhouse/client';
import type { ChdbEndpoint, Endpoint, HttpEndpoint } from './endpoints.ts';
import { quoteString } from './schema.ts';
import { HttpStatusError } from './split.ts';

export interface ShardOptions {
  requestTimeoutMs: number;
  /** Concurrent requests a shard may need (writer in-flight batches plus reads). */
  maxConnections: number;
}

/** A connected shard. */
export interface Shard {
  readonly endpoint: Endpoint;
  readonly client: ClickHouseClient;
  /**
   * INSERT INTO `target` SETTINGS … FORMAT RowBinary with the concatenation of `chunks` as data.
   * `target` is the qualified table with its column list; `settings` are `name = value` items.
   */
  insertRowBinary(target: string, settings: readonly string[], chunks: readonly Uint8Array[], extra?: ExtraColumns): Promise<void>;
  /**
   * Resolves once ClickHouse answers a query (whatever its answer, an error of its own included:
   * that one is thrown with its code). Over HTTP something else may answer instead: a proxy's
   * 502 while the server behind it is not up yet, thrown as an HttpStatusError without a code.
   */
  reach(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Values appended to every row of an insert that the RowBinary data does not carry (the batch's
 * tenant): the data is read through input() / file() with this structure, and `target` lists the
 * extra columns after the data's.
 */
export interface ExtraColumns {
  /** Names and types of the RowBinary data's columns, e.g. "`Timestamp` DateTime64(9), …". */
  structure: string;
  /** SQL literals of the extra columns, e.g. "'acme'"; '' for none (the data converted to the table's types only). */
  values: string;
}

/** Connects one endpoint (chdb is imported only here, and only for chdb:// endpoints). */
export async function connectShard(endpoint: Endpoint, options: ShardOptions): Promise<Shard> {
  return endpoint.kind === 'http' ? connectHttp(endpoint, options) : connectChdb(endpoint, options);
}

function settingsClause(settings: readonly string[]): string {
  return settings.length === 0 ? '' : ` SETTINGS ${settings.join(', ')}`;
}

/** The select list of an insert through input() / file(): the data's columns, then the extra values. */
function selectList(extra: ExtraColumns): string {
  return extra.values === '' ? '*' : `*, ${extra.values}`;
}

function connectHttp(endpoint: HttpEndpoint, options: ShardOptions): Shard {
  const client = createClient({
    url: endpoint.url,
    username: endpoint.username,
    password: endpoint.password,
    application: 'tracehouse',
    request_timeout: options.requestTimeoutMs,
    max_open_connections: options.maxConnections,
    // RowBinary is compact already; gzip would cost main-thread CPU for little.
    compression: { request: false, response: false },
    // Failures come back as WriteResults and are counted; the client need not log them too.
    log: { level: ClickHouseLogLevel.OFF },
  });
  return {
    endpoint,
    client,
    async insertRowBinary(target, settings, chunks, extra) {
      const source = extra ? ` SELECT ${selectList(extra)} FROM input(${quoteString(extra.structure)})` : '';
      // The chunks are streamed as the request body as they are: no concatenation. A failed
      // answer is read here, not by the client, which keeps its text and drops its HTTP status:
      // a proxy's 413 (body too large) must be told from a ClickHouse error or an outage.
      const res = await client.exec({
        query: `INSERT INTO ${target}${settingsClause(settings)}${source} FORMAT RowBinary`,
        values: Readable.from(chunks, { objectMode: false }),
        ignore_error_response: true,
      });
      await succeeded(endpoint, res);
    },
    async reach() {
      await succeeded(endpoint, await client.exec({ query: 'SELECT 1', ignore_error_response: true }));
    },
    close: () => client.close(),
  };
}

/**
 * Reads an answer of exec (ignore_error_response) and throws it as an error unless it is
 * ClickHouse's success. A server that sent its headers (200) before the query failed (progress
 * headers: send_progress_in_http_headers in the user's profile) can tell the failure only in the
 * body: an insert's success has an empty body, SELECT 1's holds "1".
 */
async function succeeded(endpoint: HttpEndpoint, res: ExecResult<Readable>): Promise<void> {
  const status = res.http_status_code ?? 200;
  const body = await text(res.stream);
  const ok = status >= 200 && status < 300 && res.response_headers['x-clickhouse-exception-code'] === undefined;
  if (ok && (body === '' || !(parseError(body) instanceof ClickHouseError))) return;
  throw answerError(endpoint, status, body);
}

/** A response body as text, at most its first 64 KiB (an error page is not kept whole). */
async function text(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    if (size < 65536) parts.push(c as Buffer);
    size += (c as Buffer).byteLength;
  }
  return Buffer.concat(parts).toString('utf8');
}

/**
 * The error of a failed insert's answer: ClickHouse's own (its code kept, as the client gives it),
 * or, from something else on the way (a proxy's HTML page), the status and the page's title.
 */
function answerError(endpoint: HttpEndpoint, status: number, body: string): HttpStatusError {
  const ch = parseError(body);
  if (ch instanceof ClickHouseError) return new HttpStatusError(ch.message, status, Number(ch.code));
  const title = pageTitle(body);
  return new HttpStatusError(`HTTP ${status} from ${endpoint.display}, not from ClickHouse${title === '' ? '' : `: ${title}`}`, status);
}

/** An error page's title (or its text, without the markup, cut to 200 characters): what a proxy's page says, not its HTML. */
export function pageTitle(body: string): string {
  return /<title>([^<]*)<\/title>/i.exec(body)?.[1]?.trim() ?? body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
}

/** The parts of chdb Tracehouse uses (typed here: chdb is optional). */
interface ChdbConnectionModule {
  createChdbConnection(opts: { path: string }): unknown;
}

interface ChdbRootModule {
  /** Resolves once no native operation is outstanding, so another data directory may be opened. */
  drainPending?(): Promise<void>;
}

/** Imports chdb's Connection module, or throws an Error that names the missing package. */
export async function loadChdb(specifier = 'chdb/connection'): Promise<ChdbConnectionModule> {
  // A variable specifier keeps TypeScript and bundlers from requiring the optional package.
  try {
    return (await import(specifier)) as ChdbConnectionModule;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') {
      throw new Error(
        "storage.clickhouse.urls names a chdb:// endpoint (the embedded ClickHouse engine) but the optional package 'chdb' is not installed: run `npm install chdb`",
        { cause: err },
      );
    }
    throw new Error(`could not load the optional package 'chdb' for a chdb:// endpoint: ${e.message}`, { cause: err });
  }
}

/**
 * chdb's connection to a directory; one that will not open (the engine says only 'Failed to create
 * connection for path …') is refused naming the option and, as far as can be told, why: the path
 * is a file (a SQLite file's path given as chdb://), or the directory is held by the one process
 * that may open it at a time (a collector running on it, for an export, an import or a second start).
 */
function openChdb(mod: ChdbConnectionModule, endpoint: ChdbEndpoint): unknown {
  // The engine takes its time zone from TZ as it starts; its day partitions (toDate of a time) are
  // that zone's days, kept in each part: a directory opened in another zone than it was written in
  // has its searches of a time range pass over the parts whose days differ (ClickHouse prunes by
  // the partition's day). A new directory runs in UTC (every time Tracehouse stores and reads is
  // UTC nanoseconds; its days are UTC days, as PostgreSQL's are), noted in it (ZONE_FILE); one
  // written before that note by an earlier build was written in the process's zone, and stays in
  // it, unless the engine cannot load that zone (a POSIX rule such as `<+0530>-5:30`, a zone newer
  // than its tzdata, which the C library and Node take): then UTC, as it cannot do better.
  const noted = notedZone(endpoint.path);
  const open = (zone: string | undefined): unknown => {
    const tz = process.env['TZ'];
    if (zone !== undefined) process.env['TZ'] = zone;
    try {
      return mod.createChdbConnection({ path: endpoint.path });
    } finally {
      if (tz === undefined) delete process.env['TZ'];
      else process.env['TZ'] = tz;
    }
  };
  try {
    let connection: unknown;
    try {
      connection = open(noted);
    } catch (err) {
      if (noted !== undefined) throw err;
      try {
        connection = open('UTC');
      } catch {
        throw err;
      }
    }
    if (noted === 'UTC') noteZone(endpoint.path, noted);
    return connection;
  } catch (err) {
    throw new Error(`storage.clickhouse.urls names ${endpoint.display}: ${(err as Error).message} (${whyChdbWontOpen(endpoint.path)})`, { cause: err });
  }
}

/** The file in a chdb:// directory naming the zone its engine runs in (openChdb). */
const ZONE_FILE = 'tracehouse-timezone';

/**
 * The zone a chdb:// directory's engine runs in: the one noted in it; UTC for a new (or empty)
 * directory; undefined (the process's, as earlier builds ran it) for one written before the note.
 */
function notedZone(path: string): string | undefined {
  try {
    const zone = readFileSync(join(path, ZONE_FILE), 'utf8').trim();
    if (zone !== '') return zone;
  } catch {
    // No note: a new directory, or one of an earlier build.
  }
  let written = false;
  try {
    written = readdirSync(path).length > 0;
  } catch {
    // No directory yet: the engine makes it.
  }
  return written ? undefined : 'UTC';
}

function noteZone(path: string, zone: string): void {
  try {
    if (!existsSync(join(path, ZONE_FILE))) writeFileSync(join(path, ZONE_FILE), `${zone}\n`);
  } catch {
    // Unwritable: the engine wrote there, so this is not expected; the next open finds the
    // directory written and without a note, and runs it in the process's zone.
  }
}

/** Why chdb would not open `path`, as far as the file system tells (openChdb). */
function whyChdbWontOpen(path: string): string {
  try {
    if (!statSync(path).isDirectory()) return `${path} is a file, not a directory`;
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (e) {
    // No directory to hold, or one this process may not write: no collector to stop.
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    return code === 'ENOENT' || code === 'ENOTDIR' ? `${path} cannot be created (${code})` : `${path} cannot be written by this process (${code})`;
  }
  return `a chdb:// directory is opened by one process at a time: stop the collector running on ${path} first`;
}

async function connectChdb(endpoint: ChdbEndpoint, options: ShardOptions): Promise<Shard> {
  const mod = await loadChdb();
  const connection = openChdb(mod, endpoint);
  const client = createClient({
    connection: connection as NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>,
    request_timeout: options.requestTimeoutMs,
    log: { level: ClickHouseLogLevel.OFF },
  });
  // chdb's Connection decodes insert bodies as UTF-8 text, which corrupts RowBinary, and its raw
  // insert accepts text formats only. The engine reads files itself, though: the batch goes to a
  // temporary file and INSERT … FROM INFILE loads it, bytes intact.
  let dir: Promise<string> | undefined;
  /** A new file in the shard's directory, made again when it was removed under the process. */
  const createFile = async (): Promise<{ file: string; fh: FileHandle }> => {
    for (let attempt = 0; ; attempt++) {
      // One directory per shard, made by whichever insert comes first (concurrent ones share it).
      const d = (dir ??= mkdtemp(join(tmpdir(), 'tracehouse-chdb-')).catch((err: unknown) => {
        dir = undefined; // try again with the next batch
        throw err;
      }));
      const file = join(await d, `${randomUUID()}.rowbinary`);
      try {
        return { file, fh: await open(file, 'w') };
      } catch (err) {
        // The directory is gone (a /tmp cleaner after days without writes, an operator clearing
        // /tmp): kept as it was, every later insert of the process would fail the same way.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw err;
        if (dir === d) dir = undefined;
      }
    }
  };
  return {
    endpoint,
    client,
    async insertRowBinary(target, settings, chunks, extra) {
      const { file, fh } = await createFile();
      try {
        try {
          await fh.writev(chunks as Uint8Array[]);
        } finally {
          await fh.close();
        }
        await client.command({
          query: extra
            ? `INSERT INTO ${target}${settingsClause(settings)} SELECT ${selectList(extra)} FROM file(${quoteString(file)}, 'RowBinary', ${quoteString(extra.structure)})`
            : `INSERT INTO ${target} FROM INFILE ${quoteString(file)}${settingsClause(settings)} FORMAT RowBinary`,
        });
      } finally {
        await rm(file, { force: true });
      }
    },
    reach: async () => undefined,
    async close() {
      try {
        await client.close();
        // A closed connection lingers while native work drains; wait, so the process may open
        // another directory later (the engine binds one at a time).
        const root = (await import('chdb' as string)) as ChdbRootModule;
        await root.drainPending?.();
      } finally {
        const d = await dir?.catch(() => undefined);
        if (d !== undefined) await rm(d, { recursive: true, force: true });
      }
    },
  };
}
