package argo

import (
	"reflect"
	"sort"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// The allowlist: which fields of a Workflow spec project config may set.
//
// A project's inline workflow is owned by the project, but its pods run on
// the site's nodes with the site's service accounts, so everything that
// widens what a pod may do or where it may go is the operator's:
//
//   - allowed: entrypoint, templates (containers, scripts, container sets,
//     steps, DAGs, inline templates, inputs/outputs, retries, timeouts,
//     sidecars and init containers without securityContext, volumeDevices
//     or host ports), arguments, onExit, hooks, parallelism, retryStrategy,
//     templateDefaults, artifactRepositoryRef, archiveLogs, imagePullSecrets,
//     volumeClaimGC, volumeClaimTemplates (name and accessModes, resources,
//     storageClassName, volumeMode: no binding to a chosen volume), and
//     volumes of the kinds emptyDir, configMap, secret, persistentVolumeClaim
//     and downwardAPI (all confined to the project's namespace).
//   - nodeSelector and affinity are allowed: they only narrow where pods
//     may be scheduled. tolerations are not: they widen it, onto nodes an
//     operator tainted to keep workloads away (control plane, dedicated
//     pools).
//   - never: serviceAccountName, automountServiceAccountToken, executor,
//     securityContext (pod and container), podSpecPatch, hostNetwork,
//     hostAliases, dnsPolicy/dnsConfig, schedulerName, priority classes,
//     hostPath and every other volume kind (projected volumes included: they
//     can carry service account tokens), podMetadata/template metadata (pod
//     annotations reach AppArmor and admission webhooks), workflowMetadata
//     (it could forge seakeeper.io labels), resource/plugin/http/suspend
//     templates, synchronization, metrics, memoize, artifactGC,
//     podDisruptionBudget, and the fields Seakeeper sets itself: priority,
//     ttlStrategy, podGC, activeDeadlineSeconds (use timeout), shutdown,
//     suspend, workflowTemplateRef (use the top-level key).
//
// A field of the Go type that is not allowed, or a key of neverAllowed
// anywhere, is reported as "not allowed in project config"; any other key
// that is no field at all as an unknown key.

// neverAllowed are pod-level powers that someone may try to write at any
// place: they are named as forbidden even where they are not fields.
var neverAllowed = map[string]bool{
	"serviceAccountName": true, "serviceAccount": true, "automountServiceAccountToken": true,
	"securityContext": true, "privileged": true, "podSpecPatch": true, "hostNetwork": true,
	"hostPID": true, "hostIPC": true, "hostUsers": true, "hostPath": true,
}

// rule says what may be written at one place of an inline workflow.
type rule struct {
	// known holds the JSON field names of the Go type at this place.
	known map[string]bool
	// fields holds the allowed keys of an object and the rule for each; a
	// nil rule accepts any value (checked by type only, when decoding).
	fields map[string]*rule
	// elem is the rule of each element of a list.
	elem *rule
}

// jsonFields returns the JSON field names of struct type t, following
// inlined and embedded structs.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" || strings.Contains(opts, "inline") {
			for k := range jsonFields(f.Type) {
				out[k] = true
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = true
	}
	return out
}

func object(of any, fields map[string]*rule) *rule {
	return &rule{known: jsonFields(reflect.TypeOf(of)), fields: fields}
}

func listOf(r *rule) *rule { return &rule{elem: r} }

// allowed lists the allowed keys of r, sorted, for messages.
func (r *rule) allowed() []string {
	out := make([]string, 0, len(r.fields))
	for k := range r.fields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// workflowRule is the rule of the value of a `workflow` key: {spec: ...}.
var workflowRule = newWorkflowRule()

func newWorkflowRule() *rule {
	container := func(of any, extra ...string) *rule {
		r := object(of, map[string]*rule{
			"name": nil, "image": nil, "command": nil, "args": nil, "workingDir": nil,
			"env": nil, "envFrom": nil, "resources": nil, "volumeMounts": nil,
			"imagePullPolicy": nil, "livenessProbe": nil, "readinessProbe": nil,
			"startupProbe": nil, "lifecycle": nil, "terminationMessagePath": nil,
			"terminationMessagePolicy": nil, "stdin": nil, "stdinOnce": nil, "tty": nil,
			"ports": listOf(object(corev1.ContainerPort{}, map[string]*rule{
				"name": nil, "containerPort": nil, "protocol": nil,
			})),
		})
		for _, k := range extra {
			r.fields[k] = nil
		}
		return r
	}
	volume := object(corev1.Volume{}, map[string]*rule{
		"name": nil, "emptyDir": nil, "configMap": nil, "secret": nil,
		"persistentVolumeClaim": nil, "downwardAPI": nil,
	})
	claim := object(corev1.PersistentVolumeClaim{}, map[string]*rule{
		"metadata": object(corev1.PersistentVolumeClaim{}.ObjectMeta, map[string]*rule{"name": nil}),
		"spec": object(corev1.PersistentVolumeClaimSpec{}, map[string]*rule{
			"accessModes": nil, "resources": nil, "storageClassName": nil, "volumeMode": nil,
		}),
	})
	template := object(wfv1.Template{}, nil) // filled below: templates nest
	step := func(of any, extra ...string) *rule {
		r := object(of, map[string]*rule{
			"name": nil, "template": nil, "inline": template, "arguments": nil,
			"templateRef": nil, "withItems": nil, "withParam": nil, "withSequence": nil,
			"when": nil, "continueOn": nil, "onExit": nil, "hooks": nil,
		})
		for _, k := range extra {
			r.fields[k] = nil
		}
		return r
	}
	template.fields = map[string]*rule{
		"name": nil, "inputs": nil, "outputs": nil, "nodeSelector": nil, "affinity": nil,
		"daemon": nil, "archiveLocation": nil, "activeDeadlineSeconds": nil,
		"retryStrategy": nil, "parallelism": nil, "failFast": nil, "timeout": nil, "data": nil,
		"container": container(corev1.Container{}),
		"script":    container(wfv1.ScriptTemplate{}, "source"),
		"containerSet": object(wfv1.ContainerSetTemplate{}, map[string]*rule{
			"containers":   listOf(container(wfv1.ContainerNode{}, "dependencies")),
			"volumeMounts": nil, "retryStrategy": nil,
		}),
		"initContainers": listOf(container(wfv1.UserContainer{}, "mirrorVolumeMounts")),
		"sidecars":       listOf(container(wfv1.UserContainer{}, "mirrorVolumeMounts")),
		"volumes":        listOf(volume),
		"steps":          listOf(listOf(step(wfv1.WorkflowStep{}))),
		"dag": object(wfv1.DAGTemplate{}, map[string]*rule{
			"target": nil, "failFast": nil,
			"tasks": listOf(step(wfv1.DAGTask{}, "dependencies", "depends")),
		}),
	}
	spec := object(wfv1.WorkflowSpec{}, map[string]*rule{
		"entrypoint": nil, "arguments": nil, "onExit": nil, "hooks": nil,
		"parallelism": nil, "retryStrategy": nil, "artifactRepositoryRef": nil,
		"archiveLogs": nil, "imagePullSecrets": nil, "volumeClaimGC": nil,
		"nodeSelector": nil, "affinity": nil,
		"templates":            listOf(template),
		"templateDefaults":     template,
		"volumes":              listOf(volume),
		"volumeClaimTemplates": listOf(claim),
	})
	return object(wfv1.Workflow{}, map[string]*rule{"spec": spec})
}
