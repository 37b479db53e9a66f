package scheduler

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/leaderelection"

	"github.com/seakeeper-ci/seakeeper/pipeline"
)

// validate checks the main part of the configuration (the pipeline part is
// checked by Compile), normalises it and compiles restricted-projects.
func (c *Config) validate() []pipeline.ConfigError {
	var errs []pipeline.ConfigError
	add := func(path, format string, args ...any) {
		errs = append(errs, pipeline.ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	g := &c.Gerrit
	if g.URL == "" {
		add("gerrit.url", "the Gerrit REST base URL is required, e.g. https://review.example.org/")
	} else if err := checkURL(g.URL); err != nil {
		add("gerrit.url", "%v", err)
	} else if !strings.HasSuffix(g.URL, "/") {
		g.URL += "/"
	}
	if g.SSH == "" {
		add("gerrit.ssh", "the host:port of Gerrit's SSH daemon is required, e.g. review.example.org:29418")
	} else if err := checkHostPort(g.SSH, false); err != nil {
		add("gerrit.ssh", "%v", err)
	}
	if g.User == "" {
		add("gerrit.user", "the Gerrit account name must not be empty")
	}
	checkFile(add, "gerrit.ssh-key-file", g.SSHKeyFile, "the private SSH key of the Gerrit account")
	checkFile(add, "gerrit.known-hosts-file", g.KnownHostsFile, "Gerrit's SSH host key (known_hosts format)")
	checkFile(add, "gerrit.http-password-file", g.HTTPPasswordFile, "")

	k := &c.Kubernetes
	checkFile(add, "kubernetes.kubeconfig", k.Kubeconfig, "")
	if err := checkNamespace(k.Namespace); err != nil {
		add("kubernetes.namespace", "%v", err)
	}
	if k.ArgoURL != "" {
		if err := checkURL(k.ArgoURL); err != nil {
			add("kubernetes.argo-url", "%v", err)
		}
	}
	if k.MaxWorkflows <= 0 {
		add("kubernetes.max-workflows", "must be at least 1, not %d", k.MaxWorkflows)
	}
	if k.TTL <= 0 {
		add("kubernetes.ttl", "must be positive, not %v", k.TTL)
	}

	if c.StateDir == "" || strings.ContainsAny(c.StateDir, "\n\r\x00") {
		add("state-dir", "must be the path of the directory that holds the database (default %s)", DefaultStateDir)
	}

	w := &c.Web
	for _, l := range []struct{ path, addr string }{{"web.listen", w.Listen}, {"web.internal-listen", w.InternalListen}} {
		if l.addr == "" {
			add(l.path, "a listen address such as :8080 is required")
		} else if err := checkHostPort(l.addr, true); err != nil {
			add(l.path, "%v", err)
		}
	}
	if w.Listen != "" && w.Listen == w.InternalListen {
		add("web.internal-listen", "must differ from web.listen (%s): the internal server is a separate listener", w.Listen)
	}
	if w.PublicURL != "" {
		if err := checkURL(w.PublicURL); err != nil {
			add("web.public-url", "%v", err)
		}
	}
	if w.InternalURL == "" {
		add("web.internal-url", "the URL at which workflow pods reach web.internal-listen is required, e.g. http://seakeeper-0.seakeeper:8081")
	} else if err := checkURL(w.InternalURLOf("hostname")); err != nil {
		add("web.internal-url", "%v", err)
	}

	for _, d := range []struct {
		path string
		v    time.Duration
	}{{"tick-interval", c.TickInterval}, {"housekeeping-interval", c.HousekeepingInterval}} {
		if d.v < time.Second {
			add(d.path, "must be at least 1s, not %v", d.v)
		}
	}
	c.LeaderElection.validate(add)

	c.restricted = nil
	for i, expr := range c.RestrictedProjects {
		path := fmt.Sprintf("restricted-projects[%d]", i)
		if expr == "" {
			add(path, "an empty pattern would restrict nothing; remove it")
			continue
		}
		// Checked as written, so that the message quotes the operator's
		// pattern; matched anchored, against whole project names.
		_, err := regexp.Compile(expr)
		var re *regexp.Regexp
		if err == nil {
			re, err = regexp.Compile("^(?:" + expr + ")$")
		}
		if err != nil {
			add(path, "bad regular expression %q: %v", expr, err)
			continue
		}
		c.restricted = append(c.restricted, re)
	}
	return errs
}

// validate checks the leader election settings, also when the election is
// off, so that turning it on holds no surprise.
func (le *LeaderElectionConfig) validate(add func(string, string, ...any)) {
	switch {
	case le.Namespace == "" && le.Enabled:
		add("leader-election.namespace", "the namespace of the Lease is required when leader election is enabled")
	case le.Namespace != "" && (len(le.Namespace) > 63 || !dns1123Label.MatchString(le.Namespace)):
		add("leader-election.namespace", "%q is not a valid namespace name (lower-case letters, digits and '-', at most 63 characters)", le.Namespace)
	}
	if len(le.Name) > 253 || !dns1123Subdomain.MatchString(le.Name) {
		add("leader-election.name", "%q is not a valid Lease name (lower-case letters, digits, '-' and '.', at most 253 characters; default %s)", le.Name, DefaultLeaseName)
	}
	if strings.ContainsAny(le.Identity, "\n\r\x00") || len(le.Identity) > 128 {
		add("leader-election.identity", "must be one line of at most 128 characters")
	}
	switch {
	case le.LeaseDuration < time.Second:
		add("leader-election.lease-duration", "must be at least 1s, not %v", le.LeaseDuration)
	case le.RenewDeadline <= 0:
		add("leader-election.renew-deadline", "must be positive, not %v", le.RenewDeadline)
	case le.RenewDeadline >= le.LeaseDuration:
		add("leader-election.renew-deadline", "must be shorter than lease-duration (%v), not %v: a leader must give up before a standby may take over", le.LeaseDuration, le.RenewDeadline)
	}
	switch {
	case le.RetryPeriod <= 0:
		add("leader-election.retry-period", "must be positive, not %v", le.RetryPeriod)
	case le.RenewDeadline > 0 && float64(le.RenewDeadline) <= leaderelection.JitterFactor*float64(le.RetryPeriod):
		add("leader-election.retry-period", "%v is too long for renew-deadline %v, which must exceed %v times it", le.RetryPeriod, le.RenewDeadline, leaderelection.JitterFactor)
	}
}

// checkURL accepts absolute http and https URLs without credentials.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, errText(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must be an http:// or https:// URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q carries credentials; secrets are never written in the configuration (use gerrit.http-password-file)", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", s)
	}
	return nil
}

