#!/usr/bin/env node
// Entry point: `tracehouse [start]` runs the collector, `tracehouse migrate` applies storage
// migrations and exits, `export` / `import` / `copy` move data (src/transfer/), `--help` lists
// every option.
import { constants as osConstants } from 'node:os';
import { parseArgs } from 'node:util';
import { Collector } from './app.ts';
import { ConfigError, helpText, loadConfig, warnStrayEnv } from './config/index.ts';
import { BOOL_KEYS, BOOLEAN_WORD, LIST_KEYS, OPTIONS } from './config/options.ts';
import type { Migrated } from './storage/backend.ts';
import { createBackend, storeEndpoint } from './storage/index.ts';
import { whenReachable } from './storage/reach.ts';
import { createLogger, type Logger } from './telemetry/logger.ts';
import { createMetrics } from './telemetry/metrics.ts';
import { TRANSFER_COMMANDS, TRANSFER_HELP, runTransferCommand } from './transfer/cli.ts';

/** The commands: the first word that is no flag's value. */
const COMMANDS: ReadonlySet<string> = new Set(['start', 'migrate', ...TRANSFER_COMMANDS]);
/** Flags that stand alone (--quiet, --query.enabled): the next word is theirs only when it reads as a boolean. */
const SWITCHES = new Set<string>([...BOOL_KEYS, 'quiet']);
/** Flags that need a value: the options that are not booleans, and --config. */
const VALUED = new Set<string>([...OPTIONS.map((o) => o.key).filter((k) => !BOOL_KEYS.has(k)), 'config']);

/** Splits argv into the command, --config, --help and option flags (--key=value or --key value). */
export function parseCli(argv: string[]): { command: string; help: boolean; configFile?: string; flags: Record<string, string>; operands?: string[] } {
  const { values, positionals, tokens } = parseArgs({ args: argv, strict: false, allowPositionals: true, tokens: true });
  const flags: Record<string, string> = {};
  let configFile: string | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'option' || t.name === 'help' || t.name === 'h') continue;
    let value = t.value;
    if (value === undefined) {
      const next = tokens[i + 1];
      // `--flag value`: parseArgs (strict: false) sees the value as a positional; after a switch
      // (`--quiet import f.jsonl`) a word that is not a boolean is the command.
      if (next?.kind === 'positional' && (!SWITCHES.has(t.name) || BOOLEAN_WORD.test(next.value))) {
        value = next.value;
        positionals.splice(positionals.indexOf(next.value), 1);
        i++;
      } else if (next?.kind === 'option' && /^-\d/.test(argv[next.index]!)) {
        // `--limits.memorySoftBytes -1`: parseArgs reads a negative number as short options.
        value = argv[next.index]!;
        while (tokens[i + 1]?.index === next.index) i++;
      } else if (VALUED.has(t.name)) {
        // `--storage.sqlite.path --log.level=debug` would otherwise store into a file named "true".
        throw new ConfigError(`invalid configuration: --${t.name} needs a value (--${t.name}=VALUE or --${t.name} VALUE)`);
      } else if (BOOL_KEYS.has(t.name) && next?.kind === 'positional' && positionals[0] === next.value && !COMMANDS.has(next.value)) {
        // `--receiver.grpc.enabled off` (or no, yes): the word was meant as the option's value, and
        // was refused as "unknown command 'off'", which named neither the option nor what it takes.
        throw new ConfigError(`invalid configuration: --${t.name} ${JSON.stringify(next.value)}: expected true or false (--${t.name}=false), or the flag alone for true`);
      } else value = 'true';
    }
    // `--config="$CONFIG"` with the variable unset would otherwise run on the defaults, no file read.
    if (t.name === 'config' && value === '') throw new ConfigError('invalid configuration: --config needs a value (--config=FILE or --config FILE)');
    if (t.name === 'config') configFile = value;
    // A list option given again adds to it (--storage.clickhouse.urls per shard); any other, the last wins.
    else if (LIST_KEYS.has(t.name) && flags[t.name] !== undefined) flags[t.name] += `,${value}`;
    else flags[t.name] = value;
  }
  const out = { command: positionals[0] ?? 'start', help: values['help'] === true || values['h'] === true, flags };
  // Words after the command: the files of import; start and migrate take none (see main).
  const operands = positionals.slice(1);
  return { ...out, ...(configFile === undefined ? {} : { configFile }), ...(operands.length > 0 ? { operands } : {}) };
}

/** A signal repeated within this long of the first is its copy (npm forwarding a Ctrl-C the process group got too), not a second signal. */
const SAME_STOP_MS = 1000;

/**
 * The signals that stop the collector. SIGHUP too: the terminal of a collector started by hand
 * went away (an ssh session dropped); Node's default for it is to exit at once, losing what was
 * accepted but not yet written.
 */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

