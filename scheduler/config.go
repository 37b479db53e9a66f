package scheduler

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/seakeeper-ci/seakeeper/internal/yamlstrict"
	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// Config is the main configuration of the daemon (README, "Configuration
// reference"). The pipeline part is inline: its keys pipelines and queues
// sit at the top level next to gerrit, kubernetes and the rest.
//
// Secrets are never inline: the configuration names the files that hold
// them, and a key such as http-password is an unknown key.
type Config struct {
	Gerrit     GerritConfig     `yaml:"gerrit"`
	Kubernetes KubernetesConfig `yaml:"kubernetes"`
	// StateDir holds the database (default /var/lib/seakeeper).
	StateDir string    `yaml:"state-dir"`
	Web      WebConfig `yaml:"web"`
	// RestrictedProjects are regular expressions matching whole project
	// names; the changes of matching projects never appear on the status
	// page or in the status API.
	RestrictedProjects []string `yaml:"restricted-projects"`
	// TickInterval is how often the daemon feeds the core a Tick event, so
	// that the core's clock moves on when Gerrit is quiet (default 30s,
	// at least 1s).
	TickInterval time.Duration `yaml:"tick-interval"`
	// HousekeepingInterval is how often the daemon deletes the speculative
	// refs of buildsets no longer in any queue and lets git gc the mirrors
	// it changed (default 10m, at least 1s).
	HousekeepingInterval time.Duration `yaml:"housekeeping-interval"`
	// LeaderElection guards against two instances acting at once.
	LeaderElection LeaderElectionConfig `yaml:"leader-election"`

	pipeline.Config `yaml:",inline"`

	restricted []*regexp.Regexp
}

// GerritConfig says how to reach Gerrit.
type GerritConfig struct {
	// URL is the REST base URL, e.g. https://review.example.org/ (always
	// ends with a slash once loaded).
	URL string `yaml:"url"`
	// SSH is the host:port of Gerrit's SSH daemon, for stream-events.
	SSH string `yaml:"ssh"`
	// User is the account for SSH and REST (default seakeeper).
	User string `yaml:"user"`
	// SSHKeyFile holds the private key of User.
	SSHKeyFile string `yaml:"ssh-key-file"`
	// KnownHostsFile holds the host key of the SSH daemon; it is required,
	// so that the host key is always checked.
	KnownHostsFile string `yaml:"known-hosts-file"`
	// HTTPPasswordFile holds User's HTTP password for REST. Empty: REST
	// calls are anonymous, which only a test server accepts for votes.
	HTTPPasswordFile string `yaml:"http-password-file"`
}

// KubernetesConfig says where and how workflows run.
type KubernetesConfig struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster credentials.
	Kubeconfig string `yaml:"kubeconfig"`
	// Namespace is the namespace of a project's workflows: a template in
	// which {project} stands for the project name made a DNS-1123 label
	// (default ci-{project}).
	Namespace string `yaml:"namespace"`
	// ArgoURL is the Argo UI, for links in reports and on the status page
	// (optional).
	ArgoURL string `yaml:"argo-url"`
	// MaxWorkflows caps the workflows running at once (default 100).
	MaxWorkflows int `yaml:"max-workflows"`
	// TTL is how long a finished workflow is kept (default 24h).
	TTL time.Duration `yaml:"ttl"`
	// CreateNamespaces lets the daemon create a project's namespace, labelled
	// as Seakeeper's, the first time it runs a workflow there (needs create on
	// namespaces). Off by default: namespaces are then made by the operator.
	CreateNamespaces bool `yaml:"create-namespaces"`
}

// WebConfig configures the HTTP servers.
type WebConfig struct {
	// Listen is the address of the public server: status page, API,
	// metrics, health (default :8080).
	Listen string `yaml:"listen"`
	// InternalListen is the address of the server that workflows fetch
	// speculative git state from (default :8081).
	InternalListen string `yaml:"internal-listen"`
	// PublicURL is how users reach Listen, for links in reports (optional).
	PublicURL string `yaml:"public-url"`
	// InternalURL is how workflow pods reach InternalListen (required).
	// "{hostname}" in it stands for this instance's host name, which in a
	// StatefulSet is the pod's name: with two replicas each announces its
	// own address (http://{hostname}.seakeeper.seakeeper.svc:8081).
	InternalURL string `yaml:"internal-url"`
}

