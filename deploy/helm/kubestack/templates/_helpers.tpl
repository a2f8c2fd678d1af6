{{- define "kubestack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubestack.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped objects (ClusterRoles and their bindings) carry the namespace too: one release name may be
installed in two namespaces. */}}
{{- define "kubestack.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "kubestack.fullname" .) -}}
{{- end -}}

{{- define "kubestack.cluster" -}}
{{- .Values.clusterName | default "in-cluster" -}}
{{- end -}}

{{- define "kubestack.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "kubestack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* dict "root" $ "component" "worker" */}}
{{- define "kubestack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubestack.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kubestack.componentLabels" -}}
{{ include "kubestack.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kubestack.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "kubestack.agentServiceAccount" -}}
{{- printf "%s-agent" (include "kubestack.fullname" .) -}}
{{- end -}}

{{- define "kubestack.executorServiceAccount" -}}
{{- printf "%s-executor" (include "kubestack.fullname" .) -}}
{{- end -}}

{{- define "kubestack.apiServiceAccount" -}}
{{- printf "%s-api" (include "kubestack.fullname" .) -}}
{{- end -}}

{{/* One credential as an environment variable from a Secret: the existing one named, or the chart's own when the
value is given inline; nothing when neither is. dict "root" $ "env" NAME "value" V "existing" S "key" K */}}
{{- define "kubestack.secretEnv" -}}
{{- if or .value .existing }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .existing | default (include "kubestack.fullname" .root) }}
      key: {{ .key }}
{{- end }}
{{- end -}}

{{/* The credentials of the notification channels other than Slack's and PagerDuty's (kubestack/notifysettings.py),
as the worker reads them: each from the chart's Secret or the existing one named, only when given. */}}
{{- define "kubestack.channelEnv" -}}
{{- $n := .Values.notify -}}
{{- with $n.teams }}
{{- include "kubestack.secretEnv" (dict "root" $ "env" "KUBESTACK_NOTIFY__TEAMS__WEBHOOK_URL" "value" .webhookUrl "existing" .existingSecret "key" .webhookUrlKey) }}
{{- end }}
{{- with $n.opsgenie }}
{{- include "kubestack.secretEnv" (dict "root" $ "env" "KUBESTACK_NOTIFY__OPSGENIE__API_KEY" "value" .apiKey "existing" .existingSecret "key" .apiKeyKey) }}
{{- end }}
{{- with $n.email }}
{{- if .username }}{{/* with its password, here only: the API reads the same settings file without it */}}
- name: KUBESTACK_NOTIFY__EMAIL__USERNAME
  value: {{ .username | quote }}
{{- end }}
{{- include "kubestack.secretEnv" (dict "root" $ "env" "KUBESTACK_NOTIFY__EMAIL__PASSWORD" "value" .password "existing" .existingSecret "key" .passwordKey) }}
{{- end }}
{{- range $name := list "feishu" "dingtalk" }}
{{- with get $n $name }}
{{- include "kubestack.secretEnv" (dict "root" $ "env" (printf "KUBESTACK_NOTIFY__%s__WEBHOOK_URL" (upper $name)) "value" .webhookUrl "existing" .existingSecret "key" .webhookUrlKey) }}
{{- include "kubestack.secretEnv" (dict "root" $ "env" (printf "KUBESTACK_NOTIFY__%s__SECRET" (upper $name)) "value" .secret "existing" (ternary .existingSecret "" (and (not (empty .existingSecret)) (not (empty .secretKey)))) "key" .secretKey) }}
{{- end }}
{{- end }}
{{- with $n.wecom }}
{{- include "kubestack.secretEnv" (dict "root" $ "env" "KUBESTACK_NOTIFY__WECOM__WEBHOOK_URL" "value" .webhookUrl "existing" .existingSecret "key" .webhookUrlKey) }}
{{- end }}
{{- end -}}

{{/* The channels' settings that are not credentials, under notify in the settings file. */}}
{{- define "kubestack.channelSettings" -}}
{{- $n := .Values.notify -}}
{{- if or $n.opsgenie.apiKey $n.opsgenie.existingSecret }}
opsgenie:
  region: {{ $n.opsgenie.region | quote }}
{{- end }}
{{- with $n.email }}
{{- $password := or .password .existingSecret }}
{{- if and .username (not $password) }}
{{- fail "notify.email.username needs notify.email.password or notify.email.existingSecret" }}
{{- end }}
{{- if and $password (not .username) }}
{{- fail "notify.email.password (or existingSecret) needs notify.email.username" }}
{{- end }}
{{- if .host }}
{{- if not .recipients }}
{{- fail "notify.email.recipients is required with notify.email.host" }}
{{- end }}
email:
  host: {{ .host | quote }}
  port: {{ int .port }}
  sender: {{ .sender | quote }}
  recipients: {{ .recipients | toJson }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "kubestack.kafkaEnv" -}}
{{- $sasl := .Values.kafka.sasl -}}
{{- include "kubestack.secretEnv" (dict "root" . "env" "KUBESTACK_KAFKA__SASL_PASSWORD" "value" $sasl.password "existing" $sasl.existingSecret "key" $sasl.passwordKey) }}
{{- end -}}

{{/* A component's own Kafka login (kafka.sasl.components.<component>), set only in that component's pods, so that
the cluster's ACLs let each write only its own topics: dict "root" $ "component" agent|worker|api */}}
{{- define "kubestack.componentKafkaEnv" -}}
{{- $own := get (.root.Values.kafka.sasl.components | default dict) .component -}}
{{- if $own }}
- name: KUBESTACK_KAFKA__COMPONENTS__{{ upper .component }}__USERNAME
  value: {{ $own.username | quote }}
{{- include "kubestack.secretEnv" (dict "root" .root "env" (printf "KUBESTACK_KAFKA__COMPONENTS__%s__PASSWORD" (upper .component)) "value" $own.password "existing" $own.existingSecret "key" ($own.passwordKey | default (printf "kafka-%s-password" .component))) }}
{{- end }}
{{- end -}}

{{/* What every container of the chart sets: the settings file, a writable home, and the Kafka credential. */}}
{{- define "kubestack.commonEnv" -}}
- name: KUBESTACK_CONFIG
  value: /etc/kubestack/settings.yaml
- name: KUBESTACK_HOME
  value: /var/lib/kubestack
- name: HOME
  value: /var/lib/kubestack
{{- include "kubestack.kafkaEnv" . }}
{{- end -}}

{{- define "kubestack.securityProtocol" -}}
{{- $tls := .Values.kafka.tls.enabled -}}
{{- if .Values.kafka.sasl.mechanism -}}
{{- ternary "SASL_SSL" "SASL_PLAINTEXT" $tls -}}
{{- else -}}
{{- ternary "SSL" "PLAINTEXT" $tls -}}
{{- end -}}
{{- end -}}

{{/* The settings file (kubestack/settings.py) the chart derives from its values; `settings` is merged over it. */}}
{{- define "kubestack.settings" -}}
tenant: {{ .Values.tenant | quote }}
log_level: {{ .Values.logLevel | quote }}
home: /var/lib/kubestack
kafka:
  bootstrap: {{ required "kafka.bootstrap is required: host:port[,host:port] of your Kafka brokers (the chart runs no Kafka)" .Values.kafka.bootstrap | quote }}
  topic_prefix: {{ .Values.kafka.topicPrefix | quote }}
  security_protocol: {{ include "kubestack.securityProtocol" . }}
  replication_factor: {{ int .Values.kafka.replicationFactor }}
  {{- with .Values.kafka.minInsyncReplicas }}
  min_insync_replicas: {{ int . }}
  {{- end }}
  min_partitions: {{ int .Values.worker.partitions }}
  {{- with .Values.kafka.partitions }}
  partitions:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.kafka.sasl }}
  {{- if .mechanism }}
  sasl_mechanism: {{ .mechanism | quote }}
  {{- if .username }}
  sasl_username: {{ .username | quote }}
  {{- if not (or .password .existingSecret) }}
  {{- fail "kafka.sasl.mechanism needs kafka.sasl.password or kafka.sasl.existingSecret" }}
  {{- end }}
  {{- else if not .components }}
  {{- fail "kafka.sasl.username is required with kafka.sasl.mechanism (or kafka.sasl.components: a login per component)" }}
  {{- end }}
  {{- range $name, $own := .components }}
  {{- if not (has $name (list "agent" "worker" "api")) }}
  {{- fail (printf "kafka.sasl.components.%s: the components are agent, worker and api" $name) }}
  {{- end }}
  {{- if not (and $own.username (or $own.password $own.existingSecret)) }}
  {{- fail (printf "kafka.sasl.components.%s needs a username and a password or an existingSecret" $name) }}
  {{- end }}
  {{- end }}
  {{- end }}
  {{- end }}
  {{- with .Values.kafka.tls }}
  {{- if .enabled }}
  {{- if .existingSecret }}
  ssl_cafile: /etc/kubestack-tls/kafka/{{ .caKey }}
  {{- if .certKey }}
  ssl_certfile: /etc/kubestack-tls/kafka/{{ .certKey }}
  ssl_keyfile: /etc/kubestack-tls/kafka/{{ required "kafka.tls.keyKey is required with kafka.tls.certKey" .keyKey }}
  {{- end }}
  {{- end }}
  ssl_check_hostname: {{ .checkHostname }}
  {{- end }}
  {{- end }}
