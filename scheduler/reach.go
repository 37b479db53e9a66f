package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"golang.org/x/crypto/ssh"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/seakeeper-ci/seakeeper/argo"
	"github.com/seakeeper-ci/seakeeper/gerrit"
)

// Check is the outcome of one check of Reach.
type Check struct {
	// Name says what was checked: "gerrit rest", "gerrit ssh",
	// "kubernetes api", "kubernetes workflows", "kubernetes permissions".
	Name string
	// Detail says what was found, when the check passed.
	Detail string
	// Err says why the check failed; nil when it passed.
	Err error
}

// String is the check's line: "name: ok: detail" or "name: FAILED: why".
func (c Check) String() string {
	if c.Err != nil {
		return fmt.Sprintf("%s: FAILED: %v", c.Name, c.Err)
	}
	return fmt.Sprintf("%s: ok: %s", c.Name, c.Detail)
}

// PrintChecks writes one line per check to w and reports whether every
// check passed.
func PrintChecks(w io.Writer, checks []Check) bool {
	ok := true
	for _, c := range checks {
		fmt.Fprintln(w, c)
		ok = ok && c.Err == nil
	}
	return ok
}

// ReachOptions adjust Reach; the zero value is what check-config uses.
type ReachOptions struct {
	// RestConfig, when set, is used instead of the kubeconfig of the main
	// configuration (or the in-cluster credentials).
	RestConfig *rest.Config
	// Timeout bounds each check (default 20s).
	Timeout time.Duration
	// StreamHold is how long stream-events must stay open to pass (default
	// 2s): Gerrit starts the command before it says that the account may
	// not stream events.
	StreamHold time.Duration
}

// Reach connects to what the daemon described by cfg needs, with its
// credentials, and returns one Check per part: Gerrit's REST API (the
// account behind the HTTP password, GET /a/accounts/self), Gerrit's SSH
// daemon (the host key against known_hosts, the client key, a short
// stream-events session with the configured filters), the Kubernetes API
// (the kubeconfig or in-cluster credentials), the Argo Workflow CRD, and
// the permissions the daemon needs there (asked with
// SelfSubjectAccessReviews). It changes nothing anywhere. The Kubernetes
// checks after a failed "kubernetes api" are not run.
func Reach(ctx context.Context, cfg *Config, opts ReachOptions) []Check {
	if opts.Timeout <= 0 {
		opts.Timeout = 20 * time.Second
	}
	if opts.StreamHold <= 0 {
		opts.StreamHold = 2 * time.Second
	}
	checks := []Check{reachREST(ctx, cfg, opts), reachSSH(ctx, cfg, opts)}
	return append(checks, reachKubernetes(ctx, cfg, opts)...)
}

// reachREST reads the account of the HTTP credentials.
func reachREST(ctx context.Context, cfg *Config, opts ReachOptions) Check {
	c := Check{Name: "gerrit rest"}
	g := cfg.Gerrit
	hc := &http.Client{Timeout: opts.Timeout}
	if g.HTTPPasswordFile == "" {
		var version string
		if c.Err = getGerritJSON(ctx, hc, g.URL, "config/server/version", "", "", &version); c.Err == nil {
			c.Detail = fmt.Sprintf("%s answers anonymously (Gerrit %s); without gerrit.http-password-file only a test server accepts votes", g.URL, version)
		}
		return c
	}
	password, err := readPassword(g.HTTPPasswordFile)
	if err != nil {
		c.Err = err
		return c
	}
	var acct struct {
		ID       int    `json:"_account_id"`
		Username string `json:"username"`
	}
	if err := getGerritJSON(ctx, hc, g.URL, "a/accounts/self", g.User, password, &acct); err != nil {
		if strings.Contains(err.Error(), ": 401 ") {
			err = fmt.Errorf("%w (Gerrit refused user %q with the password in %s)", err, g.User, g.HTTPPasswordFile)
		}
		c.Err = err
		return c
	}
	if acct.Username != "" && acct.Username != g.User {
		c.Err = fmt.Errorf("the password authenticates account %q, not gerrit.user %q", acct.Username, g.User)
		return c
	}
	var version string
	if err := getGerritJSON(ctx, hc, g.URL, "a/config/server/version", g.User, password, &version); err != nil {
		version = "version unknown"
	}
	c.Detail = fmt.Sprintf("authenticated at %s as %q (account %d), Gerrit %s", g.URL, g.User, acct.ID, version)
	return c
}

