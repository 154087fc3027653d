// Structured JSON logs. Per-item problems are counted in metrics; logs say a thing once.
import { pino, type Logger } from 'pino';

export type { Logger };

/** The process logger (JSON lines on stdout). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'tracehouse' } });
}
