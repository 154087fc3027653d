// Renders stored rows as OTLP/JSON: grouped by resource and scope as received, ids in lowercase
// hex, 64-bit integers as decimal strings.
import type { LogRow, ResourceInfo, ScopeInfo, SpanRow } from '../model/rows.ts';
import type { TraceSummary } from '../storage/backend.ts';
import { byStartThenId } from '../storage/query-helpers.ts';
import { JsonArray, JsonObject, PAUSE } from './json-stream.ts';

function resourceJson(r: ResourceInfo) {
  return { attributes: r.attributes, droppedAttributesCount: r.droppedAttributesCount };
}

function scopeJson(s: ScopeInfo) {
  return { name: s.name, version: s.version, attributes: s.attributes, droppedAttributesCount: s.droppedAttributesCount };
}

type Grouped<T> = { resource: ResourceInfo; scopes: { scope: ScopeInfo; rows: T[] }[] }[];

/** Rows between two PAUSEs of groupInto. */
const GROUP_SLICE = 1000;

/**
 * Groups rows by resource, then scope, keeping first-seen order, into out. With `runs`, only rows
 * that follow one another share an entry: reading the entries' rows in document order then gives
 * the rows' own order (a resource or scope may appear more than once). Yields PAUSE every
 * GROUP_SLICE rows, for a writer to give the event loop back (sendJsonSliced).
 */
function* groupInto<T extends { resource: ResourceInfo; scope: ScopeInfo }>(rows: readonly T[], runs: boolean, out: Grouped<T>): Generator<typeof PAUSE> {
  type Scope = { scope: ScopeInfo; rows: T[] };
  type Resource = { resource: ResourceInfo; scopes: Scope[]; byScope: Map<string, Scope> };
  const all: Resource[] = [];
  const byResource = new Map<string, Resource>();
  for (let i = 0; i < rows.length; i++) {
    if (i > 0 && i % GROUP_SLICE === 0) yield PAUSE;
    const row = rows[i]!;
    const rk = JSON.stringify(row.resource);
    let r = byResource.get(rk);
    if (!r || (runs && r !== all[all.length - 1])) {
      all.push((r = { resource: row.resource, scopes: [], byScope: new Map() }));
      byResource.set(rk, r);
    }
    const sk = JSON.stringify(row.scope);
    let sc = r.byScope.get(sk);
    if (!sc || (runs && sc !== r.scopes[r.scopes.length - 1])) {
      r.scopes.push((sc = { scope: row.scope, rows: [] }));
      r.byScope.set(sk, sc);
    }
    sc.rows.push(row);
  }
  for (const r of all) out.push({ resource: r.resource, scopes: r.scopes });
}

function group<T extends { resource: ResourceInfo; scope: ScopeInfo }>(rows: readonly T[], runs = false): Grouped<T> {
  const out: Grouped<T> = [];
  const grouping = groupInto(rows, runs, out);
  while (grouping.next().done !== true);
  return out;
}

function* mapped<T>(rows: readonly T[], f: (row: T) => unknown): Generator<unknown> {
  for (const row of rows) yield f(row);
}

/**
 * renderTraces(spans).resourceSpans or renderLogs(logs, inOrder).resourceLogs as the writer
 * makes it (sendJsonSliced): grouped in slices, each span or record made as it is written; the
 * same JSON text.
 */
function slicedResources<T extends { resource: ResourceInfo; scope: ScopeInfo }>(rows: () => readonly T[], runs: boolean, scopesKey: string, rowsKey: string, rowJson: (row: T) => unknown): JsonArray {
  return new JsonArray((function* () {
    const groups: Grouped<T> = [];
    yield* groupInto(rows(), runs, groups);
    for (const r of groups) {
      yield new JsonObject([
        ['resource', resourceJson(r.resource)],
        ['schemaUrl', r.resource.schemaUrl],
        [scopesKey, new JsonArray(r.scopes.map((s) => new JsonObject([['scope', scopeJson(s.scope)], ['schemaUrl', s.scope.schemaUrl], [rowsKey, new JsonArray(mapped(s.rows, rowJson))]])))],
      ]);
    }
  })());
}

