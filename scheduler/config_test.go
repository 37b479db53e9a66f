package scheduler

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// minimal is the smallest valid main configuration: everything else has a
// default.
const minimal = `gerrit:
  url: https://review.example.org
  ssh: review.example.org:29418
  ssh-key-file: /k
  known-hosts-file: /kh
web:
  internal-url: http://sk:8081
pipelines:
  - name: check
    manager: independent
    trigger: [{event: [patchset-created]}]
`

func TestParseMainConfigExample(t *testing.T) {
	path := filepath.Join("..", "testdata", "config", "example.yaml")
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if c.Gerrit.URL != "https://review.example.org/" || c.Gerrit.SSH != "review.example.org:29418" || c.Gerrit.HTTPPasswordFile != "/etc/seakeeper/http-password" {
		t.Errorf("gerrit = %+v", c.Gerrit)
	}
	if c.Kubernetes.TTL != 24*time.Hour || c.Kubernetes.MaxWorkflows != 100 || c.Kubernetes.Namespace != "ci-{project}" {
		t.Errorf("kubernetes = %+v", c.Kubernetes)
	}
	if len(c.Pipelines) != 3 || len(c.Queues) != 2 || c.Pipeline("gate").Manager != pipeline.Dependent {
		t.Errorf("pipelines = %d, queues = %d", len(c.Pipelines), len(c.Queues))
	}
	if le := c.LeaderElection; !le.Enabled || le.Namespace != "seakeeper" || le.Name != "seakeeper" || le.Identity != "" ||
		le.LeaseDuration != 30*time.Second || le.RenewDeadline != 15*time.Second || le.RetryPeriod != 3*time.Second {
		t.Errorf("leader-election = %+v", le)
	}
	if c.TickInterval != 30*time.Second || c.HousekeepingInterval != 10*time.Minute {
		t.Errorf("tick-interval %v, housekeeping-interval %v", c.TickInterval, c.HousekeepingInterval)
	}
	if c.QueueOf("mediawiki/core") != "integrated" {
		t.Errorf("QueueOf(mediawiki/core) = %q", c.QueueOf("mediawiki/core"))
	}
	for project, want := range map[string]bool{
		"private/secret": true, "security/embargoed": true, "security/embargoed-not": false,
		"mediawiki/core": false, "notprivate/x": false,
	} {
		if got := c.Restricted(project); got != want {
			t.Errorf("Restricted(%q) = %v, want %v", project, got, want)
		}
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Pipeline("check") == nil || c.Pipeline("gate") == nil || c.Pipeline("post") == nil {
		t.Error("the default configuration lacks a standard pipeline")
	}
	if !c.Restricted("private/x") {
		t.Error("private/x should be restricted")
	}
	if !bytes.Equal(DefaultYAML(), defaultYAML) {
		t.Error("DefaultYAML differs from the embedded file")
	}
	DefaultYAML()[0] = 'X'
	if defaultYAML[0] == 'X' {
		t.Error("DefaultYAML hands out the embedded bytes")
	}
}

func TestDefaults(t *testing.T) {
	c, err := ParseMainConfig("/etc/seakeeper/config.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gerrit.User != DefaultGerritUser || c.Gerrit.HTTPPasswordFile != "" || c.Gerrit.URL != "https://review.example.org/" {
		t.Errorf("gerrit = %+v", c.Gerrit)
	}
	if k := c.Kubernetes; k.Namespace != DefaultNamespace || k.MaxWorkflows != DefaultMaxWorkflows || k.TTL != DefaultTTL || k.Kubeconfig != "" || k.ArgoURL != "" {
		t.Errorf("kubernetes = %+v", k)
	}
	if c.StateDir != DefaultStateDir || c.Web.Listen != DefaultListen || c.Web.InternalListen != DefaultInternalListen || c.Web.PublicURL != "" {
		t.Errorf("state-dir %q, web %+v", c.StateDir, c.Web)
	}
	if c.Restricted("anything") {
		t.Error("nothing is restricted by default")
	}
	if c.TickInterval != DefaultTickInterval || c.HousekeepingInterval != DefaultHousekeepingInterval {
		t.Errorf("tick-interval %v, housekeeping-interval %v", c.TickInterval, c.HousekeepingInterval)
	}
	want := LeaderElectionConfig{Name: DefaultLeaseName, LeaseDuration: DefaultLeaseDuration,
		RenewDeadline: DefaultRenewDeadline, RetryPeriod: DefaultRetryPeriod}
	if c.LeaderElection != want {
		t.Errorf("leader-election = %+v, want %+v", c.LeaderElection, want)
	}
}

func TestRelativePaths(t *testing.T) {
	doc := strings.Replace(minimal, "ssh-key-file: /k", "ssh-key-file: ssh/id_ed25519\n  http-password-file: ../pw", 1) + "state-dir: state\n"
	c, err := ParseMainConfig("/etc/seakeeper/config.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		c.Gerrit.SSHKeyFile:       "/etc/seakeeper/ssh/id_ed25519",
		c.Gerrit.HTTPPasswordFile: "/etc/pw",
		c.Gerrit.KnownHostsFile:   "/kh",
		c.StateDir:                "/etc/seakeeper/state",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestParseMainConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{
			name: "inline secret is an unknown key",
			doc:  strings.Replace(minimal, "  ssh-key-file: /k\n", "  ssh-key-file: /k\n  http-password: hunter2\n", 1),
			want: []string{`c.yaml:5: gerrit.http-password: unknown key (did you mean "http-password-file"?)`},
		},
		{
			name: "every main-part problem, in line order",
			doc: `gerrit:
  url: ftp://review.example.org/
  ssh: review.example.org
  user: ""
  ssh-key-file: "-----BEGIN OPENSSH PRIVATE KEY-----"
  known-hosts-file: ""
kubernetes:
  namespace: "CI-{project}"
  argo-url: "https://user:secret@argo.example.org"
  max-workflows: 0
  ttl: -1h
state-dir: ""
web:
  listen: ":http"
  internal-listen: "8081"
  public-url: "https://ci.example.org/?x=1"
  internal-url: /relative
restricted-projects: ["(unclosed", ""]
pipelines:
  - name: check
    manager: independent
    trigger: [{event: [patchset-created]}]
`,
			want: []string{
				`c.yaml:2: gerrit.url: "ftp://review.example.org/" must be an http:// or https:// URL`,
				`c.yaml:3: gerrit.ssh: "review.example.org" is not host:port`,
				`c.yaml:4: gerrit.user: the Gerrit account name must not be empty`,
				`c.yaml:5: gerrit.ssh-key-file: must be a file path; secrets and keys are never written in the configuration itself`,
				`c.yaml:6: gerrit.known-hosts-file: the path of the file holding Gerrit's SSH host key (known_hosts format) is required`,
				`c.yaml:8: kubernetes.namespace: "CI-{project}" does not make a valid namespace (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)`,
				`c.yaml:9: kubernetes.argo-url: "https://user:xxxxx@argo.example.org" carries credentials; secrets are never written in the configuration (use gerrit.http-password-file)`,
				`c.yaml:10: kubernetes.max-workflows: must be at least 1, not 0`,
				`c.yaml:11: kubernetes.ttl: must be positive, not -1h0m0s`,
				`c.yaml:12: state-dir: must be the path of the directory that holds the database (default /var/lib/seakeeper)`,
				`c.yaml:14: web.listen: ":http" has no valid port number`,
				`c.yaml:15: web.internal-listen: "8081" is not host:port`,
				`c.yaml:16: web.public-url: "https://ci.example.org/?x=1" must not have a query or fragment`,
				`c.yaml:17: web.internal-url: "/relative" must be an http:// or https:// URL`,
				"c.yaml:18: restricted-projects[0]: bad regular expression \"(unclosed\": error parsing regexp: missing closing ): `(unclosed`",
				`c.yaml:18: restricted-projects[1]: an empty pattern would restrict nothing; remove it`,
			},
		},
		{
			name: "missing sections are reported at the top",
			doc:  "# nearly nothing\nstate-dir: /x\n",
			want: []string{
				`c.yaml:2: gerrit.known-hosts-file: the path of the file holding Gerrit's SSH host key (known_hosts format) is required`,
				`c.yaml:2: gerrit.ssh-key-file: the path of the file holding the private SSH key of the Gerrit account is required`,
				`c.yaml:2: gerrit.ssh: the host:port of Gerrit's SSH daemon is required, e.g. review.example.org:29418`,
				`c.yaml:2: gerrit.url: the Gerrit REST base URL is required, e.g. https://review.example.org/`,
				`c.yaml:2: pipelines: no pipeline is defined`,
				`c.yaml:2: web.internal-url: the URL at which workflow pods reach web.internal-listen is required, e.g. http://seakeeper-0.seakeeper:8081`,
			},
		},
		{
			name: "namespace placeholders and listeners",
			doc: minimal + `kubernetes:
  namespace: "{team}-{project}"
  ttl: forever
  max-workflows: many
`,
			want: []string{
				`c.yaml:13: kubernetes.namespace: "{team}-{project}": the only placeholder is {project}`,
				`c.yaml:14: kubernetes.ttl: expected a duration such as 90s, 15m or 24h, found "forever"`,
				`c.yaml:15: kubernetes.max-workflows: expected an integer, found "many"`,
			},
		},
		{
			name: "leader election and intervals",
			doc: minimal + `leader-election:
  enabled: true
  name: Bad_Name
  identity: "a\nb"
  lease-duration: 500ms
  renew-deadline: 0s
  retry-period: -1s
tick-interval: 0s
housekeeping-interval: 10ms
`,
			want: []string{
				`c.yaml:12: leader-election.namespace: the namespace of the Lease is required when leader election is enabled`,
				`c.yaml:14: leader-election.name: "Bad_Name" is not a valid Lease name (lower-case letters, digits, '-' and '.', at most 253 characters; default seakeeper)`,
				`c.yaml:15: leader-election.identity: must be one line of at most 128 characters`,
				`c.yaml:16: leader-election.lease-duration: must be at least 1s, not 500ms`,
				`c.yaml:18: leader-election.retry-period: must be positive, not -1s`,
				`c.yaml:19: tick-interval: must be at least 1s, not 0s`,
				`c.yaml:20: housekeeping-interval: must be at least 1s, not 10ms`,
			},
		},
		{
			name: "leader election timings that client-go refuses",
			doc: minimal + `leader-election:
  namespace: Seakeeper
  lease-duration: 10s
  retry-period: 13s
`,
			want: []string{
				`c.yaml:12: leader-election.renew-deadline: must be shorter than lease-duration (10s), not 15s: a leader must give up before a standby may take over`,
				`c.yaml:13: leader-election.namespace: "Seakeeper" is not a valid namespace name (lower-case letters, digits and '-', at most 63 characters)`,
				`c.yaml:15: leader-election.retry-period: 13s is too long for renew-deadline 15s, which must exceed 1.2 times it`,
			},
		},
		{
			name: "same listener twice",
			doc:  strings.Replace(minimal, "web:\n", "web:\n  listen: \":9000\"\n  internal-listen: \":9000\"\n", 1),
			want: []string{`c.yaml:8: web.internal-listen: must differ from web.listen (:9000): the internal server is a separate listener`},
		},
		{
			name: "pipeline errors are mapped to lines too",
			doc:  minimal + "  - name: gate\n    manager: dependent\n    trigger: [{event: [comment-added], comment: '(?'}]\n    window: {floor: 30}\n",
			want: []string{
				`c.yaml:12: pipelines[1].report.success.submit: a dependent pipeline must submit on success, or items behind would be tested on changes that never merge`,
				"c.yaml:14: pipelines[1].trigger[0].comment: bad regular expression \"(?\": error parsing regexp: invalid or unsupported Perl syntax: `(?`",
				`c.yaml:15: pipelines[1].window.initial: initial window 20 is below the floor 30`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseMainConfig("c.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if c != nil {
				t.Error("a Config came back with the error")
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestNamespaceTemplates(t *testing.T) {
	for tmpl, ok := range map[string]bool{
		"ci-{project}":           true,
		"{project}":              true,
		"{project}-ci":           true,
		"ci":                     true,
		"ci-{project}-{project}": true,
		"":                       false,
		"ci_{project}":           false,
		"-{project}":             false,
		"ci-{Project}":           false,
		"ci-{project":            false,
		strings.Repeat("a", 63):  true,
		strings.Repeat("a", 64):  false,
	} {
		if err := checkNamespace(tmpl); (err == nil) != ok {
			t.Errorf("checkNamespace(%q) = %v, want ok=%v", tmpl, err, ok)
		}
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"))
	if !os.IsNotExist(err) {
		t.Errorf("err = %v, want a not-exist error", err)
	}
}

// "{hostname}" in web.internal-url is accepted and stands for the host
// name, so that each replica of a StatefulSet announces its own address;
// what it expands to must still be a URL.
func TestInternalURLHostname(t *testing.T) {
	src := strings.Replace(minimal, "http://sk:8081", "http://{hostname}.seakeeper.ns.svc:8081", 1)
	c, err := ParseMainConfig("c.yaml", []byte(src))
	if err != nil {
		t.Fatalf("ParseMainConfig: %v", err)
	}
	if got := c.Web.InternalURLOf("seakeeper-1"); got != "http://seakeeper-1.seakeeper.ns.svc:8081" {
		t.Errorf("InternalURLOf = %q", got)
	}
	bad := strings.Replace(minimal, "http://sk:8081", `"ftp://{hostname}:8081"`, 1)
	_, err = ParseMainConfig("c.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "c.yaml:7: web.internal-url:") {
		t.Errorf("a placeholder URL without a scheme: err = %v, want an error at c.yaml:7", err)
	}
}
