// Metrics of the security components, registered on the collector's registry when they are wired
// in. Labels are bounded: file kind and result, listener name, refusal reason (never a tenant or token).
import { Counter, Gauge, type Registry } from 'prom-client';

/** Creates the security metrics on a registry; certificates() lists the listeners serving TLS and when their certificates expire. */
export function createSecurityMetrics(registry: Registry, certificates: () => Iterable<[listener: string, expiresAt: number]> = () => []) {
  const reg = { registers: [registry] };
  return {
    reloads: new Counter({ name: 'tracehouse_security_reloads_total', help: 'Re-reads of changed TLS certificate or tokens files, applied or refused (previous files kept)', labelNames: ['file', 'result'] as const, ...reg }),
    tlsHandshakeFailures: new Counter({ name: 'tracehouse_tls_handshake_failures_total', help: "Connections closed because their TLS handshake failed: plain requests on a TLS port, missing or untrusted client certificates (OTLP/HTTP, read API and ops ports; the gRPC port's are not counted)", labelNames: ['listener'] as const, ...reg }),
    certificateExpiry: new Gauge({
      name: 'tracehouse_tls_certificate_expiry_timestamp_seconds',
      help: 'When the certificate a TLS listener serves expires (Unix seconds), followed through rotations',
      labelNames: ['listener'] as const,
      ...reg,
      // Read at each scrape, so a rotation shows at once.
      collect() {
        for (const [listener, expiresAt] of certificates()) this.set({ listener }, expiresAt);
      },
    }),
    refusedAuth: new Counter({ name: 'tracehouse_auth_refused_requests_total', help: 'Requests refused for a missing, malformed, unknown or under-scoped bearer token', labelNames: ['listener', 'reason'] as const, ...reg }),
  };
}

export type SecurityMetrics = ReturnType<typeof createSecurityMetrics>;
