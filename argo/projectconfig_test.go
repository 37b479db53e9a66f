package argo

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const goodConfig = `# defaults for every pipeline
workflowTemplateRef:
  name: ci
timeout: 90m
parameters:
  lint: "true"
pipelines:
  gate:
    timeout: 3h
    parameters:
      lint: "false"
      slow: yes
  post:
    workflow:
      spec:
        entrypoint: main
        nodeSelector: {arch: amd64}
        arguments:
          parameters: [{name: target, value: all}]
        volumeClaimTemplates:
          - metadata: {name: work}
            spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
        templates:
          - name: main
            steps:
              - - name: build
                  template: build
                - name: inline
                  inline:
                    container: {image: alpine, command: ["true"]}
          - name: build
            inputs: {parameters: [{name: x, default: "1"}]}
            script:
              image: golang
              command: [sh]
              source: |
                git fetch "{{workflow.parameters.seakeeper-git-url}}" "{{workflow.parameters.seakeeper-ref}}"
              ports: [{containerPort: 8080}]
              resources: {limits: {cpu: 2}}
            volumes:
              - name: cache
                emptyDir: {}
`

func TestParseProjectConfig(t *testing.T) {
	pc, err := ParseProjectConfig(ConfigFileName, "abc", []byte(goodConfig), []string{"check", "gate", "post"})
	if err != nil {
		t.Fatal(err)
	}
	check, err := pc.For("check")
	if err != nil {
		t.Fatal(err)
	}
	if check.TemplateRef == nil || check.TemplateRef.Name != "ci" || check.Spec != nil || check.Timeout != 90*time.Minute || check.Parameters["lint"] != "true" {
		t.Errorf("check = %+v", check)
	}
	gate, _ := pc.For("gate")
	if gate.TemplateRef.Name != "ci" || gate.Timeout != 3*time.Hour || gate.Parameters["lint"] != "false" || gate.Parameters["slow"] != "yes" {
		t.Errorf("gate = %+v", gate)
	}
	post, _ := pc.For("post")
	if post.TemplateRef != nil || post.Spec == nil {
		t.Fatalf("post = %+v", post)
	}
	s := post.Spec
	if s.Entrypoint != "main" || len(s.Templates) != 2 || s.NodeSelector["arch"] != "amd64" ||
		s.Templates[1].Script == nil || !strings.Contains(s.Templates[1].Script.Source, "seakeeper-ref") ||
		s.Templates[0].Steps[0].Steps[1].Inline == nil || s.VolumeClaimTemplates[0].Name != "work" ||
		s.Templates[1].Volumes[0].EmptyDir == nil {
		t.Errorf("post spec = %+v", s)
	}
	if pc.SHA != "abc" {
		t.Errorf("SHA = %q", pc.SHA)
	}
}

func TestProjectConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // each a line of the error, in order
	}{
		{"forbidden spec field", `workflow:
  spec:
    entrypoint: main
    templates: [{name: main, container: {image: x}}]
    serviceAccountName: root
`, []string{"seakeeper.yaml:5: workflow.spec.serviceAccountName: not allowed in project config"}},
		{"many forbidden fields, each with its line", `pipelines:
  check:
    workflow:
      spec:
        entrypoint: main
        hostNetwork: true
        podSpecPatch: "{}"
        securityContext: {runAsUser: 0}
        automountServiceAccountToken: true
        executor: {serviceAccountName: x}
        podGC: {strategy: OnWorkflowSuccess}
        ttlStrategy: {secondsAfterCompletion: 1}
        tolerations: [{operator: Exists}]
        volumes:
          - name: root
            hostPath: {path: /}
        templates:
          - name: main
            podSpecPatch: x
            container:
              image: x
              securityContext: {privileged: true}
              ports: [{containerPort: 1, hostPort: 80}]
            sidecars:
              - name: s
                volumeDevices: []
            steps:
              - - name: a
                  inline:
                    serviceAccountName: x
            resource: {action: create}
`, []string{
			"seakeeper.yaml:6: pipelines.check.workflow.spec.hostNetwork: not allowed in project config",
			"seakeeper.yaml:7: pipelines.check.workflow.spec.podSpecPatch: not allowed in project config",
			"seakeeper.yaml:8: pipelines.check.workflow.spec.securityContext: not allowed in project config",
			"seakeeper.yaml:9: pipelines.check.workflow.spec.automountServiceAccountToken: not allowed in project config",
			"seakeeper.yaml:10: pipelines.check.workflow.spec.executor: not allowed in project config",
			"seakeeper.yaml:11: pipelines.check.workflow.spec.podGC: not allowed in project config",
			"seakeeper.yaml:12: pipelines.check.workflow.spec.ttlStrategy: not allowed in project config",
			"seakeeper.yaml:13: pipelines.check.workflow.spec.tolerations: not allowed in project config",
			"seakeeper.yaml:16: pipelines.check.workflow.spec.volumes[0].hostPath: not allowed in project config",
			"seakeeper.yaml:19: pipelines.check.workflow.spec.templates[0].podSpecPatch: not allowed in project config",
			"seakeeper.yaml:22: pipelines.check.workflow.spec.templates[0].container.securityContext: not allowed in project config",
			"seakeeper.yaml:23: pipelines.check.workflow.spec.templates[0].container.ports[0].hostPort: not allowed in project config",
			"seakeeper.yaml:26: pipelines.check.workflow.spec.templates[0].sidecars[0].volumeDevices: not allowed in project config",
			"seakeeper.yaml:30: pipelines.check.workflow.spec.templates[0].steps[0][0].inline.serviceAccountName: not allowed in project config",
			"seakeeper.yaml:31: pipelines.check.workflow.spec.templates[0].resource: not allowed in project config",
		}},
		{"forbidden field through an alias", `workflow:
  spec:
    entrypoint: main
    templates:
      - &t {name: main, container: {image: x}, serviceAccountName: y}
      - *t
`, []string{
			"seakeeper.yaml:5: workflow.spec.templates[0].serviceAccountName: not allowed in project config",
			"seakeeper.yaml:5: workflow.spec.templates[1].serviceAccountName: not allowed in project config",
		}},
		{"merge inside the workflow", `workflow:
  spec:
    <<: {serviceAccountName: admin}
    entrypoint: main
    templates: [{name: main, container: {image: x}}]
`, []string{"seakeeper.yaml:3: workflow.spec.serviceAccountName: not allowed in project config"}},
		{"typo gets a suggestion", `workflow:
  spec:
    entrypont: main
    templates: [{name: main, container: {image: x}}]
`, []string{`seakeeper.yaml:3: workflow.spec.entrypont: unknown key (did you mean "entrypoint"?)`}},
		{"unknown field deep in a free subtree", `workflow:
  spec:
    entrypoint: main
    templates:
      - name: main
        container:
          image: x
          env:
            - name: A
              valeu: b
`, []string{`seakeeper.yaml:10: workflow.spec.templates[0].container.env[0].valeu: unknown field`}},
		{"wrong type", `workflow:
  spec:
    entrypoint: [main]
    templates: [{name: main, container: {image: x}}]
`, []string{`seakeeper.yaml:2: workflow.spec: cannot unmarshal`}},
		{"reserved parameters", `workflowTemplateRef: {name: ci}
parameters:
  seakeeper-ref: x
  "bad name": y
`, []string{
			"seakeeper.yaml:3: parameters.seakeeper-ref: parameters named seakeeper-* are set by Seakeeper",
			`seakeeper.yaml:4: parameters.bad name: not a valid parameter name`,
		}},
		{"both sources", `workflowTemplateRef: {name: ci}
workflow: {spec: {entrypoint: main, templates: [{name: main}]}}
`, []string{"seakeeper.yaml:2: workflow: set either workflowTemplateRef or workflow, not both"}},
		{"missing spec parts", `workflow:
  spec: {templates: [{name: main}]}
pipelines:
  gaet: {timeout: 0s}
`, []string{
			"seakeeper.yaml:2: workflow.spec.entrypoint: required",
			"seakeeper.yaml:4: pipelines.gaet: no such pipeline (the pipelines are: check, gate)",
			"seakeeper.yaml:4: pipelines.gaet.timeout: must be positive",
		}},
		{"bad template name and unknown top-level key", `workflowTemplateRef: {name: CI_Template}
timeuot: 1h
`, []string{
			`seakeeper.yaml:1: workflowTemplateRef.name: "CI_Template" is not a valid object name`,
			`seakeeper.yaml:2: timeuot: unknown key (did you mean "timeout"?)`,
		}},
		{"workflow metadata", `workflow:
  metadata: {labels: {seakeeper.io/buildset: x}}
  spec: {entrypoint: main, templates: [{name: main}]}
`, []string{"seakeeper.yaml:2: workflow.metadata: not allowed in project config"}},
		{"duplicate workflow", `workflow: {spec: {entrypoint: a, templates: [{name: a}]}}
workflow: {spec: {entrypoint: b, templates: [{name: b}]}}
`, []string{"seakeeper.yaml:2: workflow: duplicate key (first written on line 1)"}},
		{"syntax error", "workflow: [\n", []string{"seakeeper.yaml:2: YAML syntax error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProjectConfig(ConfigFileName, "sha", []byte(tc.yaml), []string{"check", "gate"})
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			got := strings.Split(ce.Error(), "\n")
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), ce)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d:\n got %s\nwant %s…", i, got[i], w)
				}
			}
		})
	}
}

func TestProjectConfigAliasAcrossSections(t *testing.T) {
	pc, err := ParseProjectConfig(ConfigFileName, "sha", []byte(`workflow: &w
  spec: {entrypoint: main, templates: [{name: main, container: {image: x}}]}
pipelines:
  gate:
    workflow: *w
    timeout: 2h
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	gate, err := pc.For("gate")
	if err != nil || gate.Spec == nil || gate.Spec.Entrypoint != "main" || gate.Timeout != 2*time.Hour {
		t.Errorf("gate = %+v, %v", gate, err)
	}
}

func TestProjectConfigNoWorkflowForPipeline(t *testing.T) {
	pc, err := ParseProjectConfig(ConfigFileName, "sha", []byte("pipelines:\n  gate: {workflowTemplateRef: {name: ci}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.For("gate"); err != nil {
		t.Error(err)
	}
	_, err = pc.For("check")
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, `no workflow for pipeline "check"`) {
		t.Errorf("For(check) = %v", err)
	}
}
