// Structured JSON logs. Per-item problems are counted in metrics; logs say a thing once.
import { pino, type Logger } from 'pino';

export type { Logger };

/** The process logger (JSON lines on stdout; on stderr with fd 2, for commands whose stdout is data). */
export function createLogger(level: string, fd: 1 | 2 = 1): Logger {
  return fd === 1 ? pino({ level, base: { service: 'tracehouse' } }) : pino({ level, base: { service: 'tracehouse' } }, pino.destination(2));
}