// getGerritJSON GETs base+path and decodes Gerrit's JSON (after its )]}'
// line) into out.
func getGerritJSON(ctx context.Context, hc *http.Client, base, path, user, password string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET /%s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET /%s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 || strings.Contains(msg, "<") || msg == http.StatusText(resp.StatusCode) {
			msg = "" // a proxy's page says nothing the status does not
		}
		return fmt.Errorf("GET /%s: %s", path, strings.TrimSpace(fmt.Sprintf("%d %s %s", resp.StatusCode, http.StatusText(resp.StatusCode), msg)))
	}
	body = bytes.TrimPrefix(body, []byte(")]}'"))
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET /%s: not Gerrit's JSON: %v", path, err)
	}
	return nil
}

// readPassword reads an HTTP password file as the REST client does: one
// trailing newline is not part of the password.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if p == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return p, nil
}

// reachSSH opens stream-events and keeps it open for StreamHold.
func reachSSH(ctx context.Context, cfg *Config, opts ReachOptions) Check {
	c := Check{Name: "gerrit ssh"}
	g := cfg.Gerrit
	signer, err := gerrit.LoadSigner(g.SSHKeyFile)
	if err != nil {
		c.Err = err
		return c
	}
	hostKeys, err := gerrit.KnownHosts(g.KnownHostsFile)
	if err != nil {
		c.Err = err
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	items := gerrit.StreamConfig{
		Addr: g.SSH, User: g.User, Signer: signer, HostKeyCallback: hostKeys,
		EventTypes: EventTypes(&cfg.Config), DialTimeout: opts.Timeout,
		Logger: slog.New(slog.DiscardHandler),
	}.Run(ctx)
	defer func() {
		cancel()
		for range items {
		}
	}()
	var hold <-chan time.Time
	for {
		select {
		case it, ok := <-items:
			var le *gerrit.LineError
			switch {
			case !ok:
				c.Err = errors.New("the stream client stopped")
				return c
			case it.Err != nil && !errors.As(it.Err, &le):
				c.Err = it.Err
				return c
			case it.Connected() && hold == nil:
				t := time.NewTimer(opts.StreamHold)
				defer t.Stop()
				hold = t.C
			}
		case <-hold:
			c.Detail = fmt.Sprintf("stream-events open at %s as %q with key %s; host key checked against %s",
				g.SSH, g.User, ssh.FingerprintSHA256(signer.PublicKey()), g.KnownHostsFile)
			return c
		case <-ctx.Done():
			c.Err = fmt.Errorf("no stream-events session with %s within %v", g.SSH, opts.Timeout)
			return c
		}
	}
}

// reachKubernetes checks the API, the Workflow CRD and the permissions.
func reachKubernetes(ctx context.Context, cfg *Config, opts ReachOptions) []Check {
	api := Check{Name: "kubernetes api"}
	restCfg := opts.RestConfig
	if restCfg == nil {
		var err error
		if restCfg, err = kubeConfig(cfg.Kubernetes.Kubeconfig); err != nil {
			api.Err = err
			return []Check{api}
		}
	}
	restCfg = rest.CopyConfig(restCfg)
	restCfg.Timeout = opts.Timeout
	kc, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		api.Err = err
		return []Check{api}
	}
	v, err := kc.Discovery().ServerVersion()
	if err != nil {
		api.Err = fmt.Errorf("%s: %w", restCfg.Host, err)
		return []Check{api}
	}
	api.Detail = fmt.Sprintf("%s answers, Kubernetes %s", restCfg.Host, v.GitVersion)

	crd := Check{Name: "kubernetes workflows", Detail: "the Workflow CRD (argoproj.io/v1alpha1) is installed"}
	rl, err := kc.Discovery().ServerResourcesForGroupVersion("argoproj.io/v1alpha1")
	switch {
	case apierrors.IsNotFound(err):
		crd.Err = errors.New("the Argo Workflow CRD (workflows.argoproj.io, v1alpha1) is not installed")
	case err != nil:
		crd.Err = err
	case !slices.ContainsFunc(rl.APIResources, func(r metav1.APIResource) bool { return r.Name == "workflows" }):
		crd.Err = errors.New("argoproj.io/v1alpha1 has no workflows resource: is the Argo Workflow CRD installed?")
	}

	perm := Check{Name: "kubernetes permissions"}
	var granted, denied []authzv1.ResourceAttributes
	for _, a := range neededAccess(cfg) {
		r, err := kc.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}, metav1.CreateOptions{})
		switch {
		case err != nil:
			perm.Err = fmt.Errorf("asking whether it may %s: %w", describeAccess([]authzv1.ResourceAttributes{a}), err)
			return []Check{api, crd, perm}
		case r.Status.Allowed:
			granted = append(granted, a)
		default:
			denied = append(denied, a)
		}
	}
	if len(denied) > 0 {
		perm.Err = fmt.Errorf("not allowed to %s", describeAccess(denied))
	} else {
		perm.Detail = "may " + describeAccess(granted)
	}
	return []Check{api, crd, perm}
}