function spanJson(s: SpanRow) {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    traceState: s.traceState,
    parentSpanId: s.parentSpanId,
    flags: s.flags,
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: s.startTimeUnixNano.toString(),
    endTimeUnixNano: s.endTimeUnixNano.toString(),
    attributes: s.attributes,
    droppedAttributesCount: s.droppedAttributesCount,
    events: s.events.map((e) => ({ timeUnixNano: e.timeUnixNano.toString(), name: e.name, attributes: e.attributes, droppedAttributesCount: e.droppedAttributesCount })),
    droppedEventsCount: s.droppedEventsCount,
    links: s.links,
    droppedLinksCount: s.droppedLinksCount,
    status: { code: s.statusCode, message: s.statusMessage },
  };
}

/** By start, then span id (as the Jaeger API orders them): one answer whatever order the store handed the spans over in. */
const byStart = (spans: readonly SpanRow[]): SpanRow[] => [...spans].sort(byStartThenId);

/** renderTraces(spans).resourceSpans, made as it is written (sendJsonSliced). */
export function slicedResourceSpans(spans: readonly SpanRow[]): JsonArray {
  return slicedResources(() => byStart(spans), false, 'scopeSpans', 'spans', spanJson);
}

/** renderLogs(logs, inOrder).resourceLogs, made as it is written (sendJsonSliced). */
export function slicedResourceLogs(logs: readonly LogRow[], inOrder = false): JsonArray {
  return slicedResources(() => logs, inOrder, 'scopeLogs', 'logRecords', logJson);
}

/** {"resourceSpans": [...]} for spans (ordered by start time within each scope). */
export function renderTraces(spans: readonly SpanRow[]) {
  const sorted = byStart(spans);
  return {
    resourceSpans: group(sorted).map((r) => ({
      resource: resourceJson(r.resource),
      schemaUrl: r.resource.schemaUrl,
      scopeSpans: r.scopes.map((s) => ({ scope: scopeJson(s.scope), schemaUrl: s.scope.schemaUrl, spans: s.rows.map(spanJson) })),
    })),
  };
}

function logJson(l: LogRow) {
  return {
    timeUnixNano: l.timeUnixNano.toString(),
    observedTimeUnixNano: l.observedTimeUnixNano.toString(),
    severityNumber: l.severityNumber,
    severityText: l.severityText,
    body: l.body,
    attributes: l.attributes,
    droppedAttributesCount: l.droppedAttributesCount,
    flags: l.flags,
    traceId: l.traceId,
    spanId: l.spanId,
    eventName: l.eventName,
  };
}

/**
 * {"resourceLogs": [...]}. With `inOrder` (a search's answer, newest first), the records read in
 * document order keep the given order: records of another resource or scope in between start a
 * new entry rather than joining the first one's.
 */
export function renderLogs(logs: readonly LogRow[], inOrder = false) {
  return {
    resourceLogs: group(logs, inOrder).map((r) => ({
      resource: resourceJson(r.resource),
      schemaUrl: r.resource.schemaUrl,
      scopeLogs: r.scopes.map((s) => ({ scope: scopeJson(s.scope), schemaUrl: s.scope.schemaUrl, logRecords: s.rows.map(logJson) })),
    })),
  };
}

/** Trace summaries with 64-bit values as decimal strings. */
export function renderSummaries(traces: readonly TraceSummary[]) {
  return {
    traces: traces.map((t) => ({
      traceId: t.traceId,
      rootServiceName: t.rootServiceName,
      rootSpanName: t.rootSpanName,
      startTimeUnixNano: t.startTimeUnixNano.toString(),
      durationNano: t.durationNano.toString(),
      spanCount: t.spanCount,
      hasError: t.hasError,
    })),
  };
}
