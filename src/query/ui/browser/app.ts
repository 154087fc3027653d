// The Tracehouse web UI, run in the browser: search (/ and /search), one trace's waterfall
// (/trace/{id}) and logs (/logs). It reads this server's read API only (/api/… and /v1/…).
// Plain DOM, no framework: the pages are few and small, and the one heavy view (a waterfall of
// 10,000+ spans) is virtualised by hand — only the rows in view exist in the DOM.
//
// Served with its types stripped (see ../index.ts), so it uses erasable TypeScript only.

type AnyValue = {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number | string;
  bytesValue?: string;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
};
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface OtlpEvent {
  timeUnixNano: string;
  name: string;
  attributes: KeyValue[];
  droppedAttributesCount?: number;
}
interface OtlpLink {
  traceId: string;
  spanId: string;
  traceState?: string;
  flags?: number;
  attributes: KeyValue[];
  droppedAttributesCount?: number;
}
/** An instrumentation scope as the read API returns it. */
interface OtlpScope {
  name: string;
  version: string;
  attributes?: KeyValue[];
  droppedAttributesCount?: number;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  /** W3C trace state (vendor entries) and trace flags with OTLP's remote-parent bits, as sent. */
  traceState?: string;
  flags?: number;
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: KeyValue[];
  events: OtlpEvent[];
  links: OtlpLink[];
  /** What the sender left out (SDK limits): counted in the span details, as the Jaeger API's warnings name them. */
  droppedAttributesCount?: number;
  droppedEventsCount?: number;
  droppedLinksCount?: number;
  status: { code: number; message: string };
}
interface OtlpTrace {
  resourceSpans: { resource: { attributes: KeyValue[]; droppedAttributesCount?: number }; scopeSpans: { scope: OtlpScope; spans: OtlpSpan[] }[] }[];
  /** Set when the read was cut (query.maxSpansPerTrace): what the page shows is not the whole trace. */
  warnings?: string[];
}
interface Summary {
  traceId: string;
  rootServiceName: string;
  rootSpanName: string;
  startTimeUnixNano: string;
  durationNano: string;
  spanCount: number;
  hasError: boolean;
}
interface OtlpLog {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  body: AnyValue;
  attributes: KeyValue[];
  traceId: string;
  spanId: string;
  /** Set on an event record (OTel Events), which often has no body. */
  eventName?: string;
}
interface LogsDoc {
  resourceLogs: { resource: { attributes: KeyValue[] }; scopeLogs: { logRecords: OtlpLog[] }[] }[];
  /** Set when the search was cut to the read API's byte bound: older matching records were left out. */
  warnings?: string[];
}
interface UiSpan {
  span: OtlpSpan;
  service: string;
  resource: KeyValue[];
  /** Attributes the sender dropped from the resource. */
  resourceDropped: number;
  scope: OtlpScope;
  /** Nanoseconds from the trace's first start. */
  offset: number;
  duration: number;
  depth: number;
  children: UiSpan[];
  /** The span it is drawn under; none for a root. */
  parent?: UiSpan;
  collapsed: boolean;
  orphan: boolean;
  /** Its parent is stored, but the parent ids form a cycle: cut there and shown as a root. */
  inCycle?: boolean;
}

