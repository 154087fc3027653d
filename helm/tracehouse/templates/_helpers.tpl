{{/* Names and labels. */}}
{{- define "tracehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tracehouse.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tracehouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tracehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tracehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selects the ingest pods only (not the migration Job's). */}}
{{- define "tracehouse.ingestSelectorLabels" -}}
{{ include "tracehouse.selectorLabels" . }}
app.kubernetes.io/component: ingest
{{- end }}

{{- define "tracehouse.labels" -}}
helm.sh/chart: {{ include "tracehouse.chart" . }}
{{ include "tracehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tracehouse
{{- end }}

{{- define "tracehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tracehouse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository:tag@digest when image.digest pins the exact image. */}}
{{- define "tracehouse.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
A configuration value by dotted key ("storage.backend"), looked up in .Values.config as the
collector flattens YAML: a key is found flat, nested by its dots, or flat below any section
(storage: {"postgres.url": x}), the spellings the values schema accepts; the Tracehouse default
otherwise. Templates cannot return values, so the result is stored, with its type, under "value"
in the dict given last:
  {{- $r := dict }}{{- include "tracehouse.cfg" (list . "shutdown.timeoutMs" 30000 $r) }}{{ $r.value }}
*/}}
{{- define "tracehouse.cfg" -}}
{{- $root := index . 0 }}
{{- $out := index . 3 }}
{{- $_ := set $out "value" (index . 2) }}
{{- include "tracehouse.cfgFind" (list ($root.Values.config | default dict) (index . 1) $out) }}
{{- end }}

{{/* Sets "value" in the dict given last when the map holds the dotted key, flat or below any of its sections. */}}
{{- define "tracehouse.cfgFind" -}}
{{- $map := index . 0 }}
{{- $key := index . 1 }}
{{- $out := index . 2 }}
{{- if hasKey $map $key }}
{{- $_ := set $out "value" (index $map $key) }}
{{- else }}
{{- range $k, $v := $map }}
{{- if and (kindIs "map" $v) (hasPrefix (printf "%s." $k) $key) }}
{{- include "tracehouse.cfgFind" (list $v (trimPrefix (printf "%s." $k) $key) $out) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* storage.backend as configured. */}}
{{- define "tracehouse.backend" -}}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list . "storage.backend" "sqlite" $r) }}
{{- $r.value }}
{{- end }}

{{/*
The directories of the chdb:// URLs in storage.clickhouse.urls, as the collector's URL parser
reads them (any case of the scheme, chdb:/dir and chdb:dir too; no ?query or #fragment), as a list
under "value" in the dict given last: (list . $out).
*/}}
{{- define "tracehouse.chdbDirs" -}}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list (index . 0) "storage.clickhouse.urls" (list "http://localhost:8123") $r) }}
{{- $urls := $r.value }}
{{- if kindIs "string" $urls }}
{{- $urls = splitList "," $urls }}
{{- end }}
{{- $dirs := list }}
{{- range $urls }}
{{- $url := trim (toString .) }}
{{- if regexMatch "^(?i)chdb:" $url }}{{ $dirs = append $dirs (regexReplaceAll "[?#].*$" (regexReplaceAll "^(?i)chdb:(//)?" $url "") "") }}{{ end }}
{{- end }}
{{- $_ := set (index . 1) "value" $dirs }}
{{- end }}

{{/* "true" when storage.clickhouse.urls names the in-process engine (chdb://). */}}
{{- define "tracehouse.usesChdb" -}}
{{- $d := dict }}
{{- include "tracehouse.chdbDirs" (list . $d) }}
{{- if and (eq (include "tracehouse.backend" .) "clickhouse") (gt (len $d.value) 0) }}true{{ end }}
{{- end }}

{{/* "true" when the data lives inside the pod: sqlite, or clickhouse on chdb://. One writer only. */}}
{{- define "tracehouse.embedded" -}}
{{- if or (eq (include "tracehouse.backend" .) "sqlite") (eq (include "tracehouse.usesChdb" .) "true") }}true{{ end }}
{{- end }}

{{/* "true" when /app/data is a PersistentVolumeClaim. */}}
{{- define "tracehouse.persistent" -}}
{{- if and .Values.persistence.enabled (eq (include "tracehouse.embedded" .) "true") }}true{{ end }}
{{- end }}

