{{/* Service account of the controller. */}}
{{- define "azure-service-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default "azureserviceoperator-default" .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "azure-service-operator.labels" -}}
app.kubernetes.io/name: azure-service-operator
app.kubernetes.io/version: {{ .Chart.AppVersion }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