const ROW_HEIGHT = 24;
const OVERSCAN_ROWS = 12;
const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
const LOOKBACKS: [string, string][] = [
  ['15m', 'Last 15 minutes'],
  ['1h', 'Last hour'],
  ['6h', 'Last 6 hours'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['all', 'All time'],
  ['custom', 'From … to …'],
];
const SEVERITIES: [string, string][] = [
  ['', 'Any severity'],
  ['5', 'DEBUG and above'],
  ['9', 'INFO and above'],
  ['13', 'WARN and above'],
  ['17', 'ERROR and above'],
  ['21', 'FATAL'],
];
const app = document.getElementById('app') as HTMLElement;
const maxLimit = Number(document.querySelector('meta[name="tracehouse-max-limit"]')?.getAttribute('content') ?? '1000') || 1000;

// ---------------------------------------------------------------- helpers

type Child = Node | string | null | undefined | false;

/** Creates an element with attributes (class, href, data-…) and children; text is never parsed as HTML. */
function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

// With auth.tokensFile set, every data call needs a read token. The page asks for it once, on the
// first 401, and keeps it for this tab only (sessionStorage): never in a cookie, so no other site
// can make the browser send it.
const TOKEN_KEY = 'tracehouse.readToken';

/** What fetch can put in a header and the server reads as a token: no spaces, ISO-8859-1 only. */
const TOKEN_CHARS = /^[\x21-\x7e\xa0-\xff]+$/;

async function fetchJson(path: string): Promise<Response> {
  let token = sessionStorage.getItem(TOKEN_KEY);
  // A token fetch cannot send would make every call throw before it leaves, and a reload would
  // not ask again: forgotten, so the 401 that follows asks for another.
  if (token !== null && !TOKEN_CHARS.test(token)) {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
  }
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  try {
    return await fetch(path, { headers });
  } catch (e) {
    // fetch fails only when no answer came at all: the collector stopped or restarting, the network
    // or a proxy down. The browser's own words ("Failed to fetch") said none of that.
    throw new Error(`No answer from Tracehouse at ${location.host}: it may be stopped or restarting, or the network between is down. Try again in a moment. (${(e as Error).message})`);
  }
}

/** A read API answer that was not 2xx: its status kept, so a page can tell a missing token from a failing store. */
class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function getJson<T>(path: string): Promise<T> {
  let res = await fetchJson(path);
  // Asked again while the answer says the token is missing, unknown, or (403 to a token of ours)
  // lacks the read scope: kept, such a token would lock the tab out. Cancelling stops asking.
  for (let asked = 0; asked < 3 && (res.status === 401 || (res.status === 403 && sessionStorage.getItem(TOKEN_KEY))); asked++) {
    const token = window.prompt(res.status === 403 ? 'That token does not have the read scope. Read token:' : sessionStorage.getItem(TOKEN_KEY) ? 'That token was not accepted. Read token:' : 'This Tracehouse needs a read token:');
    if (!token) break;
    // A token copied with the header's scheme, or the whole header (from a curl line, say), is the token after it.
    sessionStorage.setItem(TOKEN_KEY, token.trim().replace(/^(authorization:\s*)?bearer\s+/i, ''));
    res = await fetchJson(path);
  }
  const text = await res.text();
  if (!res.ok) {
    let msg = text;
    try {
      const j = JSON.parse(text) as { error?: string; errors?: { msg: string }[] };
      msg = j.error ?? j.errors?.[0]?.msg ?? text;
    } catch {
      // Not JSON: show the text as it came.
    }
    // The token's prompt was dismissed: the API's words name a header a browser user cannot set.
    if (res.status === 401 || (res.status === 403 && sessionStorage.getItem(TOKEN_KEY))) {
      throw new HttpError(res.status, `${res.status}: ${msg}. This Tracehouse needs a read token (one of auth.tokensFile's with the read scope): reload the page to enter one.`);
    }
    throw new HttpError(res.status, `${res.status}: ${msg}`);
  }
  return JSON.parse(text) as T;
}

/**
 * A value as JSON text, its types kept: an int64 (a decimal string in OTLP/JSON) and a double
 * (NaN and the infinities strings too) bare, strings and bytes quoted.
 */
function anyText(v: AnyValue | undefined): string {
  if (!v) return 'null';
  if (v.stringValue !== undefined) return JSON.stringify(v.stringValue);
  if (v.boolValue !== undefined) return String(v.boolValue);
  if (v.intValue !== undefined) return String(v.intValue);
  if (v.doubleValue !== undefined) return String(v.doubleValue);
  if (v.bytesValue !== undefined) return JSON.stringify(v.bytesValue);
  if (v.arrayValue) return `[${(v.arrayValue.values ?? []).map(anyText).join(',')}]`;
  if (v.kvlistValue) return `{${(v.kvlistValue.values ?? []).map((kv) => `${JSON.stringify(kv.key)}:${anyText(kv.value)}`).join(',')}}`;
  return 'null';
}

/** A value as a user reads it: strings bare, the rest as JSON. */
function valueText(v: AnyValue | undefined): string {
  if (v?.stringValue !== undefined) return v.stringValue;
  return anyText(v);
}

function attr(kvs: KeyValue[], key: string): string | undefined {
  const kv = kvs.find((a) => a.key === key);
  return kv ? valueText(kv.value) : undefined;
}

function fmtDuration(ns: number): string {
  if (ns < 0) return `-${fmtDuration(-ns)}`;
  if (ns < 1_000) return `${ns} ns`;
  // The unit is chosen after rounding to two decimals: 999,999 µs reads 1.00 s, not 1000.00 ms.
  if (ns < 999_995) return `${(ns / 1_000).toFixed(2)} µs`;
  if (ns < 999_995_000) return `${(ns / 1_000_000).toFixed(2)} ms`;
  if (ns < 59_995_000_000) return `${(ns / 1_000_000_000).toFixed(2)} s`;
  // Past a minute, in its two largest units: a trace of four days reads 4d 0h, not 345600.00 s.
  const secs = Math.round(ns / 1_000_000_000);
  const [d, hr, min, sec] = [Math.floor(secs / 86_400), Math.floor((secs % 86_400) / 3_600), Math.floor((secs % 3_600) / 60), secs % 60];
  return d > 0 ? `${d}d ${hr}h` : hr > 0 ? `${hr}h ${min}m` : `${min}m ${sec}s`;
}

/** A time from a span's start, signed: an event of a skewed clock can come before it. */
function fmtOffset(ns: number): string {
  return ns < 0 ? fmtDuration(ns) : `+${fmtDuration(ns)}`;
}

/**
 * A span's or link's flags as read: the W3C trace flags' sampled bit (0x01), and whether the
 * span's parent (`whose`: 'parent '; a link's: the linked span, '') was remote, which OTLP says in
 * bit 0x200 when bit 0x100 is set.
 */
function flagsText(flags: number, whose: string): string {
  const out = [flags & 0x01 ? 'sampled' : 'not sampled'];
  if (flags & 0x100) out.push(`${whose}${flags & 0x200 ? 'remote' : 'local'}`);
  return `${out.join(', ')} (0x${flags.toString(16).padStart(2, '0')})`;
}

/**
 * An RFC 3339 time of unix nanoseconds, every digit kept, for the read API's start and end: as a
 * number, a time before 2000 (a span whose clock said 1970) is refused as seconds given by mistake.
 */
function rfc3339(unixNano: string): string {
  const ns = BigInt(unixNano);
  const s = new Date(Number(ns / 1_000_000_000n) * 1000).toISOString().slice(0, 19);
  return `${s}.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`;
}

function fmtTime(unixNano: string): string {
  const ms = Number(BigInt(unixNano) / 1_000_000n);
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

/** A stable colour per service name (hue from a string hash). */
function serviceHue(service: string): string {
  let x = 2166136261;
  for (let i = 0; i < service.length; i++) x = Math.imul(x ^ service.charCodeAt(i), 16777619);
  return String((x >>> 0) % 360);
}

function lookbackNs(v: string): bigint | undefined {
  const m = /^(\d+)([mhd])$/.exec(v);
  if (!m) return undefined;
  const unit = m[2] === 'm' ? 60n : m[2] === 'h' ? 3600n : 86400n;
  return BigInt(m[1]!) * unit * 1_000_000_000n;
}

/** The lookback a page searches: its link's when lookbackNs reads it (or all, or custom), else the 1h default. */
function lookbackOf(params: URLSearchParams): string {
  const asked = params.get('lookback') ?? '1h';
  return asked === 'all' || asked === 'custom' || lookbackNs(asked) !== undefined ? asked : '1h';
}

const LOCAL_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?$/;
const ZONED_TIME = /^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d)$/;

/**
 * A bound of a custom range as the read API takes it: the form's date and time (read as UTC, as
 * the pages show times), an RFC 3339 time, or digits as a Jaeger UI link writes its start and end
 * (microseconds, with lookback=custom); undefined for anything else.
 */
function rangeBound(v: string): string | undefined {
  if (/^\d{1,17}$/.test(v)) return String(BigInt(v) * 1000n);
  if (LOCAL_TIME.test(v)) return v.length === 16 ? `${v}:00Z` : `${v}Z`;
  return ZONED_TIME.test(v) ? v : undefined;
}

/** Milliseconds since 1970 of a bound rangeBound gave (nanoseconds or RFC 3339); NaN for a date that does not exist. */
function boundMs(bound: string): number {
  return /^\d+$/.test(bound) ? Number(BigInt(bound) / 1_000_000n) : Date.parse(bound);
}

/** A custom range's bound as the form's date-and-time field shows it (UTC, to the second); '' when it reads as none. */
function rangeFieldValue(v: string | null): string {
  const bound = rangeBound(v?.trim() ?? '');
  if (bound === undefined) return '';
  const ms = boundMs(bound);
  return Number.isNaN(ms) ? '' : new Date(ms).toISOString().slice(0, 19);
}

/**
 * The window a search or logs page reads (start, end for the read API): the last lookback up to
 * now, or a custom range's bounds (either may be left open); an Error naming a bound it cannot read.
 */
function windowOf(params: URLSearchParams): { start?: string; end?: string } | Error {
  const lookback = lookbackOf(params);
  if (lookback !== 'custom') {
    const back = lookbackNs(lookback);
    return back === undefined ? {} : { start: String(BigInt(Date.now()) * 1_000_000n - back) };
  }
  const out: { start?: string; end?: string } = {};
  for (const [k, label] of [['start', 'From'], ['end', 'To']] as const) {
    const v = params.get(k)?.trim();
    if (!v) continue;
    const bound = rangeBound(v);
    if (bound === undefined) return new Error(`${label} '${v}': expected a date and time in UTC, as 2026-12-08T14:30:00`);
    out[k] = bound;
  }
  // Said in the form's words: the read API's own answer names its parameters (start, end).
  if (out.start && out.end && boundMs(out.start) > boundMs(out.end)) return new Error(`From '${params.get('start')?.trim()}' is after To '${params.get('end')?.trim()}'`);
  return out;
}

/**
 * The time-range control, showing the lookback searched even when its list lacks it (a link's
 * 2h), and a custom range's From and To (UTC), shown and sent only when it is chosen.
 */
function timeRangeFields(params: URLSearchParams): HTMLElement[] {
  const value = lookbackOf(params);
  const options = LOOKBACKS.some(([v]) => v === value) ? LOOKBACKS : [...LOOKBACKS, [value, `Last ${value}`] as [string, string]];
  const lookback = select('lookback', options, value, 'Time range');
  const bounds = (['start', 'end'] as const).map((k) => field(k === 'start' ? 'From (UTC)' : 'To (UTC)', input(k, value === 'custom' ? rangeFieldValue(params.get(k)) : '', { type: 'datetime-local', step: '1' })));
  const show = (): void => {
    for (const f of bounds) {
      f.hidden = lookback.value !== 'custom';
      (f.querySelector('input') as HTMLInputElement).disabled = f.hidden;
    }
  };
  lookback.addEventListener('change', show);
  show();
  return [field('Time range', lookback), ...bounds];
}

/** An OTLP severity number's short name (OTel's data model: 9 INFO, 10 INFO2, 17 ERROR); '' for 0, unspecified. */
function severityName(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > 24) return n === 0 ? '' : String(n);
  const step = (n - 1) % 4;
  return `${['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'][Math.floor((n - 1) / 4)]}${step > 0 ? step + 1 : ''}`;
}

