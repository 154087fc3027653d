// Renders stored rows as OTLP/JSON: grouped by resource and scope as received, ids in lowercase
// hex, 64-bit integers as decimal strings.
import type { LogRow, ResourceInfo, ScopeInfo, SpanRow } from '../model/rows.ts';
import type { TraceSummary } from '../storage/backend.ts';

function resourceJson(r: ResourceInfo) {
  return { attributes: r.attributes, droppedAttributesCount: r.droppedAttributesCount };
}

function scopeJson(s: ScopeInfo) {
  return { name: s.name, version: s.version, attributes: s.attributes, droppedAttributesCount: s.droppedAttributesCount };
}

/**
 * Groups rows by resource, then scope, keeping first-seen order. With `runs`, only rows that
 * follow one another share an entry: reading the entries' rows in document order then gives the
 * rows' own order (a resource or scope may appear more than once).
 */
function group<T extends { resource: ResourceInfo; scope: ScopeInfo }>(rows: readonly T[], runs = false) {
  type Scope = { scope: ScopeInfo; rows: T[] };
  type Resource = { resource: ResourceInfo; scopes: Scope[]; byScope: Map<string, Scope> };
  const out: Resource[] = [];
  const byResource = new Map<string, Resource>();
  for (const row of rows) {
    const rk = JSON.stringify(row.resource);
    let r = byResource.get(rk);
    if (!r || (runs && r !== out[out.length - 1])) {
      out.push((r = { resource: row.resource, scopes: [], byScope: new Map() }));
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
  return out.map((r) => ({ resource: r.resource, scopes: r.scopes }));
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

/** {"resourceSpans": [...]} for spans (ordered by start time within each scope). */
export function renderTraces(spans: readonly SpanRow[]) {
  const sorted = [...spans].sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : a.startTimeUnixNano > b.startTimeUnixNano ? 1 : 0));
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