// neededAccess lists what the daemon does in Kubernetes: watch Workflows
// in all namespaces (the Argo adapter's informer), create, read, patch
// and delete them where they run, create project namespaces if it is to,
// and hold its Lease. Where the namespace template has {project}, the
// namespaces of the projects named in queues are checked, or all
// namespaces when no project is named.
func neededAccess(cfg *Config) []authzv1.ResourceAttributes {
	wf := func(verb, ns string) authzv1.ResourceAttributes {
		return authzv1.ResourceAttributes{Verb: verb, Group: "argoproj.io", Resource: "workflows", Namespace: ns}
	}
	out := []authzv1.ResourceAttributes{wf("list", ""), wf("watch", "")}
	var namespaces []string
	tmpl := cfg.Kubernetes.Namespace
	if !strings.Contains(tmpl, namespacePlaceholder) {
		namespaces = []string{tmpl}
	} else {
		for _, q := range cfg.Queues {
			for _, p := range q.Projects {
				namespaces = append(namespaces, argo.Namespace(tmpl, p))
			}
		}
		slices.Sort(namespaces)
		namespaces = slices.Compact(namespaces)
		if len(namespaces) == 0 {
			namespaces = []string{""}
		}
	}
	for _, ns := range namespaces {
		for _, verb := range []string{"create", "get", "patch", "delete"} {
			out = append(out, wf(verb, ns))
		}
	}
	if cfg.Kubernetes.CreateNamespaces {
		out = append(out, authzv1.ResourceAttributes{Verb: "create", Resource: "namespaces"})
	}
	if le := cfg.LeaderElection; le.Enabled {
		for _, verb := range []string{"get", "create", "update"} {
			out = append(out, authzv1.ResourceAttributes{Verb: verb, Group: "coordination.k8s.io",
				Resource: "leases", Namespace: le.Namespace, Name: le.Name})
		}
	}
	return out
}

// describeAccess says "list, watch workflows.argoproj.io in all
// namespaces; create namespaces", in the order of as.
func describeAccess(as []authzv1.ResourceAttributes) string {
	var objects []string
	verbs := map[string][]string{}
	for _, a := range as {
		o := a.Resource
		if a.Group != "" {
			o += "." + a.Group
		}
		if a.Name != "" {
			o += " " + a.Name
		}
		switch {
		case a.Namespace != "":
			o += " in namespace " + a.Namespace
		case a.Resource != "namespaces":
			o += " in all namespaces"
		}
		if verbs[o] == nil {
			objects = append(objects, o)
		}
		verbs[o] = append(verbs[o], a.Verb)
	}
	out := make([]string, len(objects))
	for i, o := range objects {
		out[i] = strings.Join(verbs[o], ", ") + " " + o
	}
	return strings.Join(out, "; ")
}

// kubeClients returns the Argo clientset and, when project namespaces are
// to be created, the namespace client.
func kubeClients(cfg *Config, opts ServeOptions) (versioned.Interface, corev1client.NamespaceInterface, error) {
	if opts.Workflows != nil {
		ns := opts.Namespaces
		if !cfg.Kubernetes.CreateNamespaces {
			ns = nil
		}
		return opts.Workflows, ns, nil
	}
	restCfg, err := restConfig(cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	wf, err := versioned.NewForConfig(restCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: %w", err)
	}
	if !cfg.Kubernetes.CreateNamespaces {
		return wf, nil, nil
	}
	kc, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: %w", err)
	}
	return wf, kc.CoreV1().Namespaces(), nil
}

// restConfig returns ServeOptions.RestConfig, or loads the configured
// kubeconfig (the in-cluster credentials without one).
func restConfig(cfg *Config, opts ServeOptions) (*rest.Config, error) {
	if opts.RestConfig != nil {
		return opts.RestConfig, nil
	}
	return kubeConfig(cfg.Kubernetes.Kubeconfig)
}

// kubeConfig loads the kubeconfig at path, or the in-cluster credentials
// when path is empty.
func kubeConfig(path string) (*rest.Config, error) {
	var (
		c   *rest.Config
		err error
	)
	if path == "" {
		c, err = rest.InClusterConfig()
	} else {
		c, err = clientcmd.BuildConfigFromFlags("", path)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return c, nil
}