/** The severity control, showing the severity searched even when its list lacks it (a link's 1, TRACE and above). */
function severitySelect(params: URLSearchParams): HTMLSelectElement {
  const value = params.get('minSeverity') ?? '';
  if (value === '' || SEVERITIES.some(([v]) => v === value)) return select('minSeverity', SEVERITIES, value, 'Severity');
  const n = Number(value);
  const label = /^\d+$/.test(value) && n >= 1 && n <= 24 ? `${severityName(n)} and above` : `Severity ${value}`;
  return select('minSeverity', [...SEVERITIES, [value, label]], value, 'Severity');
}

/**
 * Adds names to a list and selects wanted, listed too when the names lack it: a link's service or
 * operation is searched even when none of its spans is stored (any more), so the form shows the
 * filter that found nothing and submitting it again keeps it.
 */
function offer(list: HTMLSelectElement, names: readonly string[], wanted: string): void {
  for (const n of new Set([...names, ...(wanted ? [wanted] : [])])) list.append(h('option', { value: n }, n));
  list.value = wanted;
}

function select(name: string, options: [string, string][], value: string, label: string): HTMLSelectElement {
  const s = h('select', { name, 'aria-label': label }) as HTMLSelectElement;
  for (const [v, text] of options) s.append(h('option', { value: v }, text));
  s.value = options.some(([v]) => v === value) ? value : (options[0]?.[0] ?? '');
  return s;
}

function field(label: string, control: HTMLElement): HTMLElement {
  return h('label', { class: 'field' }, h('span', {}, label), control);
}

function input(name: string, value: string, attrs: Record<string, string> = {}): HTMLInputElement {
  const el = h('input', { name, ...attrs }) as HTMLInputElement;
  el.value = value;
  return el;
}

function showError(where: HTMLElement, err: unknown): void {
  where.replaceChildren(h('p', { class: 'error', role: 'alert' }, (err as Error).message));
}

/** A section's heading with its count, and what the sender dropped (an SDK's limits) beside it. */
function counted(title: string, n: number, dropped: number | undefined): string {
  return `${title} (${n}${dropped ? `, ${dropped} dropped by the sender` : ''})`;
}

/** A line saying how many attributes the sender dropped from an event, link or resource; nothing when none. */
function droppedNote(dropped: number | undefined): HTMLElement | null {
  return dropped ? h('p', { class: 'muted' }, `${dropped} attribute${dropped === 1 ? '' : 's'} dropped by the sender`) : null;
}

/**
 * How many entries a list of the span details draws at first, and how many more each "Show more"
 * draws: above the SDKs' default limit of 128, so a span from an SDK shows whole. OTLP/JSON has no
 * such limit, and a span of 20,000 attributes and 20,000 events, drawn whole, froze the tab for
 * seconds before its details showed.
 */
const DETAILS_STEP = 200;

/**
 * How many attribute rows the events (or links) one step of their list draws share: each list
 * capped at DETAILS_STEP on its own still drew 200 events × 200 attributes, 40,000 rows. The first
 * events draw theirs (a span's few events show whole); those past the budget draw fewer or none,
 * each saying how many it has not shown, with the same buttons to draw them. The pane opens with at
 * most 2,000 rows: five lists of DETAILS_STEP and two of these budgets.
 */
const NESTED_BUDGET = 500;

/** Rows a step of the events or links list has left for their attributes. */
interface Budget { left: number }

/**
 * list with the first DETAILS_STEP items drawn into it (fewer when a nested list's budget has fewer
 * rows left, which it then spends), followed by a line saying how many more there are, with buttons
 * that draw DETAILS_STEP more or the rest: nothing is left out unsaid. Each step hands its items a
 * budget of NESTED_BUDGET rows for their own lists ("Show all" one for each DETAILS_STEP items it
 * draws: otherwise the items past the first budget's each showed "1 attribute not shown"). No
 * items: "none".
 */
function capped<T>(list: HTMLElement, items: readonly T[], draw: (item: T, nested: Budget) => HTMLElement, noun: 'attribute' | 'event' | 'link', budget?: Budget): Node {
  if (items.length === 0) return h('p', { class: 'muted' }, 'none');
  const more = h('p', { class: 'more muted' });
  let shown = 0;
  const drawTo = (n: number): void => {
    const end = Math.min(items.length, n);
    // "Show all" draws as many steps at once, each with its budget, as clicking "Show more" would.
    const nested: Budget = { left: NESTED_BUDGET * Math.ceil((end - shown) / DETAILS_STEP) };
    list.append(...items.slice(shown, end).map((item) => draw(item, nested)));
    shown = end;
    const left = items.length - shown;
    if (left === 0) return more.remove();
    // None drawn yet (a nested list past its budget): "200 attributes not shown. Show 200".
    const moreWord = shown === 0 ? '' : ' more';
    const step = h('button', { type: 'button' }, `Show ${Math.min(DETAILS_STEP, left)}${moreWord}`);
    step.addEventListener('click', () => drawTo(shown + DETAILS_STEP));
    // A second button only when one step leaves some undrawn.
    const rest = left > DETAILS_STEP ? h('button', { type: 'button' }, `Show all ${left}`) : null;
    rest?.addEventListener('click', () => drawTo(items.length));
    more.replaceChildren(`${left}${moreWord} ${noun}${left === 1 ? '' : 's'} not shown. `, step, ...(rest ? [' ', rest] : []));
  };
  drawTo(budget ? Math.min(DETAILS_STEP, budget.left) : DETAILS_STEP);
  if (budget) budget.left -= shown;
  const out = document.createDocumentFragment();
  out.append(list);
  if (shown < items.length) out.append(more);
  return out;
}

/** budget: an event's or link's attributes, drawing their first rows from their step's budget. */
function kvTable(kvs: KeyValue[], budget?: Budget): Node {
  return capped(h('table', { class: 'kv' }), kvs, (kv) => h('tr', {}, h('th', {}, kv.key), h('td', {}, valueText(kv.value))), 'attribute', budget);
}

// ---------------------------------------------------------------- search

/** A text cut to n characters for a title, '…' marking the cut. */
function clipped(v: string, n: number): string {
  return v.length > n ? v.slice(0, n) + '…' : v;
}

/**
 * A search or logs page's title: its kind and what it asks for (each value cut to 60 characters),
 * so tabs and the history menu tell one search from another.
 */
function filtersTitle(kind: string, values: readonly (string | null | undefined)[]): string {
  const asked = values.map((v) => v?.trim() ?? '').filter((v) => v !== '');
  const cut = asked.map((v) => clipped(v, 60));
  return `${kind}${cut.length ? ': ' + cut.join(' · ') : ''} · Tracehouse`;
}