worker:
  store: {{ .Values.worker.store | quote }}
  signal_partitions: {{ int .Values.worker.partitions }}
remediation:
  enabled: {{ .Values.remediation.enabled }}
  auto_approve_low: {{ .Values.remediation.autoApproveLow }}
  targets: /etc/kubestack/targets.yaml
{{- with include "kubestack.channelSettings" . }}
notify:
  {{- . | nindent 2 }}
{{- end }}
api:
  host: 0.0.0.0
  port: {{ .Values.api.port }}
  console_enabled: {{ .Values.api.console }}
{{- if ne .Values.llm.provider "none" }}
llm:
  provider: {{ .Values.llm.provider | quote }}
  model: {{ required "llm.model is required with llm.provider" .Values.llm.model | quote }}
  {{- with .Values.llm.baseUrl }}
  base_url: {{ . | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "kubestack.volumeMounts" -}}
- name: config
  mountPath: /etc/kubestack
  readOnly: true
- name: home
  mountPath: /var/lib/kubestack
- name: tmp
  mountPath: /tmp
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: /etc/kubestack-tls/kafka
  readOnly: true
{{- end }}
{{- end -}}

{{/* dict "root" $ "home" <volume source of the home directory, default an emptyDir> */}}
{{- define "kubestack.volumes" -}}
- name: config
  configMap:
    name: {{ include "kubestack.fullname" .root }}
- name: home
  {{- if .home }}
  {{- toYaml .home | nindent 2 }}
  {{- else }}
  emptyDir: {}
  {{- end }}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- if and .root.Values.kafka.tls.enabled .root.Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .root.Values.kafka.tls.existingSecret }}
{{- end }}
{{- end -}}

{{/* The decision key ring: the API and the worker only (an agent that could read it could approve). */}}
{{- define "kubestack.decisionKeysEnv" }}
- name: KUBESTACK_REMEDIATION__DECISION_KEYS
  value: /etc/kubestack-keys/{{ .Values.remediation.decisionKeysKey }}
{{- end -}}

{{- define "kubestack.decisionKeysMount" -}}
- name: decision-keys
  mountPath: /etc/kubestack-keys
  readOnly: true
{{- end -}}

{{- define "kubestack.decisionKeysVolume" -}}
- name: decision-keys
  secret:
    secretName: {{ .Values.remediation.decisionKeysExistingSecret | default (include "kubestack.fullname" .) }}
    defaultMode: 0440
    items:
      - {key: {{ .Values.remediation.decisionKeysKey }}, path: {{ .Values.remediation.decisionKeysKey }}}
{{- end -}}

{{- define "kubestack.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