// LeaderElectionConfig configures the election, through a Kubernetes
// Lease (coordination.k8s.io/v1), of the one instance that acts. A standby
// serves web.listen (health only) and waits; it opens neither the database
// nor the git mirrors, and talks to neither Gerrit nor Argo. See Serve for
// what a new leader recovers and what it does not.
type LeaderElectionConfig struct {
	// Enabled turns the election on (default off: the instance acts at
	// once, and must be the only one).
	Enabled bool `yaml:"enabled"`
	// Namespace holds the Lease (required when enabled).
	Namespace string `yaml:"namespace"`
	// Name is the Lease's name (default seakeeper).
	Name string `yaml:"name"`
	// Identity names this instance in the Lease; it must differ between
	// instances. Empty: the POD_NAME environment variable (seakeeper
	// serve), else the host name.
	Identity string `yaml:"identity"`
	// LeaseDuration is how long a standby waits, after the leader's last
	// renewal, before it takes over (default 30s, at least 1s).
	LeaseDuration time.Duration `yaml:"lease-duration"`
	// RenewDeadline is how long the leader keeps trying to renew before it
	// gives up leading and exits (default 15s). It must be shorter than
	// lease-duration; the difference, less retry-period, is the time the
	// leader has to stop before a standby may take over.
	RenewDeadline time.Duration `yaml:"renew-deadline"`
	// RetryPeriod is the interval of renewals and of a standby's attempts
	// (default 3s); renew-deadline must exceed 1.2 times it.
	RetryPeriod time.Duration `yaml:"retry-period"`
}

// Defaults of the main configuration.
const (
	DefaultGerritUser           = "seakeeper"
	DefaultNamespace            = "ci-{project}"
	DefaultMaxWorkflows         = 100
	DefaultTTL                  = 24 * time.Hour
	DefaultStateDir             = "/var/lib/seakeeper"
	DefaultListen               = ":8080"
	DefaultInternalListen       = ":8081"
	DefaultTickInterval         = 30 * time.Second
	DefaultHousekeepingInterval = 10 * time.Minute
	DefaultLeaseName            = "seakeeper"
	DefaultLeaseDuration        = 30 * time.Second
	DefaultRenewDeadline        = 15 * time.Second
	DefaultRetryPeriod          = 3 * time.Second
)

func defaults() Config {
	return Config{
		Gerrit:               GerritConfig{User: DefaultGerritUser},
		Kubernetes:           KubernetesConfig{Namespace: DefaultNamespace, MaxWorkflows: DefaultMaxWorkflows, TTL: DefaultTTL},
		StateDir:             DefaultStateDir,
		Web:                  WebConfig{Listen: DefaultListen, InternalListen: DefaultInternalListen},
		TickInterval:         DefaultTickInterval,
		HousekeepingInterval: DefaultHousekeepingInterval,
		LeaderElection: LeaderElectionConfig{Name: DefaultLeaseName, LeaseDuration: DefaultLeaseDuration,
			RenewDeadline: DefaultRenewDeadline, RetryPeriod: DefaultRetryPeriod},
	}
}

// LoadConfig reads and checks the main configuration file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseMainConfig(path, data)
}

// ParseMainConfig checks a main configuration document: strictly decoded
// (unknown keys, wrong kinds, bad values), the pipelines compiled, and the
// main part validated. It returns every problem at once, one per line,
// sorted by line, each "file:line: path: message"; the Config is then nil.
//
// Relative file paths (key files, kubeconfig, state-dir) are taken relative
// to the directory of filename, which is otherwise used in messages only.
func ParseMainConfig(filename string, data []byte) (*Config, error) {
	c := defaults()
	lines, errs := yamlstrict.Decode(filename, data, &c)
	problems := c.Compile()
	problems = append(problems, c.validate()...)
	for _, p := range problems {
		if !lines.Reported(p.Path) {
			errs = append(errs, lines.Errorf(p.Path, "%s", p.Msg))
		}
	}
	if len(errs) > 0 {
		yamlstrict.Sort(errs)
		return nil, yamlstrict.List(errs)
	}
	c.resolvePaths(filepath.Dir(filename))
	return &c, nil
}

// resolvePaths makes relative file paths relative to dir.
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{&c.Gerrit.SSHKeyFile, &c.Gerrit.KnownHostsFile, &c.Gerrit.HTTPPasswordFile, &c.Kubernetes.Kubeconfig, &c.StateDir} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// HostnamePlaceholder in web.internal-url stands for the host name.
const HostnamePlaceholder = "{hostname}"

// InternalURLOf returns InternalURL with "{hostname}" replaced by host.
func (w WebConfig) InternalURLOf(host string) string {
	return strings.ReplaceAll(w.InternalURL, HostnamePlaceholder, host)
}

// Restricted reports whether project is one whose changes must never be
// shown.
func (c *Config) Restricted(project string) bool {
	for _, re := range c.restricted {
		if re.MatchString(project) {
			return true
		}
	}
	return false
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the text of the built-in example configuration, the
// one the demo runs with.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Default returns the built-in example configuration, parsed. It is valid
// (a test makes sure), so Default panics only on a broken build.
func Default() *Config {
	c, err := ParseMainConfig("default.yaml", defaultYAML)
	if err != nil {
		panic(fmt.Sprintf("scheduler: the built-in default.yaml is invalid:\n%v", err))
	}
	return c
}