async function searchPage(params: URLSearchParams): Promise<void> {
  document.title = filtersTitle('Search traces', [params.get('service'), params.get('name'), params.get('tags')]);
  const service = select('service', [['', 'All services']], '', 'Service');
  const operation = select('name', [['', 'All operations']], '', 'Operation');
  const form = h(
    'form',
    { class: 'filters', action: '/search', method: 'get' },
    field('Service', service),
    field('Operation', operation),
    field('Tags', input('tags', params.get('tags') ?? '', { placeholder: 'http.status_code=500 error=true' })),
    field('Min duration (ms)', input('minDurationMs', params.get('minDurationMs') ?? '', { inputmode: 'decimal', size: '6' })),
    field('Max duration (ms)', input('maxDurationMs', params.get('maxDurationMs') ?? '', { inputmode: 'decimal', size: '6' })),
    ...timeRangeFields(params),
    field('Limit', input('limit', params.get('limit') ?? '20', { inputmode: 'numeric', size: '4' })),
    h('button', { type: 'submit' }, 'Find traces'),
  );
  // A form's own GET turns each line break of a value into CRLF: a service or span name picked
  // from the lists goes into the link as stored, so a multi-line name (an SQL statement) matches.
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form as HTMLFormElement)) q.append(k, String(v));
    location.assign(`/search?${q}`);
  });
  const results = h('section', { class: 'results', 'aria-live': 'polite' });
  app.replaceChildren(h('h1', {}, 'Traces'), form, results);

  // Only the last service chosen fills the list: an earlier answer (or failure) that comes back late is dropped.
  let opsAsked = 0;
  const loadOperations = async (svc: string, wanted: string) => {
    const asked = ++opsAsked;
    operation.replaceChildren(h('option', { value: '' }, 'All operations'));
    // A link's operation searched across every service: shown as its filter.
    if (svc === '') return offer(operation, [], wanted);
    let ops: { data: string[] };
    try {
      ops = await getJson<{ data: string[] }>(`/api/services/${encodeURIComponent(svc)}/operations`);
    } catch (e) {
      // A late failure for a service no longer picked is dropped like a late answer.
      if (asked !== opsAsked) return;
      throw e;
    }
    if (asked !== opsAsked) return;
    offer(operation, ops.data, wanted);
  };
  service.addEventListener('change', () => void loadOperations(service.value, '').catch((e: unknown) => showError(results, e)));
  // The lists only offer names: when one fails (a listing that timed out, a store busy) the link's
  // search is still run with its service and operation kept, and the page says the list failed.
  // A token refused (or not given) is the page's error: the search would be refused the same.
  let listFailed: unknown;
  const refused = (e: unknown): boolean => e instanceof HttpError && (e.status === 401 || e.status === 403);
  try {
    offer(service, (await getJson<{ data: string[] }>('/api/services')).data, params.get('service') ?? '');
  } catch (e) {
    if (refused(e)) return showError(results, e);
    listFailed = e;
    offer(service, [], params.get('service') ?? '');
  }
  try {
    await loadOperations(service.value, params.get('name') ?? '');
  } catch (e) {
    if (refused(e)) return showError(results, e);
    listFailed ??= e;
    operation.replaceChildren(h('option', { value: '' }, 'All operations'));
    offer(operation, [], params.get('name') ?? '');
  }
  await runSearch(params, results);
  if (listFailed !== undefined) results.prepend(h('p', { class: 'error', role: 'alert' }, `The list of services or operations could not be read: ${(listFailed as Error).message}`));
}

