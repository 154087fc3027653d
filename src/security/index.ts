// The security components of one collector, built from its configuration in one step so that a
// bad certificate or tokens file stops start-up before any port opens: each listener's TLS (or
// none), the token store (or none: one default tenant), and their reload metrics.
import type { Registry } from 'prom-client';
import { ConfigError, type Config } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { createSecurityMetrics, type SecurityMetrics } from './metrics.ts';
import { resolveTls, TLS_LISTENERS, TlsCertificates, type TlsConfig, type TlsListener } from './tls.ts';
import { TokenStore } from './tokens.ts';

/** The options security reads. */
export type SecurityConfig = TlsConfig & Pick<Config, 'auth.tokensFile' | 'auth.reloadCheckIntervalMs' | 'ops.requireAuth' | 'receiver.grpc.enabled' | 'receiver.http.enabled' | 'query.enabled'>;

/** Whether a listener serves at all (the operations port always does). */
function serves(config: SecurityConfig, listener: TlsListener): boolean {
  return listener === 'ops' || config[`${listener}.enabled`];
}

/** TLS per listener, the token store, and their lifecycle. */
export interface Security {
  /** A listener's certificates, or undefined when it serves plain. */
  tls: Readonly<Partial<Record<TlsListener, TlsCertificates>>>;
  /** Undefined without auth.tokensFile: no authentication, every request is the default tenant. */
  tokens: TokenStore | undefined;
  /** Whether /metrics needs a read token (ops.requireAuth; only allowed with tokens). */
  opsRequireAuth: boolean;
  metrics: SecurityMetrics;
  start(): void;
  shutdown(): void;
}

/** Loads and checks every certificate and the tokens file; throws ConfigError naming the key and path. */
export function createSecurity(config: SecurityConfig, logger: Logger, registry: Registry): Security {
  const tls: Partial<Record<TlsListener, TlsCertificates>> = {};
  const metrics = createSecurityMetrics(registry, () => Object.entries(tls).map(([listener, t]) => [listener, t.expiresAt()]));
  // Listeners serving the same files (tls.certFile, inherited) each re-read them on their own
  // timer: the first of them counts the reloads, so one rotation or one check of a refused file
  // counts once, not once per listener (the metric has no listener label).
  const counted = new Set<string>();
  for (const listener of TLS_LISTENERS) {
    const settings = resolveTls(config, listener);
    if (settings) {
      // Checked like any other (a bad file stops start-up), but a disabled listener's certificate
      // is not served: not watched, no expiry or handshake series naming a port that is not open.
      if (!serves(config, listener)) {
        new TlsCertificates(settings, logger);
        continue;
      }
      const files = JSON.stringify([settings.certFile.path, settings.keyFile.path, settings.clientCaFile?.path ?? '']);
      const counts = !counted.has(files);
      counted.add(files);
      tls[listener] = new TlsCertificates(
        settings,
        logger,
        (result) => (counts ? metrics.reloads.inc({ file: 'tls', result }) : undefined),
        () => metrics.tlsHandshakeFailures.inc({ listener }),
      );
    }
  }
  const file = config['auth.tokensFile'];
  const tokens = file === '' ? undefined : new TokenStore(file, config['auth.reloadCheckIntervalMs'], logger, (result) => metrics.reloads.inc({ file: 'tokens', result }));
  // Protecting /metrics with nothing to check tokens against would silently leave it open.
  if (config['ops.requireAuth'] && file === '') throw new ConfigError('invalid configuration: ops.requireAuth = true needs auth.tokensFile');
  // Every label set this configuration can count starts at 0 (as the collector's other counters
  // do): a series born at 1 shows no increase, so the first refusal or failed reload would be missed.
  const listeners = Object.keys(tls) as TlsListener[];
  // The gRPC port's handshakes are not counted (grpc-js keeps its server to itself).
  for (const listener of listeners) if (listener !== 'receiver.grpc') metrics.tlsHandshakeFailures.inc({ listener }, 0);
  // Refused tokens' series start at 0 in each listener's Authenticator.
  for (const [file, watched] of [['tls', listeners.length > 0], ['tokens', tokens !== undefined]] as const) {
    if (watched) for (const result of ['applied', 'failed'] as const) metrics.reloads.inc({ file, result }, 0);
  }
  let started = false;
  return {
    tls,
    tokens,
    opsRequireAuth: config['ops.requireAuth'],
    metrics,
    start() {
      if (started) return;
      started = true;
      for (const t of Object.values(tls)) t.start();
      tokens?.start();
    },
    shutdown() {
      started = false;
      for (const t of Object.values(tls)) t.shutdown();
      tokens?.shutdown();
    },
  };
}