{{/*
The directories one collector holds, as (list option path) under "value" in the dict given last:
the embedded store's, and the write-ahead log's when acknowledgements are durable as config shows
them (delivery.ack or delivery.walDir set in extraEnv or extraArgs are not judged).
*/}}
{{- define "tracehouse.heldPaths" -}}
{{- $root := index . 0 }}
{{- with $root }}
{{- $backend := include "tracehouse.backend" . }}
{{- $paths := list }}
{{- $sqlite := dict }}{{- include "tracehouse.cfg" (list . "storage.sqlite.path" "./data/tracehouse.db" $sqlite) }}
{{- $sqlitePath := toString $sqlite.value }}
{{- if eq $backend "sqlite" }}
{{- if not (hasPrefix "file:" $sqlitePath) }}{{ $paths = append $paths (list "storage.sqlite.path" $sqlitePath) }}{{ end }}
{{- else if eq (include "tracehouse.usesChdb" .) "true" }}
{{- $d := dict }}{{- include "tracehouse.chdbDirs" (list . $d) }}
{{- range $d.value }}{{ $paths = append $paths (list "storage.clickhouse.urls" .) }}{{ end }}
{{- end }}
{{- $ack := dict }}{{- include "tracehouse.cfg" (list . "delivery.ack" "" $ack) }}
{{- $ackValue := lower (trim (toString $ack.value)) }}
{{- $outside := false }}
{{- range .Values.extraEnv }}{{ if has (toString .name) (list "TRACEHOUSE_DELIVERY_ACK" "TRACEHOUSE_DELIVERY_WAL_DIR") }}{{ $outside = true }}{{ end }}{{ end }}
{{- range .Values.extraArgs }}{{ if or (hasPrefix "--delivery.ack" (toString .)) (hasPrefix "--delivery.walDir" (toString .)) }}{{ $outside = true }}{{ end }}{{ end }}
{{- $durable := ternary (ne $backend "memory") (eq $ackValue "durable") (eq $ackValue "") }}
{{- if and $durable (not $outside) (ne (include "tracehouse.ackStored" .) "true") }}
{{- $dir := dict }}{{- include "tracehouse.cfg" (list . "delivery.walDir" "" $dir) }}
{{- $wal := toString $dir.value }}
{{- if eq $wal "" }}
{{- if not (hasPrefix "file:" $sqlitePath) }}{{ $paths = append $paths (list "delivery.walDir" (printf "%s/wal" (dir $sqlitePath))) }}{{ end }}
{{- else }}
{{- $paths = append $paths (list "delivery.walDir" $wal) }}
{{- end }}
{{- end }}
{{- $_ := set (index $ 1) "value" $paths }}
{{- end }}
{{- end }}

{{/*
The option of tracehouse.heldPaths whose directory lies on a PersistentVolumeClaim, or "". The
claim is the chart's data volume or a volume of extraVolumes; every pod of the Deployment mounts
the same claim, and the store and the log's directory lock take one collector, so one pod runs at
a time (Recreate, one replica).
*/}}
{{- define "tracehouse.claimHeld" -}}
{{- $p := dict }}{{- include "tracehouse.heldPaths" (list . $p) }}
{{- $paths := $p.value }}
{{- /* Each mount and whether its volume is a claim; a path is on the longest mount holding it. */}}
{{- $mounts := list (list "/app/data" (eq (include "tracehouse.persistent" .) "true")) }}
{{- range $m := .Values.extraVolumeMounts }}
{{- $claim := false }}
{{- range $.Values.extraVolumes }}{{ if and (eq (toString .name) (toString $m.name)) (hasKey . "persistentVolumeClaim") }}{{ $claim = true }}{{ end }}{{ end }}
{{- if $m.mountPath }}{{ $mounts = append $mounts (list (clean (toString $m.mountPath)) $claim) }}{{ end }}
{{- end }}
{{- $held := "" }}
{{- range $paths }}
{{- $path := index . 1 }}
{{- $abs := clean (ternary $path (printf "/app/%s" $path) (hasPrefix "/" $path)) }}
{{- $best := "" }}{{- $claim := false }}
{{- range $mounts }}
{{- $at := index . 0 }}
{{- if and (or (eq $abs $at) (hasPrefix (printf "%s/" (trimSuffix "/" $at)) $abs)) (gt (len $at) (len $best)) }}{{ $best = $at }}{{ $claim = index . 1 }}{{ end }}
{{- end }}
{{- if and $claim (eq $held "") }}{{ $held = index . 0 }}{{ end }}
{{- end }}
{{- $held }}
{{- end }}