async function runSearch(params: URLSearchParams, results: HTMLElement): Promise<void> {
  const q = new URLSearchParams();
  // Service and span name as picked (a stored name may start or end with a space); numbers trimmed.
  for (const k of ['service', 'name', 'minDurationMs', 'maxDurationMs']) {
    const v = k === 'service' || k === 'name' ? params.get(k) : params.get(k)?.trim();
    if (v) q.set(k, v);
  }
  const limit = Math.min(maxLimit, Math.max(1, Number(params.get('limit')) || 20));
  q.set('limit', String(limit));
  const range = windowOf(params);
  if (range instanceof Error) return showError(results, range);
  if (range.start) q.set('start', range.start);
  if (range.end) q.set('end', range.end);
  // Space-separated key=value, as logfmt: a value with spaces is quoted (key="a b").
  for (const [raw] of (params.get('tags') ?? '').matchAll(/(?:[^\s"]+|"(?:[^"\\]|\\.)*"?)+/g)) {
    const m = /^([^="]+)=(.*)$/s.exec(raw);
    if (!m) return showError(results, new Error(`tag '${raw}': expected key=value`));
    let value = m[2]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        return showError(results, new Error(`tag '${raw}': unclosed quote`));
      }
    }
    const t = `${m[1]}=${value}`;
    // error=true is the span's status (as the trace view shows it), not an attribute.
    if (t === 'error=true') q.set('status', 'error');
    else q.append('attr', t);
  }
  results.replaceChildren(h('p', { class: 'muted' }, 'Searching…'));
  let found: { traces: Summary[] };
  try {
    found = await getJson<{ traces: Summary[] }>(`/v1/traces?${q}`);
  } catch (e) {
    return showError(results, e);
  }
  const traces = found.traces;
  const longest = Math.max(1, ...traces.map((t) => Number(t.durationNano)));
  const list = h('ol', { class: 'trace-list' });
  for (const t of traces) {
    const bar = h('div', { class: 'dur-bar' });
    bar.style.setProperty('width', `${Math.max(0.5, (Number(t.durationNano) / longest) * 100)}%`);
    bar.style.setProperty('--hue', serviceHue(t.rootServiceName));
    list.append(
      h(
        'li',
        { class: 'trace-result' + (t.hasError ? ' has-error' : ''), 'data-trace-id': t.traceId },
        h(
          'a',
          { href: `/trace/${t.traceId}` },
          h('span', { class: 'title' }, h('strong', {}, t.rootServiceName), ': ', t.rootSpanName),
          h('span', { class: 'meta' }, h('span', { class: 'span-count' }, `${t.spanCount} span${t.spanCount === 1 ? '' : 's'}`), t.hasError ? h('span', { class: 'badge error-badge' }, 'error') : null, h('span', { class: 'duration' }, fmtDuration(Number(t.durationNano))), h('time', {}, fmtTime(t.startTimeUnixNano))),
          h('span', { class: 'dur-track' }, bar),
          h('code', { class: 'trace-id' }, t.traceId),
        ),
      ),
    );
  }
  results.replaceChildren(h('p', { class: 'count' }, `${traces.length} trace${traces.length === 1 ? '' : 's'}, newest first`), traces.length > 0 ? list : h('p', { class: 'muted' }, 'No traces match.'));
}

// ---------------------------------------------------------------- trace waterfall

function buildTree(doc: OtlpTrace): { rows: UiSpan[]; total: number; start: bigint; services: string[] } {
  const all: UiSpan[] = [];
  let start: bigint | undefined;
  let end: bigint | undefined;
  for (const rs of doc.resourceSpans) {
    const service = attr(rs.resource.attributes, 'service.name') ?? 'unknown_service';
    for (const ss of rs.scopeSpans) {
      for (const span of ss.spans) {
        const s = BigInt(span.startTimeUnixNano);
        const e = BigInt(span.endTimeUnixNano);
        if (start === undefined || s < start) start = s;
        // A span that ends before it starts (a skewed clock) is drawn as zero-length at its start.
        const last = e > s ? e : s;
        if (end === undefined || last > end) end = last;
        all.push({ span, service, resource: rs.resource.attributes, resourceDropped: rs.resource.droppedAttributesCount ?? 0, scope: ss.scope, offset: 0, duration: e > s ? Number(e - s) : 0, depth: 0, children: [], collapsed: false, orphan: false });
      }
    }
  }
  const t0 = start ?? 0n;
  const byId = new Map<string, UiSpan>();
  for (const u of all) {
    u.offset = Number(BigInt(u.span.startTimeUnixNano) - t0);
    byId.set(u.span.spanId, u);
  }
  const roots: UiSpan[] = [];
  for (const u of all) {
    const parent = u.span.parentSpanId === '' ? undefined : byId.get(u.span.parentSpanId);
    if (parent && parent !== u) {
      parent.children.push(u);
      u.parent = parent;
    } else {
      // A span naming itself as its parent is a cycle of one: its parent is stored.
      if (parent === u) u.inCycle = true;
      else u.orphan = u.span.parentSpanId !== '';
      roots.push(u);
    }
  }
  const byStart = (a: UiSpan, b: UiSpan) => a.offset - b.offset || (a.span.spanId < b.span.spanId ? -1 : 1);
  for (const u of all) u.children.sort(byStart);
  // Depths by an explicit stack: a 10,000-deep chain must not overflow the call stack.
  const reached = new Set<UiSpan>();
  const walk = (from: UiSpan): void => {
    const stack = [{ u: from, depth: 0 }];
    while (stack.length > 0) {
      const { u, depth } = stack.pop()!;
      reached.add(u);
      u.depth = depth;
      for (const c of u.children) stack.push({ u: c, depth: depth + 1 });
    }
  };
  for (const r of roots) walk(r);
  // Spans whose parent ids form a cycle (damaged data) are reached from no root: each cycle is
  // cut at one of its spans, shown as a root. The cut is made on the cycle itself, found up the
  // parents of a span reached from no root: a span hanging under the cycle stays under its parent.
  for (const from of all) {
    if (reached.has(from)) continue;
    const up = new Set<UiSpan>();
    let u = from;
    while (!up.has(u)) {
      up.add(u);
      u = byId.get(u.span.parentSpanId)!;
    }
    const parent = byId.get(u.span.parentSpanId)!;
    parent.children.splice(parent.children.indexOf(u), 1);
    delete u.parent;
    u.inCycle = true;
    roots.push(u);
    walk(u);
  }
  roots.sort(byStart);
  const services = [...new Set(all.map((u) => u.service))].sort();
  return { rows: roots, total: end !== undefined && end > t0 ? Number(end - t0) : 0, start: t0, services };
}

/** The rows in view order: depth first, children of collapsed spans left out. */
function visibleRows(roots: UiSpan[]): UiSpan[] {
  const out: UiSpan[] = [];
  const stack = [...roots].reverse();
  while (stack.length > 0) {
    const u = stack.pop()!;
    out.push(u);
    if (!u.collapsed) for (let i = u.children.length - 1; i >= 0; i--) stack.push(u.children[i]!);
  }
  return out;
}

/** span: a link's span (?span=), selected and scrolled to once the trace shows. */
async function tracePage(pathId: string, span: string | null): Promise<void> {
  // Jaeger drops the leading zeros of 64-bit ids (links from it do too); the read API wants 32 digits.
  const traceId = pathId.toLowerCase().padStart(32, '0');
  document.title = `Trace ${traceId} · Tracehouse`;
  app.replaceChildren(h('p', { class: 'muted' }, 'Loading trace…'));
  const t0 = performance.now();
  let doc: OtlpTrace;
  try {
    doc = await getJson<OtlpTrace>(`/v1/traces/${encodeURIComponent(traceId)}`);
  } catch (e) {
    return showError(app, e);
  }
  const tree = buildTree(doc);
  let rows = visibleRows(tree.rows);
  const spanCount = rows.length;
  // Every span in tree order (nothing is collapsed yet), and those with an error status among them.
  const order = new Map(rows.map((u, i) => [u, i]));
  const errorSpans = rows.filter((u) => u.span.status.code === 2);
  const errors = errorSpans.length;
  const total = Math.max(1, tree.total);
  // The root, as the search list titles the trace; an orphan may start before it.
  const root = tree.rows.find((u) => u.span.parentSpanId === '') ?? tree.rows[0];
  // Titled as the search list and the heading name it: the tab strip and the history menu (the Back
  // button held down) listed every trace as "Trace" and 32 hex digits, alike at a glance.
  if (root) document.title = `${root.service}: ${clipped(root.span.name, 80)} · trace ${jaegerId(traceId).slice(0, 8)}… · Tracehouse`;
  // The trace's services spread evenly round the colour wheel: hues from a hash of the names
  // put some services a few degrees apart or on the same hue (cart and fraud-detection).
  const hues = new Map(tree.services.map((s, i) => [s, String(Math.round(210 + (i * 360) / tree.services.length) % 360)]));
  const hueOf = (s: string): string => hues.get(s) ?? serviceHue(s);

  const legend = h('ul', { class: 'legend' }, ...tree.services.map((s) => {
    const li = h('li', {}, h('span', { class: 'swatch' }), s);
    li.style.setProperty('--hue', hueOf(s));
    return li;
  }));
  const axis = h('div', { class: 'axis' }, h('div', { class: 'axis-name' }, 'Service · operation'), h('div', { class: 'axis-lane' }, ...[0, 0.25, 0.5, 0.75, 1].map((f) => {
    const tick = h('span', { class: 'tick' }, fmtDuration(Math.round(total * f)));
    tick.style.setProperty('left', `${f * 100}%`);
    return tick;
  })));
  const spacer = h('div', { class: 'spacer' });
  const viewport = h('div', { class: 'rows', role: 'tree', 'aria-label': 'Spans', tabindex: '0' }, spacer);
  const details = h('aside', { class: 'details' }, h('p', { class: 'muted' }, 'Select a span to see its attributes, events, links, resource and logs.'));
  // A button: each press selects the next span with an error, so one among thousands is found
  // without scrolling through them (the count alone said the trace failed, not where).
  const errorBadge = errors > 0 ? h('button', { type: 'button', class: 'badge error-badge', title: 'Select the next span with an error' }, `${errors} error${errors === 1 ? '' : 's'}`) : null;
  const head = h(
    'div',
    { class: 'trace-head' },
    // The service its own bidi run, as in the search results: a right-to-left one cannot reorder the span name.
    root ? h('h1', {}, h('span', { class: 'svc' }, root.service), `: ${root.span.name}`) : h('h1', {}, 'Trace'),
    h('p', { class: 'meta' }, h('code', { class: 'trace-id' }, traceId), ` · ${spanCount} span${spanCount === 1 ? '' : 's'} · ${tree.services.length} service${tree.services.length === 1 ? '' : 's'} · ${fmtDuration(tree.total)} · started ${fmtTime(tree.start.toString())}`, errorBadge, ' · ', h('a', { href: `/logs?traceId=${traceId}&lookback=all` }, 'logs of this trace')),
    legend,
    ...(doc.warnings ?? []).map((w) => h('p', { class: 'warning', role: 'status' }, w)),
  );
  app.replaceChildren(head, h('div', { class: 'trace-view' }, h('div', { class: 'waterfall' }, axis, viewport), details));

  let selected: UiSpan | undefined;
  const rendered = new Map<number, HTMLElement>();
  const renderRow = (u: UiSpan, i: number): HTMLElement => {
    const s = u.span;
    const err = s.status.code === 2;
    // Not a tab stop: the keyboard collapses and expands with the left and right keys, and a tree of
    // a few hundred spans would otherwise put as many stops between the tree and the details.
    const toggle = u.children.length > 0 ? h('button', { class: 'toggle', type: 'button', tabindex: '-1', 'aria-label': u.collapsed ? 'Expand' : 'Collapse' }, u.collapsed ? '▸' : '▾') : h('span', { class: 'toggle' });
    const name = h('div', { class: 'name' }, toggle, h('span', { class: 'swatch' }), h('span', { class: 'svc' }, u.service), ' ', h('span', { class: 'op' }, s.name), err ? h('span', { class: 'err-mark', title: s.status.message || 'error' }, '!') : null);
    name.style.setProperty('--depth', String(u.depth));
    const bar = h('div', { class: 'bar' });
    bar.style.setProperty('left', `${(u.offset / total) * 100}%`);
    bar.style.setProperty('width', `${Math.max(0.1, (u.duration / total) * 100)}%`);
    const label = h('span', { class: 'bar-label' }, fmtDuration(u.duration));
    // Right of the bar, in the lane's right margin when the bar reaches the end.
    label.style.setProperty('left', `${Math.min(100, ((u.offset + u.duration) / total) * 100)}%`);
    // aria-selected and aria-expanded: what a screen reader says of the item the tree points to (point()).
    const aria: Record<string, string> = { id: `span-row-${i}`, 'aria-level': String(u.depth + 1), 'aria-selected': String(u === selected) };
    if (u.children.length > 0) aria['aria-expanded'] = String(!u.collapsed);
    const row = h('div', { class: 'row' + (err ? ' error' : '') + (u === selected ? ' selected' : ''), role: 'treeitem', 'data-span-id': s.spanId, 'data-index': String(i), ...aria }, name, h('div', { class: 'lane' }, bar, label));
    row.style.setProperty('--hue', hueOf(u.service));
    row.style.setProperty('top', `${i * ROW_HEIGHT}px`);
    return row;
  };
  // The rows are not focusable (most are not in the DOM): the tree keeps the focus and points to
  // the selected row, so a screen reader announces the span the arrow keys moved to.
  const point = (): void => {
    for (const [i, el] of rendered) {
      if (rows[i] === selected) return viewport.setAttribute('aria-activedescendant', el.id);
    }
    viewport.removeAttribute('aria-activedescendant');
  };
  let frame = 0;
  const paint = () => {
    frame = 0;
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - OVERSCAN_ROWS);
    const last = Math.min(rows.length, Math.ceil((viewport.scrollTop + viewport.clientHeight) / ROW_HEIGHT) + OVERSCAN_ROWS);
    for (const [i, el] of rendered) {
      if (i < first || i >= last) {
        el.remove();
        rendered.delete(i);
      }
    }
    for (let i = first; i < last; i++) {
      if (rendered.has(i)) continue;
      const el = renderRow(rows[i]!, i);
      rendered.set(i, el);
      viewport.append(el);
    }
    point();
  };
  const repaintAll = () => {
    for (const el of rendered.values()) el.remove();
    rendered.clear();
    spacer.style.setProperty('height', `${rows.length * ROW_HEIGHT}px`);
    paint();
  };
  const schedulePaint = () => {
    if (frame === 0) frame = requestAnimationFrame(paint);
  };
  viewport.addEventListener('scroll', schedulePaint);
  // A taller window (or pane) brings rows into view without a scroll: painted then too.
  new ResizeObserver(schedulePaint).observe(viewport);
  const choose = (u: UiSpan): void => {
    selected = u;
    // The address names the selected span (?span=, as a link's does): copied or reloaded, or come
    // back to with Back from a trace it links to, the page opens at that span, not at the top.
    const here = new URL(location.href);
    if (here.searchParams.get('span') !== u.span.spanId) {
      here.searchParams.set('span', u.span.spanId);
      history.replaceState(history.state, '', here);
    }
    for (const [i, el] of rendered) {
      el.classList.toggle('selected', rows[i] === u);
      el.setAttribute('aria-selected', String(rows[i] === u));
    }
    point();
    void showSpan(u, details, traceId, (doc.warnings?.length ?? 0) > 0).catch((e: unknown) => showError(details, e));
  };
  viewport.addEventListener('click', (ev) => {
    const target = ev.target as HTMLElement;
    const row = target.closest('.row') as HTMLElement | null;
    if (!row) return;
    const u = rows[Number(row.dataset['index'])];
    if (!u) return;
    if (target.closest('button.toggle')) {
      u.collapsed = !u.collapsed;
      rows = visibleRows(tree.rows);
      repaintAll();
      // The clicked button was focused and is now gone (the rows are drawn anew): the focus goes
      // back to the tree, whose arrow keys would otherwise do nothing until it is clicked again.
      return viewport.focus({ preventScroll: true });
    }
    choose(u);
  });
  // Selects the span at index next of rows, scrolled into view at the nearer edge.
  const moveTo = (next: number): void => {
    choose(rows[next]!);
    const top = next * ROW_HEIGHT;
    if (top < viewport.scrollTop) viewport.scrollTop = top;
    else if (top + ROW_HEIGHT > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = top + ROW_HEIGHT - viewport.clientHeight;
    paint();
  };
  // The tree by keyboard, as a tree view's keys go: up and down select the previous or next span
  // (Page Up and Down, Home and End further); right expands a span, then goes to its first child;
  // left collapses it, then goes to its parent (from a leaf at once); Enter takes the focus to the
  // selected span's details, to be read or tabbed through (Shift+Tab from there comes back).
  viewport.addEventListener('keydown', (ev) => {
    const at = selected ? rows.indexOf(selected) : -1;
    if (ev.key === 'Enter' && selected) {
      ev.preventDefault();
      return (details.querySelector('h2') as HTMLElement | null)?.focus();
    }
    if ((ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') && selected) {
      ev.preventDefault();
      const open = selected.children.length > 0 && !selected.collapsed;
      if (ev.key === 'ArrowRight') {
        if (selected.children.length === 0) return;
        if (open) return moveTo(at + 1);
        selected.collapsed = false;
      } else if (open) selected.collapsed = true;
      else {
        const parent = selected.parent ? rows.indexOf(selected.parent) : -1;
        return parent < 0 ? undefined : moveTo(parent);
      }
      rows = visibleRows(tree.rows);
      return repaintAll();
    }
    // Page Down and Up move the selection a screen of rows, End and Home to the last and first span:
    // left to the browser, they scrolled the view only, and the next arrow key jumped back to the
    // selected span, so a keyboard reached a span 2,000 rows down in 2,000 presses.
    const screen = Math.max(1, Math.floor(viewport.clientHeight / ROW_HEIGHT) - 1);
    const step: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: screen, PageUp: -screen, End: rows.length, Home: -rows.length };
    const by = step[ev.key];
    if (by === undefined) return;
    ev.preventDefault();
    const next = Math.max(0, Math.min(rows.length - 1, at + by));
    if (next === at || !rows[next]) return;
    moveTo(next);
  });
  // Selects the span at index at of rows, scrolled to the middle of the tree, as a click shows it.
  const reveal = (at: number): void => {
    viewport.scrollTop = Math.max(0, at * ROW_HEIGHT - (viewport.clientHeight - ROW_HEIGHT) / 2);
    paint();
    choose(rows[at]!);
  };
  errorBadge?.addEventListener('click', () => {
    const from = selected ? order.get(selected)! : -1;
    const u = errorSpans.find((e) => order.get(e)! > from) ?? errorSpans[0]!;
    let opened = false;
    for (let p = u.parent; p; p = p.parent) {
      if (p.collapsed) {
        p.collapsed = false;
        opened = true;
      }
    }
    if (opened) {
      rows = visibleRows(tree.rows);
      repaintAll();
    }
    reveal(rows.indexOf(u));
  });
  repaintAll();
  // A link's span (the details' span links and the logs view's trace links go to /trace/{id}?span={id}): selected and scrolled to
  // the middle of the tree, as a click would show it. Without this the page opened at the trace's
  // top, and in a trace of thousands of spans nothing said which one the link meant.
  const wanted = span?.trim().toLowerCase();
  if (wanted) {
    const at = rows.findIndex((u) => u.span.spanId === wanted);
    if (at >= 0) reveal(at);
    else {
      const cut = (doc.warnings?.length ?? 0) > 0;
      head.append(h('p', { class: 'warning', role: 'status' }, `Span ${wanted}, which the link names, is not ${cut ? 'among the spans shown: the trace was cut' : 'stored in this trace'}.`));
    }
  }
  app.dataset['renderMs'] = (performance.now() - t0).toFixed(1);
}

/** The trace's log records (one read for every span), and whether the read API cut them to its byte bound. */
let traceLogs: Promise<{ logs: OtlpLog[]; cut: boolean }> | undefined;

/** traceCut: the read API cut the trace (its warnings): a parent not in the answer may be stored all the same. */
async function showSpan(u: UiSpan, details: HTMLElement, traceId: string, traceCut: boolean): Promise<void> {
  const s = u.span;
  const startNs = BigInt(s.startTimeUnixNano);
  const endNs = BigInt(s.endTimeUnixNano);
  const logsBox = h('div', { class: 'span-logs' }, h('p', { class: 'muted' }, 'Loading logs…'));
  details.replaceChildren(
    h('h2', { tabindex: '-1' }, s.name),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Service'), h('dd', {}, u.service),
      h('dt', {}, 'Span id'), h('dd', {}, h('code', {}, s.spanId)),
      h('dt', {}, 'Parent'), h('dd', {}, s.parentSpanId ? h('code', {}, s.parentSpanId) : 'root', u.orphan ? (traceCut ? ' (not among the spans shown: the trace was cut)' : ' (not stored)') : u.inCycle ? ' (its parents form a cycle)' : ''),
      h('dt', {}, 'Kind'), h('dd', {}, KINDS[s.kind] ?? String(s.kind)),
      h('dt', {}, 'Start'), h('dd', {}, `${fmtTime(s.startTimeUnixNano)} (+${fmtDuration(u.offset)})`),
      // A span ending before it starts (a skewed clock) is drawn zero-length; its details say by how much.
      // An end of 0 was never stamped (an exporter's unfinished span): no clock is decades behind.
      h('dt', {}, 'Duration'), h('dd', {}, fmtDuration(u.duration), endNs === 0n ? ' (no end time stamped)' : endNs < startNs ? ` (its end is stamped ${fmtDuration(Number(startNs - endNs))} before its start: clock skew)` : ''),
      h('dt', {}, 'Status'), h('dd', { class: s.status.code === 2 ? 'status-error' : '' }, ['unset', 'ok', 'error'][s.status.code] ?? String(s.status.code), s.status.message ? `: ${s.status.message}` : ''),
      h('dt', {}, 'Scope'), h('dd', {}, `${u.scope.name}${u.scope.version ? ' ' + u.scope.version : ''}`),
      ...(s.flags ? [h('dt', {}, 'Flags'), h('dd', {}, flagsText(s.flags, 'parent '))] : []),
      ...(s.traceState ? [h('dt', {}, 'Trace state'), h('dd', {}, h('code', {}, s.traceState))] : []),
    ),
    h('h3', {}, counted('Attributes', s.attributes.length, s.droppedAttributesCount)),
    kvTable(s.attributes),
    h('h3', {}, counted('Events', s.events.length, s.droppedEventsCount)),
    capped(h('ol', { class: 'events' }), s.events, (e, nested) => h('li', {}, h('strong', {}, e.name), ` at ${fmtOffset(Number(BigInt(e.timeUnixNano) - startNs))}`, kvTable(e.attributes, nested), droppedNote(e.droppedAttributesCount)), 'event'),
    h('h3', {}, counted('Links', s.links.length, s.droppedLinksCount)),
    capped(h('ul', { class: 'links' }), s.links, (l, nested) => h('li', {}, h('a', { href: `/trace/${l.traceId}?span=${l.spanId}` }, h('code', {}, `${l.traceId}/${l.spanId}`)), ...(l.flags ? [' ', flagsText(l.flags, '')] : []), ...(l.traceState ? [' trace state ', h('code', {}, l.traceState)] : []), kvTable(l.attributes, nested), droppedNote(l.droppedAttributesCount)), 'link'),
    h('h3', {}, u.resourceDropped ? `Resource (${u.resourceDropped} attribute${u.resourceDropped === 1 ? '' : 's'} dropped by the sender)` : 'Resource'),
    kvTable(u.resource),
    // Counted as the resource's are: a scope whose every attribute the sender dropped still says so.
    ...(u.scope.attributes?.length || u.scope.droppedAttributesCount ? [h('h3', {}, counted('Scope attributes', u.scope.attributes?.length ?? 0, u.scope.droppedAttributesCount)), kvTable(u.scope.attributes ?? [])] : []),
    h('h3', {}, 'Logs'),
    logsBox,
  );
  traceLogs ??= getJson<LogsDoc>(`/v1/logs?traceId=${traceId}&limit=${maxLimit}`).then((d) => ({ logs: flattenLogs(d).map((x) => x.log), cut: (d.warnings?.length ?? 0) > 0 }));
  let logs: OtlpLog[];
  let cut = false;
  try {
    const first = await traceLogs;
    logs = first.logs;
    // One read holds the trace's newest maxLimit records only, fewer when they fill the read API's
    // byte bound (it says so in warnings): a trace that logged more has the records of its earlier
    // spans cut off. Those of this span are asked for by its own time too.
    if (first.cut || logs.length >= maxLimit) {
      const end = endNs > startNs ? s.endTimeUnixNano : s.startTimeUnixNano;
      const q = new URLSearchParams({ traceId, start: rfc3339(s.startTimeUnixNano), end: rfc3339(end), limit: String(maxLimit) });
      const duringDoc = await getJson<LogsDoc>(`/v1/logs?${q}`);
      const during = flattenLogs(duringDoc).map((x) => x.log);
      const seen = new Set(logs.map((l) => JSON.stringify(l)));
      logs = [...logs, ...during.filter((l) => !seen.has(JSON.stringify(l)))];
      cut = during.length >= maxLimit || (duringDoc.warnings?.length ?? 0) > 0;
    }
  } catch (e) {
    // The span's details stay; the next span selected asks again instead of this failure.
    traceLogs = undefined;
    return showError(logsBox, e);
  }
  // The second read's records were merged in after the first's.
  const mine = logs.filter((l) => l.spanId === s.spanId).sort(newestFirst);
  const note = cut ? [h('p', { class: 'muted' }, `The trace logged more records during this span than one read returns (query.maxLimit, ${maxLimit}, or the read's byte bound): some of this span's may not be shown.`)] : [];
  logsBox.replaceChildren(...note, mine.length === 0 ? h('p', { class: 'muted' }, 'No log records for this span.') : h('ol', { class: 'span-log-list' }, ...mine.map((l) => h('li', { class: `sev sev-${severityClass(l.severityNumber)}` }, logTime(l) === '0' ? h('time', {}, 'no time') : h('time', { title: fmtTime(logTime(l)) }, fmtOffset(Number(BigInt(logTime(l)) - startNs))), ' ', h('span', { class: 'sev-text' }, l.severityText || severityName(l.severityNumber)), ' ', h('span', { class: 'body' }, ...logBody(l)), ...logAttrs(l)))));
}

// ---------------------------------------------------------------- logs

/** A log record's body as read, led by its event name when it has one; nothing for no body (not 'null'). */
function logBody(l: OtlpLog): Child[] {
  const body = l.body && Object.keys(l.body).length > 0 ? valueText(l.body) : '';
  if (!l.eventName) return [body];
  return [h('strong', { class: 'event-name' }, l.eventName), body ? ' ' : '', body];
}

/** When a log record happened: its own time, else when it was observed (a record with time 0). */
function logTime(l: OtlpLog): string {
  return l.timeUnixNano !== '0' ? l.timeUnixNano : l.observedTimeUnixNano;
}

/** Orders log records newest first by logTime. */
function newestFirst(a: OtlpLog, b: OtlpLog): number {
  const ta = BigInt(logTime(a));
  const tb = BigInt(logTime(b));
  return ta === tb ? 0 : ta > tb ? -1 : 1;
}

/** A log record's attributes as the logs view lists them: key=value, space-separated. */
function attrsText(l: OtlpLog): string {
  return l.attributes.map((a) => `${a.key}=${valueText(a.value)}`).join(' ');
}

/** A span's log record's attributes after its body, as the logs view shows them; nothing without any. */
function logAttrs(l: OtlpLog): Child[] {
  return l.attributes.length === 0 ? [] : [' ', h('span', { class: 'attrs' }, attrsText(l))];
}

/**
 * A trace id as Jaeger writes it: a 64-bit one (16 leading zeros) by its own 16 digits, which tell
 * such traces apart. The server's jaegerTraceId (query/jaeger.ts) does the same; this file is served
 * as one module and imports nothing.
 */
function jaegerId(traceId: string): string {
  return traceId.length === 32 && traceId.startsWith('0000000000000000') ? traceId.slice(16) : traceId;
}

function severityClass(n: number): string {
  return n >= 17 ? 'error' : n >= 13 ? 'warn' : n >= 9 ? 'info' : 'debug';
}

function flattenLogs(d: LogsDoc): { log: OtlpLog; service: string }[] {
  const out: { log: OtlpLog; service: string }[] = [];
  for (const rl of d.resourceLogs) {
    const service = attr(rl.resource.attributes, 'service.name') ?? 'unknown_service';
    for (const sl of rl.scopeLogs) for (const log of sl.logRecords) out.push({ log, service });
  }
  // Newest first by the time the page shows, whatever the answer's grouping.
  return out.sort((a, b) => newestFirst(a.log, b.log));
}

async function logsPage(params: URLSearchParams): Promise<void> {
  const severity = Number(params.get('minSeverity'));
  document.title = filtersTitle('Logs', [params.get('service'), Number.isInteger(severity) && severity >= 1 && severity <= 24 ? `${severityName(severity)} and above` : params.get('minSeverity'), params.get('traceId')]);
  // Typed, with the services of stored spans offered: /api/services knows no service that sends
  // only logs, and a list of those alone would leave such a service unreachable here.
  const service = input('service', params.get('service') ?? '', { list: 'log-services', placeholder: 'All services', autocomplete: 'off', 'aria-label': 'Service' });
  const known = h('datalist', { id: 'log-services' });
  const form = h(
    'form',
    { class: 'filters', action: '/logs', method: 'get' },
    field('Service', service),
    known,
    field('Severity', severitySelect(params)),
    ...timeRangeFields(params),
    // Up to 32 digits: a 64-bit id as the Jaeger API and Grafana write it (16) is left-padded, as the trace page does.
    field('Trace id', input('traceId', params.get('traceId') ?? '', { size: '34', pattern: '\\s*[0-9a-fA-F]{1,32}\\s*', placeholder: '32 hex digits' })),
    field('Limit', input('limit', params.get('limit') ?? '100', { inputmode: 'numeric', size: '4' })),
    h('button', { type: 'submit' }, 'Show logs'),
  );
  const results = h('section', { class: 'results', 'aria-live': 'polite' });
  app.replaceChildren(h('h1', {}, 'Logs'), form, results);
  const q = new URLSearchParams();
  // The service as picked or typed (a stored name may start or end with a space, as on the search page); the rest trimmed.
  // end: set by the "Older records" link, the time the previous page's oldest record has. A custom
  // range's end is its To (windowOf): that link sets upto instead, so the To stays for the form and
  // for "Newest records", which would otherwise lead past the window to the records of now.
  const custom = lookbackOf(params) === 'custom';
  const cursor = custom ? 'upto' : 'end';
  const paged = params.get(cursor)?.trim();
  for (const k of ['service', 'minSeverity', 'traceId']) {
    const v = k === 'service' ? params.get(k) : params.get(k)?.trim();
    if (v) q.set(k, k === 'traceId' && /^[0-9a-fA-F]{1,31}$/.test(v) ? v.padStart(32, '0') : v);
  }
  const limit = Math.min(maxLimit, Math.max(1, Number(params.get('limit')) || 100));
  q.set('limit', String(limit));
  const range = windowOf(params);
  if (range instanceof Error) return showError(results, range);
  if (range.start) q.set('start', range.start);
  // The end the read API is given (a Jaeger link's microseconds made nanoseconds): a page of older records' own, else the range's To.
  const end = paged || range.end;
  if (end) q.set('end', end);
  results.replaceChildren(h('p', { class: 'muted' }, 'Searching…'));
  let doc: LogsDoc;
  try {
    doc = await getJson<LogsDoc>(`/v1/logs?${q}`);
  } catch (e) {
    return showError(results, e);
  }
  const rows = flattenLogs(doc);
  const table = h(
    'table',
    { class: 'log-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Severity'), h('th', {}, 'Service'), h('th', {}, 'Body'), h('th', {}, 'Attributes'), h('th', {}, 'Trace'))),
    h(
      'tbody',
      {},
      ...rows.map(({ log, service: svc }) =>
        h(
          'tr',
          { class: `log-row sev-${severityClass(log.severityNumber)}` },
          h('td', {}, h('time', {}, fmtTime(logTime(log)))),
          h('td', { class: 'sev-text' }, log.severityText || severityName(log.severityNumber)),
          h('td', { class: 'service' }, svc),
          h('td', { class: 'body' }, ...logBody(log)),
          h('td', { class: 'attrs' }, attrsText(log)),
          // A record of a span opens its trace at that span, selected (see tracePage), not at the trace's top.
          h('td', {}, log.traceId ? h('a', { href: `/trace/${log.traceId}${log.spanId ? `?span=${log.spanId}` : ''}` }, h('code', {}, jaegerId(log.traceId).slice(0, 8) + '…')) : ''),
        ),
      ),
    ),
  );
  // A search cut to the byte bound says so, as a cut trace does: the count alone reads as every match.
  const warnings = (doc.warnings ?? []).map((w) => h('p', { class: 'warning', role: 'status' }, w));
  // A full page (or one cut to the byte bound) leaves older matches out: the next page ends at this
  // one's oldest record's time. The read API's end is inclusive, so records stamped in that same
  // nanosecond (loggers stamp in milliseconds) are shown again rather than skipped. A page whose
  // records all share one time would be its own next page, and more records may share that time
  // than it holds (a burst within a millisecond): the next page reads them at query.maxLimit; at
  // that limit (or cut to the byte bound) it ends just before that time, and says what it skips.
  const pages: Child[] = [];
  const notes: HTMLElement[] = [];
  const last = rows[rows.length - 1];
  if (last && (rows.length >= limit || warnings.length > 0)) {
    const oldest = BigInt(logTime(last.log));
    const next = new URLSearchParams(params);
    const oneTime = oldest === BigInt(logTime(rows[0]!.log));
    const readWhole = oneTime && limit < maxLimit && warnings.length === 0;
    if (readWhole) next.set('limit', String(maxLimit));
    else if (oneTime) notes.push(h('p', { class: 'warning', role: 'status' }, `Every record shown is stamped ${fmtTime(String(oldest))}, and more may share that time than one page holds (query.maxLimit, ${maxLimit}, or the read's byte bound): older records start before it, and those of that time not shown here are skipped.`));
    // RFC 3339: as a number, a time before 2000 (a device whose clock was never set) is refused as seconds given by mistake.
    next.set(cursor, rfc3339(String(oneTime && !readWhole ? oldest - 1n : oldest)));
    pages.push(h('a', { class: 'older', href: `/logs?${next}` }, 'Older records'));
  }
  if (paged) {
    const newest = new URLSearchParams(params);
    newest.delete(cursor);
    pages.push(pages.length > 0 ? ' · ' : null, h('a', { class: 'newest', href: `/logs?${newest}` }, 'Newest records'));
  }
  // An end the older-records link wrote (rfc3339) shown as the records' times are; one typed, as typed.
  const endText = (v: string): string => (/^\d+$/.test(v) ? fmtTime(v) : /^[\d-]{10}T[\d:]{8}\.\d{9}Z$/.test(v) ? `${v.slice(0, 10)} ${v.slice(11, 23)} UTC` : v);
  const count = `${rows.length} log record${rows.length === 1 ? '' : 's'}${end ? ` up to ${endText(end)}` : ''}, newest first`;
  results.replaceChildren(...warnings, ...notes, h('p', { class: 'count' }, count), rows.length > 0 ? h('div', { class: 'log-scroll' }, table) : h('p', { class: 'muted' }, 'No log records match.'), ...(pages.length > 0 ? [h('p', { class: 'pages' }, ...pages)] : []));
  // The service field's suggestions, asked for after the records (which asked for a token if one
  // is needed): a failure to list services (a slow span table, a store busy) costs only the
  // suggestions, as a typed name is searched all the same, never the records.
  try {
    const services = await getJson<{ data: string[] }>('/api/services');
    for (const s of services.data) known.append(h('option', { value: s }));
  } catch {
    // No suggestions: the field still takes any name.
  }
}

// ---------------------------------------------------------------- router

async function main(): Promise<void> {
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  const page = path.startsWith('/trace/') ? 'trace' : path === '/logs' ? 'logs' : 'search';
  for (const a of document.querySelectorAll<HTMLElement>('[data-nav]')) a.classList.toggle('active', a.dataset['nav'] === page || (page === 'trace' && a.dataset['nav'] === 'search'));
  if (page === 'trace') await tracePage(path.slice('/trace/'.length), params.get('span'));
  else if (page === 'logs') await logsPage(params);
  else await searchPage(params);
  app.dataset['ready'] = 'true';
}

main().catch((e: unknown) => showError(app, e));
