{{/* Pieces every pod template of the chart shares. */}}

{{- define "kubestack.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* dict "root" $ "component" agent|worker|api "resources" R "extraEnv" E "env" <more env YAML> "args" A "ports" P "probes" <YAML> "mounts" <more YAML> */}}
{{- define "kubestack.container" -}}
- name: kubestack
  image: {{ include "kubestack.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args: {{ toJson .args }}
  env:
    {{- include "kubestack.commonEnv" .root | nindent 4 }}
    {{- include "kubestack.componentKafkaEnv" (dict "root" .root "component" .component) | nindent 4 }}
    {{- with .env }}{{ . | nindent 4 }}{{ end }}
    {{- with .extraEnv }}{{ toYaml . | nindent 4 }}{{ end }}
  {{- with .ports }}
  ports:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .probes }}{{ . | nindent 2 }}{{ end }}
  securityContext:
    {{- toYaml .root.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  volumeMounts:
    {{- include "kubestack.volumeMounts" .root | nindent 4 }}
    {{- with .mounts }}{{ . | nindent 4 }}{{ end }}
{{- end -}}