{{/*
The names of the volumes of extraVolumes that are claims holding a path of tracehouse.heldPaths
(the ingest pod's store or write-ahead log), as a list under "value" in the dict given last. The
migration Job leaves them out: a pre-upgrade hook runs while the old ingest pod holds them.
*/}}
{{- define "tracehouse.heldClaimVolumes" -}}
{{- $root := index . 0 }}
{{- $names := list }}
{{- with $root }}
{{- $p := dict }}{{- include "tracehouse.heldPaths" (list . $p) }}
{{- /* Each mount: (path, volume name of extraVolumes or "" for the chart's data volume, claim). */}}
{{- $mounts := list (list "/app/data" "" false) }}
{{- range $m := .Values.extraVolumeMounts }}
{{- $claim := false }}
{{- range $root.Values.extraVolumes }}{{ if and (eq (toString .name) (toString $m.name)) (hasKey . "persistentVolumeClaim") }}{{ $claim = true }}{{ end }}{{ end }}
{{- if $m.mountPath }}{{ $mounts = append $mounts (list (clean (toString $m.mountPath)) (toString $m.name) $claim) }}{{ end }}
{{- end }}
{{- range $p.value }}
{{- $path := index . 1 }}
{{- $abs := clean (ternary $path (printf "/app/%s" $path) (hasPrefix "/" $path)) }}
{{- $best := "" }}{{- $name := "" }}{{- $claim := false }}
{{- range $mounts }}
{{- $at := index . 0 }}
{{- if and (or (eq $abs $at) (hasPrefix (printf "%s/" (trimSuffix "/" $at)) $abs)) (gt (len $at) (len $best)) }}{{ $best = $at }}{{ $name = index . 1 }}{{ $claim = index . 2 }}{{ end }}
{{- end }}
{{- if and $claim (ne $name "") }}{{ $names = append $names $name }}{{ end }}
{{- end }}
{{- end }}
{{- $_ := set (index . 1) "value" $names }}
{{- end }}

{{- define "tracehouse.pvcName" -}}
{{- default (printf "%s-data" (include "tracehouse.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* Container port of a listen option ("host:port"), from config or the Tracehouse default. */}}
{{- define "tracehouse.port" -}}
{{- $root := index . 0 }}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list $root (index . 1) (index . 2) $r) }}
{{- /* Decimal, as the collector reads it: `containerPort: 04317` is octal 2255 to Kubernetes' YAML. */}}
{{- regexReplaceAll "^0+([0-9])" (regexReplaceAll "^.*:" (toString $r.value) "") "${1}" }}
{{- end }}

{{/* "true" when a component is enabled in config (off as the collector reads it: false or 0, any case). */}}
{{- define "tracehouse.enabled" -}}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list (index . 0) (index . 1) true $r) }}
{{- if not (has (lower (toString $r.value)) (list "false" "0")) }}true{{ end }}
{{- end }}

