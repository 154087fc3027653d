// The two OTLP signals Tracehouse stores: one name for them everywhere, metric labels included.

/** An OTLP signal: traces (rows are spans) or logs (rows are log records). */
export type Signal = 'traces' | 'logs';

/** Every signal, for loops and for pre-initialising labelled metrics. */
export const SIGNALS: readonly Signal[] = ['traces', 'logs'];