interface Stops {
  /** True, said in the log, when a stop came before the collector was started. */
  stopped(logger: Logger): boolean;
  /** From here on a stop drains this collector. */
  attach(collector: Collector, logger: Logger, ack: string): void;
}

/**
 * The stop signals bin/early-stop.js heard while this process loaded (started by bin/tracehouse.js),
 * in order; its listeners are removed.
 */
function takeEarlyStops(): string[] {
  const take = (globalThis as Record<symbol, unknown>)[Symbol.for('tracehouse.earlyStops')] as (() => string[]) | undefined;
  return take?.() ?? [];
}

/**
 * For a command other than start: a stop signal heard while this process loaded ends it by that
 * signal, as Node's default would have. A signal the kernel delivered during the loading may not
 * have reached early-stop.js's listener yet (module loading does not run the event loop): removing
 * that listener, the last of its signal, would drop it, and the command ran on. So a listener of
 * our own takes over first, until the event loop has polled (every signal delivered before now
 * has reached it), then the default is back.
 * As PID 1 (a container's: `docker run … tracehouse import`, a restore Job) there is no default:
 * the kernel ignores a signal PID 1 does not listen for, and import, copy or migrate ran on through
 * Ctrl-C and `docker stop` until the SIGKILL. There the listener stays and ends the command as the
 * default does elsewhere (exit 128 + the signal's number), once the command's own listeners have
 * run (export into a file removes its partial file first).
 */