{{/* "true" when the migration Job runs: postgres or clickhouse with autoMigrate false. */}}
{{- define "tracehouse.migrationJob" -}}
{{- $backend := include "tracehouse.backend" . }}
{{- if or (eq $backend "postgres") (eq $backend "clickhouse") }}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list . (printf "storage.%s.autoMigrate" $backend) true $r) }}
{{- /* Off as the collector reads it: false or 0, any case. */}}
{{- if has (lower (toString $r.value)) (list "false" "0") }}true{{ end }}
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds: longer than shutdown.timeoutMs, so the drain is never cut short. */}}
{{- define "tracehouse.terminationGrace" -}}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list . "shutdown.timeoutMs" 30000 $r) }}
{{- /* A string as the collector reads it: spaces around it dropped, decimal with any leading zero
(int64 read " 120000" as 0 and "0120000" as octal, a grace period shorter than the drain). */}}
{{- $ms := $r.value }}
{{- if kindIs "string" $ms }}{{ $ms = regexReplaceAll "^(-?)0+([0-9])" (trim $ms) "${1}${2}" }}{{ end }}
{{- $drainSeconds := div (add (int64 $ms) 999) 1000 }}
{{- $min := add $drainSeconds (int64 .Values.preStopSleepSeconds) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $min (int64 .Values.terminationGraceExtraSeconds) }}
{{- else if le (int64 .Values.terminationGracePeriodSeconds) $min }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed shutdown.timeoutMs (%d s) + preStopSleepSeconds (%d s), or Kubernetes kills the pod before the write queue is drained" (int64 .Values.terminationGracePeriodSeconds) $drainSeconds (int64 .Values.preStopSleepSeconds)) }}
{{- else }}
{{- int64 .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Values the chart refuses. Included by the Deployment. */}}
{{- define "tracehouse.validate" -}}
{{- $backend := include "tracehouse.backend" . }}
{{- if not (has $backend (list "sqlite" "memory" "postgres" "clickhouse")) }}
{{- fail (printf "config.storage.backend: %q is not one of sqlite, memory, postgres, clickhouse" $backend) }}
{{- end }}
{{- if eq (include "tracehouse.embedded" .) "true" }}
{{- $what := ternary "sqlite" "clickhouse on chdb:// (the in-process engine)" (eq $backend "sqlite") }}
{{- /* The data volume is /app/data (the image's working directory is /app): a store elsewhere lives in the container and goes with it. */}}
{{- $paths := list }}
{{- if eq $backend "sqlite" }}
{{- $p := dict }}{{- include "tracehouse.cfg" (list . "storage.sqlite.path" "./data/tracehouse.db" $p) }}
{{- $sqlite := toString $p.value }}
{{- /* The collector refuses a database in memory (each of its threads would open one of its own): said here, not by a pod failing at start. */}}
{{- if or (has $sqlite (list "" ":memory:")) (regexMatch "^(?i)file:(:memory:|[^?#]*\\?([^#]*&)?mode=memory([&#]|$))" $sqlite) }}
{{- fail (printf "config.storage.sqlite.path: %q names no file: the collector's write and read threads would each open a database of their own, and it refuses to start; give a path under ./data/, or use storage.backend: memory" $sqlite) }}
{{- end }}
{{- if regexMatch "^(?i)file:[^?#]*\\?([^#]*&)?cache=shared([&#]|$)" $sqlite }}
{{- fail (printf "config.storage.sqlite.path: %q: cache=shared makes the collector's reads fail when they meet a write, and it refuses to start; leave it out" $sqlite) }}
{{- end }}
{{- /* file: URIs are SQLite's own spelling of a path; not checked here. */}}
{{- if not (hasPrefix "file:" $sqlite) }}{{ $paths = append $paths (list "storage.sqlite.path" $sqlite) }}{{ end }}
{{- else }}
{{- $d := dict }}{{- include "tracehouse.chdbDirs" (list . $d) }}
{{- range $d.value }}{{ $paths = append $paths (list "storage.clickhouse.urls" .) }}{{ end }}
{{- end }}
{{- /* A volume of the operator's own (extraVolumeMounts: a PVC of another class, say) keeps it too. */}}
{{- $mounts := list "/app/data" }}
{{- range .Values.extraVolumeMounts }}{{ if .mountPath }}{{ $mounts = append $mounts (clean (toString .mountPath)) }}{{ end }}{{ end }}
{{- range $paths }}
{{- $path := index . 1 }}
{{- $abs := clean (ternary $path (printf "/app/%s" $path) (hasPrefix "/" $path)) }}
{{- $kept := false }}
{{- range $mounts }}{{ if or (eq $abs .) (hasPrefix (printf "%s/" (trimSuffix "/" .)) $abs) }}{{ $kept = true }}{{ end }}{{ end }}
{{- if not $kept }}
{{- fail (printf "config.%s: %q is outside /app/data, the data volume (and any extraVolumeMounts): the store would live in the container and be lost with the pod. Keep it under ./data/ (or /app/data/)" (index . 0) $path) }}
{{- end }}
{{- end }}
{{- if gt (int64 .Values.replicaCount) 1 }}
{{- fail (printf "replicaCount=%d with %s: the store is a single-writer file inside the pod, so run one replica. To scale out, set config.storage.backend to postgres or clickhouse (http:// URLs)" (int64 .Values.replicaCount) $what) }}
{{- end }}
{{- if eq (include "tracehouse.migrationJob" .) "true" }}
{{- fail "config.storage.clickhouse.autoMigrate: false with chdb:// URLs: the store is a directory on the ingest pod's own volume, which the pre-install/pre-upgrade migration Job cannot reach (the pod then refuses the unmigrated store); leave autoMigrate on, the one pod migrates it at start-up" }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- fail (printf "autoscaling.enabled with %s: the store is a single-writer file inside the pod, so run one replica. To scale out, set config.storage.backend to postgres or clickhouse (http:// URLs)" $what) }}
{{- end }}
{{- end }}
{{- /* The durable write-ahead log too: the root filesystem is read-only, and a log in the container would go with it. */}}
{{- $held := dict }}{{- include "tracehouse.heldPaths" (list . $held) }}
{{- $walMounts := list "/app/data" }}
{{- range .Values.extraVolumeMounts }}{{ if .mountPath }}{{ $walMounts = append $walMounts (clean (toString .mountPath)) }}{{ end }}{{ end }}
{{- range $held.value }}
{{- if eq (index . 0) "delivery.walDir" }}
{{- $path := index . 1 }}
{{- $abs := clean (ternary $path (printf "/app/%s" $path) (hasPrefix "/" $path)) }}
{{- $kept := false }}
{{- range $walMounts }}{{ if or (eq $abs .) (hasPrefix (printf "%s/" (trimSuffix "/" .)) $abs) }}{{ $kept = true }}{{ end }}{{ end }}
{{- if not $kept }}
{{- fail (printf "config.delivery.walDir: %q is outside /app/data (and any extraVolumeMounts): with delivery.ack = durable the write-ahead log holds acknowledged rows, and the container's read-only root filesystem takes no file (writable, the log would be lost with the container). Put it on a volume, or leave it empty" $path) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* The Deployment's strategy for such a claim is Recreate; one of the values' own that starts the
new pod beside the old (RollingUpdate) leaves that pod failing on the log's lock and the rollout unfinished. */}}
{{- $held := include "tracehouse.claimHeld" . }}
{{- if and (not $held) (eq (include "tracehouse.persistent" .) "true") }}{{ $held = ternary "storage.sqlite.path" "storage.clickhouse.urls" (eq $backend "sqlite") }}{{ end }}
{{- if and $held .Values.updateStrategy (ne (toString .Values.updateStrategy.type) "Recreate") }}
{{- fail (printf "updateStrategy: %s with config.%s on a PersistentVolumeClaim: the new pod would start beside the old one, which holds the store and the write-ahead log's lock (one collector at a time), fail, and the rollout would never finish. Leave updateStrategy empty (the chart then uses Recreate) or set type: Recreate" (toJson .Values.updateStrategy) $held) }}
{{- end }}
{{- with include "tracehouse.claimHeld" . }}
{{- if or (gt (int64 $.Values.replicaCount) 1) $.Values.autoscaling.enabled }}
{{- fail (printf "config.%s is on a PersistentVolumeClaim, which every replica of the Deployment mounts, and one collector at a time can use it (the write-ahead log's directory lock, the store's single writer): run one replica without autoscaling, or keep delivery.walDir on no claim (with postgres or clickhouse the chart acknowledges on commit: delivery.ack = stored)" .) }}
{{- end }}
{{- end }}
{{- /* The collector is given these only with their backend: another backend (the default, sqlite, when
storage.backend was forgotten) would install and run, storing into it, the credential ignored. Not quoted: secrets. */}}
{{- range $b := list (list "postgres" "postgresUrl") (list "clickhouse" "clickhousePassword") }}
{{- if and (index $.Values.secrets (index $b 1)) (ne $backend (index $b 0)) }}
{{- fail (printf "secrets.%s: set while config.storage.backend is %s, which the collector stores into, the %s credential unused: set config.storage.backend: %s, or leave secrets.%s empty" (index $b 1) $backend (index $b 0) (index $b 0) (index $b 1)) }}
{{- end }}
{{- end }}
{{- if and .Values.secrets.existingSecret (or .Values.secrets.postgresUrl .Values.secrets.clickhousePassword) }}
{{- fail "secrets: set either secrets.existingSecret or secrets.postgresUrl / secrets.clickhousePassword, not both" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int64 .Values.autoscaling.minReplicas) (int64 .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas is greater than autoscaling.maxReplicas" }}
{{- end }}
{{- /*
Two enabled listeners on one port: the collector refuses them and the pod exits 2 at every start
(and the pod would declare one containerPort twice, the Service sending both ports to it). Refused
here by the port alone: the pod's address reaches any listener not on loopback.
*/}}
{{- $ports := dict }}
{{- range $l := list (list "receiver.grpc" "0.0.0.0:4317") (list "receiver.http" "0.0.0.0:4318") (list "query" "0.0.0.0:16686") (list "ops" "0.0.0.0:8888") }}
{{- $name := index $l 0 }}
{{- if or (eq $name "ops") (eq (include "tracehouse.enabled" (list $ (printf "%s.enabled" $name))) "true") }}
{{- $key := printf "%s.listen" $name }}
{{- /* Not set in config (the schema refuses an empty address): the chart's default, said so. */}}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list $ $key "" $r) }}
{{- $shown := ternary (printf "config.%s = %q (the chart's default)" $key (index $l 1)) (printf "config.%s = %q" $key (toString $r.value)) (eq (toString $r.value) "") }}
{{- $port := include "tracehouse.port" (list $ $key (index $l 1)) }}
{{- with get $ports $port }}
{{- fail (printf "%s and %s are the same port %s: the collector refuses two listeners on one port and the pod would exit at every start; give each listener its own port" . $shown $port) }}
{{- end }}
{{- $_ := set $ports $port $shown }}
{{- end }}
{{- end }}
{{- /*
The options the manifests are rendered from (README, "The chart reads a few options"): set in
extraArgs or extraEnv, which override the file inside the pod, the pod would do one thing and its
manifests another (a grace period shorter than the drain, probes speaking HTTP to a port the
environment gave TLS, a ServiceMonitor without the token the environment requires, Service ports
to nothing, a PersistentVolumeClaim for a store elsewhere).
*/}}
{{- $read := dict "shutdown.timeoutMs" "terminationGracePeriodSeconds" "storage.backend" "the data volume and replica count" "storage.clickhouse.urls" "the data volume and replica count" "storage.sqlite.path" "the data volume check" "storage.postgres.autoMigrate" "the migration Job" "storage.clickhouse.autoMigrate" "the migration Job" "ops.requireAuth" "the ServiceMonitor's token" "tls.certFile" "the probes' and Services' schemes" }}
{{- range $l := list "receiver.grpc" "receiver.http" "query" "ops" }}
{{- $_ := set $read (printf "%s.listen" $l) "container ports and probes" }}
{{- $_ := set $read (printf "%s.tls.mode" $l) "the probes' and Services' schemes" }}
{{- $_ := set $read (printf "%s.tls.certFile" $l) "the probes' and Services' schemes" }}
{{- end }}
{{- range $l := list "receiver.grpc" "receiver.http" "query" }}
{{- $_ := set $read (printf "%s.enabled" $l) "the Service's ports" }}
{{- end }}
{{- range $key, $what := $read }}
{{- $env := printf "TRACEHOUSE_%s" (upper (replace "." "_" (regexReplaceAll "([a-z0-9])([A-Z])" $key "${1}_${2}"))) }}
{{- range $.Values.extraArgs }}
{{- if or (eq (toString .) (printf "--%s" $key)) (hasPrefix (printf "--%s=" $key) (toString .)) }}
{{- fail (printf "extraArgs: %q sets %s, which the chart renders %s from: set config.%s instead" (toString .) $key $what $key) }}
{{- end }}
{{- end }}
{{- range $.Values.extraEnv }}
{{- if eq (toString .name) $env }}
{{- fail (printf "extraEnv: %s sets %s, which the chart renders %s from: set config.%s instead" $env $key $what $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- $_ := include "tracehouse.terminationGrace" . }}
{{- /* The chart's Secrets set these files; a second value in config would be silently overridden. */}}
{{- $files := list }}
{{- if .Values.tls.existingSecret }}{{ $files = list "tls.certFile" "tls.keyFile" }}{{ end }}
{{- /* The client CA comes from the Secret only with tls.clientCaKey; else config may name one (extraVolumes). */}}
{{- if and .Values.tls.existingSecret .Values.tls.clientCaKey }}{{ $files = append $files "tls.clientCaFile" }}{{ end }}
{{- if .Values.auth.existingSecret }}{{ $files = append $files "auth.tokensFile" }}{{ end }}
{{- range $k := $files }}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list $ $k "" $r) }}
{{- if $r.value }}
{{- fail (printf "config.%s: %q is set as well as %s.existingSecret, which points it at the Secret's file: set one of them" $k (toString $r.value) (index (splitList "." $k) 0)) }}
{{- end }}
{{- end }}
{{- /* The collector refuses ops.requireAuth with no tokens file to check tokens against: said here, not by a pod failing at start. extraEnvFrom is not seen into. */}}
{{- $requireAuth := dict }}{{- include "tracehouse.cfg" (list . "ops.requireAuth" false $requireAuth) }}
{{- if and (has (lower (toString $requireAuth.value)) (list "true" "1")) (not .Values.auth.existingSecret) (not .Values.extraEnvFrom) }}
{{- $tokens := dict }}{{- include "tracehouse.cfg" (list . "auth.tokensFile" "" $tokens) }}
{{- $named := ne (toString $tokens.value) "" }}
{{- range .Values.extraEnv }}{{ if and (eq (toString .name) "TRACEHOUSE_AUTH_TOKENS_FILE") (or .valueFrom (ne (toString .value) "")) }}{{ $named = true }}{{ end }}{{ end }}
{{- range .Values.extraArgs }}{{ if hasPrefix "--auth.tokensFile" (toString .) }}{{ $named = true }}{{ end }}{{ end }}
{{- if not $named }}
{{- fail "config.ops.requireAuth: true needs tokens to check /metrics requests against, and there is no tokens file (auth.existingSecret, or config.auth.tokensFile): the collector refuses to start without one. Set auth.existingSecret, or leave ops.requireAuth off" }}
{{- end }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.serviceMonitor.tokenSecret.name) }}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list . "ops.requireAuth" false $r) }}
{{- if has (lower (toString $r.value)) (list "true" "1") }}
{{- fail "serviceMonitor.tokenSecret.name: empty while config ops.requireAuth makes /metrics answer 401 without a token: every scrape would fail. Name a Secret in the ServiceMonitor's namespace whose key serviceMonitor.tokenSecret.key holds a token with the read scope" }}
{{- end }}
{{- end }}
{{- if eq (include "tracehouse.testPod" .) "true" }}
{{- if and .Values.auth.existingSecret (not .Values.tests.tokenSecret.name) }}
{{- fail "tests.tokenSecret.name: empty while auth.existingSecret is set: the helm test pod needs a token with the ingest and read scopes (a Secret you manage and its key, tests.tokenSecret.key), or set tests.enabled=false" }}
{{- end }}
{{- if and .Values.tls.existingSecret .Values.tls.clientCaKey (not .Values.tests.clientCertSecret) }}
{{- fail "tests.clientCertSecret: empty while tls.clientCaKey requires client certificates: the helm test pod needs a kubernetes.io/tls Secret with a client certificate signed by that CA, or set tests.enabled=false" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret holding database credentials, or "" when there is none. */}}
{{- define "tracehouse.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if or .Values.secrets.postgresUrl .Values.secrets.clickhousePassword }}
{{- include "tracehouse.fullname" . }}
{{- end }}
{{- end }}

{{/* Secret data (chart-managed). */}}
{{- define "tracehouse.secretData" -}}
{{- if .Values.secrets.postgresUrl }}
{{ .Values.secrets.postgresUrlKey }}: {{ .Values.secrets.postgresUrl | b64enc | quote }}
{{- end }}
{{- if .Values.secrets.clickhousePassword }}
{{ .Values.secrets.clickhousePasswordKey }}: {{ .Values.secrets.clickhousePassword | b64enc | quote }}
{{- end }}
{{- end }}

{{/*
Container env: database credentials from the Secret named by (list . secretName), then extraEnv.
The migration Job passes its own copy of the chart-managed Secret.
*/}}
{{- define "tracehouse.env" -}}
{{- $root := index . 0 }}
{{- $secret := index . 1 }}
{{- $backend := include "tracehouse.backend" $root }}
{{- $s := $root.Values.secrets }}
{{- /*
Listen addresses as configured or on all interfaces: the collector's own defaults bind loopback,
which a Service cannot reach. As environment variables they also override the image's.
*/}}
{{- range $l := list (list "receiver.grpc.listen" "0.0.0.0:4317" "TRACEHOUSE_RECEIVER_GRPC_LISTEN") (list "receiver.http.listen" "0.0.0.0:4318" "TRACEHOUSE_RECEIVER_HTTP_LISTEN") (list "query.listen" "0.0.0.0:16686" "TRACEHOUSE_QUERY_LISTEN") (list "ops.listen" "0.0.0.0:8888" "TRACEHOUSE_OPS_LISTEN") }}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list $root (index $l 0) (index $l 1) $r) }}
- name: {{ index $l 2 }}
  value: {{ toString $r.value | quote }}
{{- end }}
{{- if eq (include "tracehouse.grpcAgeSet" $root) "true" }}
- name: TRACEHOUSE_RECEIVER_GRPC_MAX_CONNECTION_AGE_MS
  value: "300000"
{{- end }}
{{- if eq (include "tracehouse.ackStored" $root) "true" }}
- name: TRACEHOUSE_DELIVERY_ACK
  value: stored
{{- end }}
{{- if and $secret (eq $backend "postgres") (or $s.existingSecret $s.postgresUrl) }}
- name: TRACEHOUSE_STORAGE_POSTGRES_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $s.postgresUrlKey }}
{{- end }}
{{- if and $secret (eq $backend "clickhouse") (or $s.existingSecret $s.clickhousePassword) }}
- name: TRACEHOUSE_STORAGE_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $s.clickhousePasswordKey }}
{{- end }}
{{- if gt (len .) 2 }}
{{- include "tracehouse.securityEnv" $root }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
"true" when the chart closes gRPC connections by age (5 minutes): several pods (replicaCount > 1
or the HPA) and no receiver.grpc.maxConnectionAgeMs in config, extraEnv or extraArgs. A gRPC
client keeps its one connection for good and a Service balances connections, not calls: without
it the clients connected before a pod was added never reach that pod.
*/}}
{{- define "tracehouse.grpcAgeSet" -}}
{{- $age := dict }}{{- include "tracehouse.cfg" (list . "receiver.grpc.maxConnectionAgeMs" "" $age) }}
{{- $set := ne (toString $age.value) "" }}
{{- range .Values.extraEnv }}{{ if eq (toString .name) "TRACEHOUSE_RECEIVER_GRPC_MAX_CONNECTION_AGE_MS" }}{{ $set = true }}{{ end }}{{ end }}
{{- range .Values.extraArgs }}{{ if hasPrefix "--receiver.grpc.maxConnectionAgeMs" (toString .) }}{{ $set = true }}{{ end }}{{ end }}
{{- if and (not $set) (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}true{{ end }}
{{- end }}

{{/*
"true" when the chart sets delivery.ack = stored: PostgreSQL or ClickHouse over http(s), where
/app/data is an emptyDir. The collector's default, durable, acknowledges rows once they are in its
write-ahead log (a wal directory in /app/data) and keeps there at a stop what the database did not
take, for the next start: the next pod starts on an empty emptyDir, so those rows would be lost.
Not when config, extraEnv or extraArgs choose delivery.ack or delivery.walDir.
*/}}
{{- define "tracehouse.ackStored" -}}
{{- $backend := include "tracehouse.backend" . }}
{{- $ack := dict }}{{- include "tracehouse.cfg" (list . "delivery.ack" "" $ack) }}
{{- $dir := dict }}{{- include "tracehouse.cfg" (list . "delivery.walDir" "" $dir) }}
{{- $set := false }}
{{- range .Values.extraEnv }}
{{- if has (toString .name) (list "TRACEHOUSE_DELIVERY_ACK" "TRACEHOUSE_DELIVERY_WAL_DIR") }}{{ $set = true }}{{ end }}
{{- end }}
{{- range .Values.extraArgs }}
{{- if or (hasPrefix "--delivery.ack" (toString .)) (hasPrefix "--delivery.walDir" (toString .)) }}{{ $set = true }}{{ end }}
{{- end }}
{{- if and (has $backend (list "postgres" "clickhouse")) (ne (include "tracehouse.usesChdb" .) "true") (eq (toString $ack.value) "") (eq (toString $dir.value) "") (not $set) }}true{{ end }}
{{- end }}

{{/* Where the ingest pods mount tls.existingSecret and auth.existingSecret (folders, so updates reach them). */}}
{{- define "tracehouse.tlsDir" -}}/etc/tracehouse-tls{{- end }}
{{- define "tracehouse.authDir" -}}/etc/tracehouse-auth{{- end }}

{{/*
The collector's TLS and tokens files from the Secrets the chart mounts (the ingest pods only: the
migration Job serves nothing). The ops port stays plain unless config sets ops.tls.mode, whether
the certificate comes from tls.existingSecret or from config: the kubelet's probes and Prometheus
reach it over HTTP.
*/}}
{{- define "tracehouse.securityEnv" -}}
{{- $t := .Values.tls }}
{{- if $t.existingSecret }}
- name: TRACEHOUSE_TLS_CERT_FILE
  value: {{ printf "%s/%s" (include "tracehouse.tlsDir" .) $t.certKey | quote }}
- name: TRACEHOUSE_TLS_KEY_FILE
  value: {{ printf "%s/%s" (include "tracehouse.tlsDir" .) $t.keyKey | quote }}
{{- if $t.clientCaKey }}
- name: TRACEHOUSE_TLS_CLIENT_CA_FILE
  value: {{ printf "%s/%s" (include "tracehouse.tlsDir" .) $t.clientCaKey | quote }}
{{- end }}
{{- end }}
{{- /* Also with a certificate named in config (extraVolumes): the ops port would inherit it. */}}
{{- $r := dict }}
{{- include "tracehouse.cfg" (list . "ops.tls.mode" "" $r) }}
{{- $cert := dict }}
{{- include "tracehouse.cfg" (list . "tls.certFile" "" $cert) }}
{{- /* Or one of the ops port's own (ops.tls.certFile; "inherit" is the global one). */}}
{{- $opsCert := dict }}
{{- include "tracehouse.cfg" (list . "ops.tls.certFile" "" $opsCert) }}
{{- $ownOpsCert := and $opsCert.value (ne (toString $opsCert.value) "inherit") }}
{{- if and (eq (toString $r.value) "") (or $t.existingSecret $cert.value $ownOpsCert) }}
- name: TRACEHOUSE_OPS_TLS_MODE
  value: "off"
{{- end }}
{{- if .Values.auth.existingSecret }}
- name: TRACEHOUSE_AUTH_TOKENS_FILE
  value: {{ printf "%s/%s" (include "tracehouse.authDir" .) .Values.auth.key | quote }}
{{- end }}
{{- end }}

{{/*
"true" when a listener ("receiver.http", "query") serves TLS as the collector decides it: its
tls.mode tls or mtls, or inherit with a certificate from the chart's Secret or from config.
*/}}
{{- define "tracehouse.listenerTls" -}}
{{- $root := index . 0 }}
{{- $l := index . 1 }}
{{- $mode := dict }}{{- include "tracehouse.cfg" (list $root (printf "%s.tls.mode" $l) "inherit" $mode) }}
{{- $own := dict }}{{- include "tracehouse.cfg" (list $root (printf "%s.tls.certFile" $l) "" $own) }}
{{- $global := dict }}{{- include "tracehouse.cfg" (list $root "tls.certFile" "" $global) }}
{{- /* A certFile of "inherit" is the global one (as the collector reads it), not a file of its own. */}}
{{- $ownCert := ternary "" (toString ($own.value | default "")) (eq (toString $own.value) "inherit") }}
{{- if has (toString $mode.value) (list "tls" "mtls") }}true
{{- else if and (eq (toString $mode.value) "inherit") (or $root.Values.tls.existingSecret $ownCert $global.value) }}true
{{- end }}
{{- end }}

{{/* "true" when the `helm test` pod is rendered. */}}
{{- define "tracehouse.testPod" -}}
{{- if and .Values.tests.enabled (eq (include "tracehouse.enabled" (list . "receiver.http.enabled")) "true") (eq (include "tracehouse.enabled" (list . "query.enabled")) "true") }}true{{ end }}
{{- end }}

{{/* The rendered config.yaml. */}}
{{- define "tracehouse.configYaml" -}}
{{- /* Listen addresses come in as environment variables (tracehouse.env), so the file stays as given. */ -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- /* A `workers:` section left empty (its lines commented out) is YAML's null, which Helm takes as
"delete the chart's default": the collector would start one decode worker per core of the node.
Keep values.yaml's workers.threads unless a value names its own. */}}
{{- $threads := dict }}
{{- include "tracehouse.cfg" (list . "workers.threads" "" $threads) }}
{{- if and (eq (toString $threads.value) "") (not (hasKey $config "workers")) }}
{{- $_ := set $config "workers" (dict "threads" 2) }}
{{- end }}
{{- toYaml $config }}
{{- end }}