// errText strips the repetition of the input from url.Parse's errors.
func errText(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// checkHostPort accepts host:port. A listen address may leave the host out
// (":8080": every interface); a remote address may not.
func checkHostPort(s string, listen bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" && !listen {
		return fmt.Errorf("%q has no host", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || n == 0 && !listen {
		return fmt.Errorf("%q has no valid port number", s)
	}
	return nil
}

// checkFile checks a file path setting; what names what the file holds when
// the setting is required.
func checkFile(add func(string, string, ...any), path, value, what string) {
	switch {
	case value == "" && what != "":
		add(path, "the path of the file holding %s is required", what)
	case strings.ContainsAny(value, "\n\r\x00") || strings.HasPrefix(value, "-----BEGIN"):
		add(path, "must be a file path; secrets and keys are never written in the configuration itself")
	}
}

// namespacePlaceholder is the only placeholder of the namespace template.
const namespacePlaceholder = "{project}"

var (
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// checkNamespace checks that the namespace template makes a valid DNS-1123
// label once {project} is replaced by a (sanitised) project name.
func checkNamespace(tmpl string) error {
	if tmpl == "" {
		return fmt.Errorf("the namespace template must not be empty (default %q)", DefaultNamespace)
	}
	rest := strings.ReplaceAll(tmpl, namespacePlaceholder, "")
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("%q: the only placeholder is %s", tmpl, namespacePlaceholder)
	}
	sample := strings.ReplaceAll(tmpl, namespacePlaceholder, "x")
	if len(sample) > 63 || !dns1123Label.MatchString(sample) {
		return fmt.Errorf("%q does not make a valid namespace (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)", tmpl)
	}
	return nil
}