async function endByEarlyStops(): Promise<void> {
  const pid1 = process.pid === 1;
  const reraise = (signal: NodeJS.Signals) => {
    if (pid1) {
      // After the command's own listeners, which come later (export's removes its partial file, then exits).
      setImmediate(() => process.exit(128 + osConstants.signals[signal]));
      return;
    }
    for (const s of STOP_SIGNALS) process.off(s, reraise);
    process.kill(process.pid, signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, reraise);
  const heard = takeEarlyStops();
  if (heard.length > 0) reraise(heard[0] as NodeJS.Signals);
  // Before the command does anything: a stop asked for while it loaded ends it with nothing done.
  await new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
  if (!pid1) for (const s of STOP_SIGNALS) process.off(s, reraise);
}

/** Listens for the stop signals from now on, and acts on those heard before (takeEarlyStops); a stop before attach() is kept for main to act on. */
function hearStops(): Stops {
  let first: { signal: string; atMs: number } | undefined;
  let running: { collector: Collector; logger: Logger; ack: string } | undefined;
  const stop = (signal: string) => {
    // Ctrl-C under `npm start` sends SIGINT to the whole process group, and npm forwards its own
    // copy to the collector: the same signal again within a second is that one stop, not a second.
    if (first && first.signal === signal && Date.now() - first.atMs < SAME_STOP_MS) return;
    // After a hang-up no one at a terminal asked twice: a session's SIGTERM that follows its
    // SIGHUP (or the reverse) is the same stop, and does not cut the drain short.
    if (first && (first.signal === 'SIGHUP' || signal === 'SIGHUP')) {
      running?.logger.info({ signal, first: first.signal }, 'already draining');
      return;
    }
    if (first && !running) {
      // Asked twice while still loading: nothing was accepted, nothing is lost.
      process.stderr.write(`tracehouse: second signal (${signal}) before start-up: exiting\n`);
      process.exit(1);
    }
    if (first && running) {
      // What the cut-short drain leaves unstored, and where it goes: an operator asked twice and
      // should know what that cost (the stop's own count, 'tracehouse stopped', never comes).
      const rows = running.collector.unstoredRows;
      const ack = running.ack;
      const fate = ack === 'durable' ? 'are kept in the write-ahead log and written at the next start' : ack === 'stored' ? 'were not acknowledged; their senders send them again' : 'are lost';
      running.logger.warn({ signal, unstoredRows: rows }, `second signal: exiting without draining; ${rows} accepted rows not yet stored ${fate}`);
      process.exit(1);
    }
    first = { signal, atMs: Date.now() };
    // Before the collector is built: main ends start-up at its next step (stopped()).
    if (!running) return;
    const { collector, logger } = running;
    logger.info({ signal }, 'shutting down: draining accepted data');
    collector.shutdown().then(
      // Non-zero when accepted data was given up: a supervisor should know nothing was lost.
      (droppedRows) => process.exit(droppedRows > 0 ? 3 : 0),
      (err: Error) => {
        logger.error({ err: err.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  for (const signal of STOP_SIGNALS) process.on(signal, () => stop(signal));
  // Only now, with these listening: a signal without any listener meanwhile would be lost.
  for (const signal of takeEarlyStops()) stop(signal);
  return {
    stopped: (logger) => {
      if (!first) return false;
      logger.info({ signal: first.signal }, 'stopped before start-up: nothing was accepted');
      return true;
    },
    attach: (collector, logger, ack) => {
      running = { collector, logger, ack };
      // A stop that came while it was being built was answered by stopped(); none can come between.
    },
  };
}

async function main(): Promise<number> {
  const cli = parseCli(process.argv.slice(2));
  // Heard from here on, and from Node's start when bin/tracehouse.js started this (early-stop.js):
  // a stop asked for while the collector loads (a pod deleted just after it was created) ends
  // start-up at its next step. Without a handler yet a signal killed the process,
  // and in a container, where the collector is PID 1 and a signal without a handler is ignored,
  // it was lost: the collector started, served, and was killed at the grace period's end.
  const early = cli.command === 'start' && !cli.help ? hearStops() : undefined;
  // Any other command ends by a stop signal as it would have without the early listener.
  if (!early) await endByEarlyStops();
  if (cli.help) {
    process.stdout.write(helpText() + '\n\n' + TRANSFER_HELP + '\n');
    return 0;
  }
  if ((TRANSFER_COMMANDS as readonly string[]).includes(cli.command)) {
    const argv = process.argv.slice(2);
    const at = argv.indexOf(cli.command);
    return runTransferCommand([cli.command, ...argv.slice(0, at), ...argv.slice(at + 1)]);
  }
  if (cli.command !== 'start' && cli.command !== 'migrate') {
    process.stderr.write(`tracehouse: unknown command '${cli.command}' (start, migrate, export, import, copy; see --help)\n`);
    return 2;
  }
  // `tracehouse migrate postgres.yaml` would otherwise migrate (or start) the default store, the
  // file never read: a configuration file is given with --config.
  if (cli.operands) {
    process.stderr.write(`tracehouse: ${cli.command} takes no argument (${JSON.stringify(cli.operands[0])}); give a configuration file with --config FILE (see --help)\n`);
    return 2;
  }
  const file = cli.configFile ?? process.env['TRACEHOUSE_CONFIG'];
  // A ConfigError, here or while the collector is built or started, ends main: see its handler.
  const config = loadConfig({ flags: cli.flags, env: process.env, ...(file ? { file } : {}), ...(file && cli.configFile === undefined ? { fileFrom: 'env TRACEHOUSE_CONFIG' } : {}) });
  const logger = createLogger(config['log.level']);
  warnStrayEnv(logger, process.env);

  if (cli.command === 'migrate') {
    const backend = await createBackend(config, { logger, metrics: createMetrics() });
    if (!backend.migrate) {
      logger.info({ backend: backend.name }, 'backend has no migrations');
      return 0;
    }
    let migrated: Migrated;
    try {
      // A Job started beside its database (a Helm pre-install hook) waits for it as the collector does.
      migrated = await whenReachable(() => backend.migrate!(), backend, { waitMs: config['storage.startWaitMs'], endpoint: storeEndpoint(config), logger });
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      // A database that cannot be reached or refuses: one line naming the store, not a stack.
      process.stderr.write(`tracehouse migrate: ${backend.name} migrations failed: ${(err as Error).message}\n`);
      return 1;
    } finally {
      await backend.shutdown().catch(() => undefined);
    }
    if (migrated === 'applied') logger.info({ backend: backend.name }, 'migrations applied');
    if (migrated === 'up_to_date') logger.info({ backend: backend.name }, 'schema up to date: no migrations needed');
    return 0;
  }

  if (early!.stopped(logger)) return 0;
  const collector = await Collector.create(config, { logger });
  // Built, nothing started: the store it may have opened is closed again.
  if (early!.stopped(logger)) {
    await collector.shutdown();
    return 0;
  }
  early!.attach(collector, logger, config['delivery.ack']);
  try {
    await collector.start();
  } catch (err) {
    await collector.shutdown().catch(() => {});
    if (err instanceof ConfigError) throw err;
    logger.fatal({ err: (err as Error).message }, 'start-up failed');
    // log.level = silent: the reason (a port taken, a log directory that is a file) is still told,
    // as a configuration error is, or the process ended with exit 1 and no word.
    if (!logger.isLevelEnabled('fatal')) process.stderr.write(`tracehouse: start-up failed: ${(err as Error).message}\n`);
    return 1;
  }
  return -1; // keep running
}

if (import.meta.main) {
  main().then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (err: Error) => {
      // A setting found wrong, when loaded or while the collector is built (a certificate or
      // tokens file, say): its message, exit 2, no stack.
      if (err instanceof ConfigError) {
        process.stderr.write(`tracehouse: ${err.message}\n`);
        process.exit(2);
      }
      process.stderr.write(`tracehouse: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
