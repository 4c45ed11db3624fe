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
