{{/*
recbuf.name is the chart name, or nameOverride.
*/}}
{{- define "recbuf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
recbuf.fullname prefixes every object's name: "<release>-<chart>", or just
the release name when it already contains the chart name. Kept at most 48
characters so that suffixes such as "-manager-metrics" fit in 63.
*/}}
{{- define "recbuf.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
recbuf.labels are the labels of every object of the chart.
*/}}
{{- define "recbuf.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "recbuf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
recbuf.selectorLabels select the manager pods.
*/}}
{{- define "recbuf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "recbuf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{/*
recbuf.natsSelectorLabels select the development NATS pods.
*/}}
{{- define "recbuf.natsSelectorLabels" -}}
app.kubernetes.io/name: {{ include "recbuf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: nats
{{- end }}

{{/*
recbuf.serviceAccountName is the manager's ServiceAccount.
*/}}
{{- define "recbuf.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-manager" (include "recbuf.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
recbuf.image renders "repository:tag" of an image value, the tag defaulting
to the chart's appVersion. Call with (list .Values.image $).
*/}}
{{/*
recbuf.bufferImage is the buffer process's image values: bufferImage, with
the fields of the deprecated sidecarImage over them.
*/}}
{{- define "recbuf.bufferImage" -}}
{{- toYaml (mergeOverwrite (deepCopy .Values.bufferImage) (default (dict) .Values.sidecarImage)) }}
{{- end }}

{{- define "recbuf.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}

{{/*
recbuf.labelSelector renders a map of labels as a label selector string,
"k1=v1,k2=v2" in key order; an empty map renders "" (selects everything).
*/}}
{{- define "recbuf.labelSelector" -}}
{{- $pairs := list }}
{{- range $k := keys . | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $k (index $ $k)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/*
recbuf.natsURL is the manager's --nats-url: natsURL when set, else the
in-chart NATS Service when nats.enabled, else the Service nats of the
release namespace. Fully qualified, because buffer pods in every namespace
use it: a bare nats://nats:4222 would be another server in each.
*/}}
{{- define "recbuf.natsURL" -}}
{{- if .Values.natsURL }}
{{- .Values.natsURL }}
{{- else if .Values.nats.enabled }}
{{- printf "nats://%s-nats.%s.svc:%d" (include "recbuf.fullname" .) .Release.Namespace (int .Values.nats.port) }}
{{- else }}
{{- printf "nats://nats.%s.svc:4222" .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
recbuf.containerSecurityContext is the restricted Pod Security Standard's
container securityContext, shared by the manager and NATS.
*/}}
{{- define "recbuf.containerSecurityContext" -}}
runAsUser: 65532
runAsGroup: 65532
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
recbuf.reportMasterKeySecret is the Secret holding the report master key:
reportMasterKey.existingSecret, or the one the chart makes.
*/}}
{{- define "recbuf.reportMasterKeySecret" -}}
{{- default (printf "%s-report-master-key" (include "recbuf.fullname" .)) .Values.reportMasterKey.existingSecret }}
{{- end }}

{{/*
recbuf.natsConfig is the development NATS server's nats.conf. JetStream's
limits use NATS's size suffixes, which read Kubernetes' Mi and Gi alike.
*/}}
{{- define "recbuf.natsConfig" -}}
server_name: {{ include "recbuf.fullname" . }}-nats
port: {{ .Values.nats.port }}
http_port: {{ .Values.nats.monitorPort }}
{{- if .Values.nats.jetstream.enabled }}
jetstream {
  store_dir: /data
  max_memory_store: {{ .Values.nats.jetstream.maxMemoryStore }}
  max_file_store: {{ .Values.nats.jetstream.maxFileStore }}
}
{{- end }}
{{- if .Values.nats.mqtt.enabled }}
mqtt {
  port: {{ .Values.nats.mqtt.port }}
}
{{- end }}
{{- end }}

{{/*
recbuf.metricsPortName names the metrics Service's port after its scheme:
https, or http when metrics.secure is false.
*/}}
{{- define "recbuf.metricsPortName" -}}
{{- if .Values.metrics.secure }}https{{ else }}http{{ end }}
{{- end }}

{{/*
recbuf.webhookConfigurationName is the sidecar injection webhook's
MutatingWebhookConfiguration (cluster-scoped: the release name keeps two
releases apart).
*/}}
{{- define "recbuf.webhookConfigurationName" -}}
{{ include "recbuf.fullname" . }}-sidecar-injector
{{- end }}

{{/*
recbuf.webhookCertSecret holds the webhook's serving certificate (and, when
the manager makes it, its CA).
*/}}
{{- define "recbuf.webhookCertSecret" -}}
{{ include "recbuf.fullname" . }}-webhook-cert
{{- end }}
