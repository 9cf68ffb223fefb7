{{- /*
Checks Helm's schema cannot phrase for a human, run before anything renders (configmap.yaml includes
"dpo.checkConfig", deployment.yaml "dpo.checkSecrets"). The lists come from _variables.tpl, which
`npm run gen:chart-schema` writes from the code's own list of variables.
*/ -}}

{{- /* The nearest of a list of names: the same length with at most two letters changed (a
transposition is two), or one letter more or fewer. A template has no edit distance; these cover
the typos people make. ("" when none is that close.) */ -}}
{{- define "dpo.didYouMean" -}}
{{- $name := index . 0 -}}
{{- $best := "" -}}
{{- range $k := index . 1 -}}
{{- if not $best -}}
{{- $ln := len $name -}}
{{- $lk := len $k -}}
{{- if eq $ln $lk -}}
{{- $diff := 0 -}}
{{- range $i := until $ln -}}
{{- if ne (substr $i (add1 $i | int) $name) (substr $i (add1 $i | int) $k) -}}{{- $diff = add1 $diff -}}{{- end -}}
{{- end -}}
{{- if le (int $diff) 2 -}}{{- $best = $k -}}{{- end -}}
{{- else if eq $ln (add1 $lk | int) -}}
{{- range $i := until $ln -}}
{{- if eq (printf "%s%s" (substr 0 $i $name) (substr (add1 $i | int) $ln $name)) $k -}}{{- $best = $k -}}{{- end -}}
{{- end -}}
{{- else if eq $lk (add1 $ln | int) -}}
{{- range $i := until $lk -}}
{{- if eq (printf "%s%s" (substr 0 $i $k) (substr (add1 $i | int) $lk $k)) $name -}}{{- $best = $k -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $best -}}
{{- end -}}

{{- /* One message per name the daemon's configuration cannot take, all at once. */ -}}
{{- define "dpo.checkConfig" -}}
{{- $errors := list -}}
{{- $daemon := include "dpo.variables.daemon" . | splitList " " -}}
{{- $secrets := include "dpo.variables.secret" . | fromJson -}}
{{- $others := include "dpo.variables.notDaemon" . | fromJson -}}
{{- $chart := include "dpo.variables.chart" . | splitList " " -}}
{{- range $name, $_ := .Values.config -}}
{{- if hasKey $secrets $name -}}
{{- $errors = append $errors (printf "config.%s is a secret, and config becomes a ConfigMap (plain text to anyone who may read ConfigMaps): %s" $name (get $secrets $name)) -}}
{{- else if has $name $chart -}}
{{- $errors = append $errors (printf "config.%s is set by the chart (operatorToken, dataVolume, metricsPort, drainTimeoutSeconds): remove it" $name) -}}
{{- else if hasKey $others $name -}}
{{- $errors = append $errors (printf "config.%s is read by the %s, not by the daemon this chart deploys: remove it" $name (get $others $name)) -}}
{{- else if not (has $name $daemon) -}}
{{- $near := include "dpo.didYouMean" (list $name $daemon) -}}
{{- $errors = append $errors (printf "config.%s is not a variable of the daemon%s" $name (ternary (printf " (did you mean %s?)" $near) "" (ne $near ""))) -}}
{{- end -}}
{{- end -}}
{{- range $name, $ref := .Values.secretEnv -}}
{{- if hasKey $.Values.config $name -}}
{{- $errors = append $errors (printf "%s is in both config and secretEnv: keep it in secretEnv only" $name) -}}
{{- else if not (has $name $daemon) -}}
{{- $near := include "dpo.didYouMean" (list $name $daemon) -}}
{{- $errors = append $errors (printf "secretEnv.%s is not a variable of the daemon%s" $name (ternary (printf " (did you mean %s?)" $near) "" (ne $near ""))) -}}
{{- end -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n  - %s" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}

{{- /* Every Secret the pod reads, as a list of {name, keys (required), where}. */ -}}
{{- define "dpo.secretRefs" -}}
{{- $refs := list (dict "name" .Values.operatorToken.existingSecret "keys" (list .Values.operatorToken.key) "where" "operatorToken") -}}
{{- range $var, $ref := .Values.secretEnv -}}
{{- $refs = append $refs (dict "name" $ref.secretName "keys" (list $ref.key) "where" (printf "secretEnv.%s" $var)) -}}
{{- end -}}
{{- range $i, $f := .Values.secretFiles -}}
{{- $keys := list -}}
{{- range $f.keys -}}{{- if not .optional -}}{{- $keys = append $keys .key -}}{{- end -}}{{- end -}}
{{- $refs = append $refs (dict "name" $f.secretName "keys" $keys "where" (printf "secretFiles[%d]" $i)) -}}
{{- end -}}
{{- range .Values.extraVolumes -}}
{{- if and .secret (not .secret.optional) -}}
{{- $refs = append $refs (dict "name" .secret.secretName "keys" list "where" (printf "extraVolumes %s" .name)) -}}
{{- end -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if and .valueFrom .valueFrom.secretKeyRef (not .valueFrom.secretKeyRef.optional) -}}
{{- $refs = append $refs (dict "name" .valueFrom.secretKeyRef.name "keys" (list .valueFrom.secretKeyRef.key) "where" (printf "extraEnv %s" .name)) -}}
{{- end -}}
{{- end -}}
{{- range .Values.extraEnvFrom -}}
{{- if and .secretRef (not .secretRef.optional) -}}
{{- $refs = append $refs (dict "name" .secretRef.name "keys" list "where" "extraEnvFrom") -}}
{{- end -}}
{{- end -}}
{{- toJson $refs -}}
{{- end -}}

{{- /* Fails naming each missing Secret or key, where Helm can see the cluster: `lookup` is real under
`helm install`, `helm upgrade` and `--dry-run=server`, and answers nothing under `helm template`
(then nothing is checked). Without this a missing Secret leaves the pods in ContainerCreating. */ -}}
{{- define "dpo.checkSecrets" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace "" -}}
{{- if $existing -}}
{{- $data := dict -}}
{{- range $existing.items -}}{{- $_ := set $data .metadata.name (.data | default dict) -}}{{- end -}}
{{- $errors := list -}}
{{- range $ref := (include "dpo.secretRefs" . | fromJsonArray) -}}
{{- if not (hasKey $data $ref.name) -}}
{{- $errors = append $errors (printf "Secret %s (%s) does not exist in namespace %s: create it first (docs/deploy.md)" $ref.name $ref.where $.Release.Namespace) -}}
{{- else -}}
{{- $secret := get $data $ref.name -}}
{{- range $key := $ref.keys -}}
{{- if not (hasKey $secret $key) -}}
{{- $errors = append $errors (printf "Secret %s has no key %s (%s)" $ref.name $key $ref.where) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n  - %s" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
