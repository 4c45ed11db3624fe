{{- define "portcullis.name" -}}{{ .Release.Name }}-webhook{{- end -}}
{{- define "portcullis.labels" -}}
app.kubernetes.io/name: portcullis-webhook
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "portcullis.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ concat .Values.webhook.excludeNamespaces (list .Release.Namespace) | uniq | toJson }}
{{- end -}}
{{- define "portcullis.rules" -}}
rules:
- apiGroups: [""]
  apiVersions: [v1]
  operations: [CREATE, UPDATE]
  resources: [pods, pods/ephemeralcontainers, replicationcontrollers]
  scope: Namespaced
- apiGroups: [apps]
  apiVersions: [v1]
  operations: [CREATE, UPDATE]
  resources: [deployments, replicasets, statefulsets, daemonsets]
  scope: Namespaced
- apiGroups: [batch]
  apiVersions: [v1]
  operations: [CREATE, UPDATE]
  resources: [jobs, cronjobs]
  scope: Namespaced
{{- end -}}

{{- /* portcullis.yaml: .Values.config with the chart's files and webhook.auth. */ -}}
{{- define "portcullis.config" -}}
{{- $auth := dict -}}
{{- if .Values.auth.clientCASecret -}}
{{- $_ := set $auth "clientCAFile" "/etc/portcullis/client-ca/ca.crt" -}}
{{- if .Values.auth.clientNames }}{{ $_ := set $auth "clientNames" .Values.auth.clientNames }}{{ end -}}
{{- end -}}
{{- if .Values.auth.tokenSecret }}{{ $_ := set $auth "tokenFile" "/etc/portcullis/token/token" }}{{ end -}}
{{- if not $auth }}{{ fail "set auth.clientCASecret or auth.tokenSecret: the webhook answers the API server only (docs/webhook.md)" }}{{ end -}}
{{- $webhook := dict "certFile" "/etc/portcullis/tls/tls.crt" "keyFile" "/etc/portcullis/tls/tls.key" "auth" $auth -}}
{{- $config := mergeOverwrite (deepCopy .Values.config) (dict "webhook" (mergeOverwrite (deepCopy (default dict .Values.config.webhook)) $webhook)) -}}
{{- toYaml $config -}}
{{- end -}}
