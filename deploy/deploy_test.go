package deploy

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/seakeeper-ci/seakeeper/argo"
)

// Checks of the manifests against each other, the image and the code; the
// API server's own checks are in kube_test.go.

func TestKustomizationListsEveryManifest(t *testing.T) {
	listed := resourceFiles(t)
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f != "kustomization.yaml" && f != exampleSecret && !slices.Contains(listed, f) {
			t.Errorf("%s is not among the resources of kustomization.yaml: kubectl apply -k would leave it out", f)
		}
	}
	for _, f := range listed {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", f, err)
		}
		if f == exampleSecret {
			t.Errorf("kustomization.yaml lists %s: apply -k would overwrite the real Secret with the example", f)
		}
	}
}

func TestImageReadsTheMountedConfig(t *testing.T) {
	d := load(t)
	img := readDockerfile(t)
	if !slices.Equal(img.entrypoint, []string{"seakeeper"}) {
		t.Errorf("Dockerfile ENTRYPOINT = %q, want [seakeeper]", img.entrypoint)
	}
	i := slices.Index(img.cmd, "--config")
	if len(img.cmd) == 0 || img.cmd[0] != "serve" || i < 0 || i+1 >= len(img.cmd) {
		t.Fatalf("Dockerfile CMD = %q, want serve --config FILE", img.cmd)
	}
	path := img.cmd[i+1]
	if len(d.container.Command) > 0 || len(d.container.Args) > 0 {
		t.Fatalf("container %s overrides the image's ENTRYPOINT/CMD (%q %q): this test follows the image's", d.container.Name, d.container.Command, d.container.Args)
	}
	src, err := d.fileSource(path)
	if err != nil {
		t.Fatalf("the image reads its config from %s: %v", path, err)
	}
	if src != (source{"ConfigMap", d.configMap.Name, configKey, true}) {
		t.Errorf("%s comes from %+v, want key %s of ConfigMap %s, mounted read-only", path, src, configKey, d.configMap.Name)
	}
}

func TestSecretFilesAreThoseTheConfigNames(t *testing.T) {
	d := load(t)
	g := d.cfg.Gerrit
	for _, f := range []struct{ key, path string }{
		{"gerrit.ssh-key-file", g.SSHKeyFile},
		{"gerrit.known-hosts-file", g.KnownHostsFile},
		{"gerrit.http-password-file", g.HTTPPasswordFile},
	} {
		if f.path == "" {
			t.Errorf("the sample config sets no %s", f.key)
			continue
		}
		src, err := d.fileSource(f.path)
		if err != nil {
			t.Errorf("%s %s: %v", f.key, f.path, err)
			continue
		}
		if src.kind != "Secret" || src.name != d.secret.Name || !src.readOnly {
			t.Errorf("%s %s comes from %+v, want a key of Secret %s mounted read-only", f.key, f.path, src, d.secret.Name)
		}
		_, inData := d.secret.Data[src.key]
		_, inString := d.secret.StringData[src.key]
		if !inData && !inString {
			t.Errorf("%s %s is key %q of Secret %s, which %s does not have", f.key, f.path, src.key, d.secret.Name, exampleSecret)
		}
	}
	for _, e := range d.container.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Errorf("env %s comes from a Secret: secrets are read from files, never the environment", e.Name)
		}
	}
	for _, e := range d.container.EnvFrom {
		if e.SecretRef != nil {
			t.Errorf("envFrom Secret %s: secrets are read from files, never the environment", e.SecretRef.Name)
		}
	}
}

func TestStateDirIsThePersistentVolume(t *testing.T) {
	d := load(t)
	var mount *corev1.VolumeMount
	for i, vm := range d.container.VolumeMounts {
		if vm.MountPath == d.cfg.StateDir {
			mount = &d.container.VolumeMounts[i]
		}
	}
	if mount == nil || mount.ReadOnly || mount.SubPath != "" {
		t.Fatalf("state-dir %s: want a writable mount of a whole volume, the container has %+v", d.cfg.StateDir, d.container.VolumeMounts)
	}
	i := slices.IndexFunc(d.sts.Spec.VolumeClaimTemplates, func(c corev1.PersistentVolumeClaim) bool { return c.Name == mount.Name })
	if i < 0 {
		t.Fatalf("state-dir %s is volume %q, not one of the StatefulSet's volumeClaimTemplates", d.cfg.StateDir, mount.Name)
	}
	got := d.sts.Spec.VolumeClaimTemplates[i].Spec.Resources.Requests[corev1.ResourceStorage]
	if want := resource.MustParse("100Gi"); got.Cmp(want) < 0 {
		t.Errorf("state volume requests %s; the mirrors of 2,000 repositories need at least %s", got.String(), want.String())
	}
}

// listenPort returns the port of a listen address such as ":8080".
func listenPort(t *testing.T, key, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("%s %q has no port", key, addr)
	}
	return int32(n)
}

func TestProbesHitHealthAndReadiness(t *testing.T) {
	d := load(t)
	web := listenPort(t, "web.listen", d.cfg.Web.Listen)
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"livenessProbe", d.container.LivenessProbe, "/healthz"},
		{"readinessProbe", d.container.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an HTTP GET of %s", p.name, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			t.Errorf("%s gets %s, want %s", p.name, g.Path, p.path)
		}
		if port := d.containerPort(t, g.Port.String()); port != web {
			t.Errorf("%s goes to port %d, but web.listen is %s", p.name, port, d.cfg.Web.Listen)
		}
	}
}

func TestServicesReachTheListeners(t *testing.T) {
	d := load(t)
	web := listenPort(t, "web.listen", d.cfg.Web.Listen)
	internal := listenPort(t, "web.internal-listen", d.cfg.Web.InternalListen)
	for _, p := range []int32{web, internal} {
		d.containerPort(t, fmt.Sprint(p))
	}
	headless := typed[corev1.Service](t, find(t, d.all, "Service", d.sts.Spec.ServiceName))
	if headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s (the StatefulSet's serviceName) must be headless, clusterIP %q", headless.Name, headless.Spec.ClusterIP)
	}
	if !selects(headless.Spec.Selector, d.sts.Spec.Template.Labels) {
		t.Errorf("Service %s selector %v does not select the pods %v", headless.Name, headless.Spec.Selector, d.sts.Spec.Template.Labels)
	}

	// Workflows fetch from web.internal-url: the acting pod's name (the
	// host name of a StatefulSet pod) under the headless Service, at the
	// internal listener's port; each replica announces its own.
	for i := range 2 {
		pod := fmt.Sprintf("%s-%d", d.sts.Name, i)
		u, err := url.Parse(d.cfg.Web.InternalURLOf(pod))
		if err != nil {
			t.Fatal(err)
		}
		wantHost := fmt.Sprintf("%s.%s.%s.svc", pod, headless.Name, d.sts.Namespace)
		if h := strings.TrimSuffix(u.Hostname(), ".cluster.local"); h != wantHost {
			t.Errorf("web.internal-url %s on pod %s: host %s, want the pod under the headless Service: %s",
				d.cfg.Web.InternalURL, pod, u.Hostname(), wantHost)
		}
	}
	u, err := url.Parse(d.cfg.Web.InternalURLOf(d.sts.Name + "-0"))
	if err != nil {
		t.Fatal(err)
	}
	if !servicePortReaches(d, headless, u.Port(), internal) {
		t.Errorf("web.internal-url %s: Service %s has no port %s to the internal listener (container port %d)", d.cfg.Web.InternalURL, headless.Name, u.Port(), internal)
	}

	webSvc := typed[corev1.Service](t, find(t, d.all, "Service", "seakeeper-web"))
	if webSvc.Spec.Type != corev1.ServiceTypeClusterIP && webSvc.Spec.Type != "" || webSvc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Errorf("Service %s must be a ClusterIP Service", webSvc.Name)
	}
	if !selects(webSvc.Spec.Selector, d.sts.Spec.Template.Labels) || !servicePortReaches(d, webSvc, fmt.Sprint(web), web) {
		t.Errorf("Service %s does not reach web.listen (port %d) of the pods", webSvc.Name, web)
	}
	if servicePortReaches(d, webSvc, fmt.Sprint(internal), internal) {
		t.Errorf("Service %s exposes the internal git endpoint", webSvc.Name)
	}
}

// selects reports whether a Service selector selects pods labelled so.
func selects(selector, podLabels map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

// servicePortReaches reports whether svc's port (a number) leads to
// containerPort of the pods.
func servicePortReaches(d deployment, svc *corev1.Service, port string, containerPort int32) bool {
	for _, p := range svc.Spec.Ports {
		if fmt.Sprint(p.Port) != port {
			continue
		}
		target := p.TargetPort
		if target == (intstr.IntOrString{}) {
			target = intstr.FromInt32(p.Port)
		}
		for _, cp := range d.container.Ports {
			if cp.ContainerPort == containerPort && (target.String() == cp.Name || target.IntValue() == int(containerPort)) {
				return true
			}
		}
	}
	return false
}

func TestLeaderElectionMatchesTheManifests(t *testing.T) {
	d := load(t)
	le := d.cfg.LeaderElection
	if !le.Enabled {
		// Without an election every instance acts.
		if r := d.sts.Spec.Replicas; r == nil || *r > 1 {
			t.Errorf("leader election is off, so the StatefulSet must run one replica, not %s", fmtPtr(r))
		}
		return
	}
	if le.Namespace != d.sts.Namespace {
		t.Errorf("leader-election.namespace %s, but the daemon runs in %s (where rbac.yaml grants the Lease)", le.Namespace, d.sts.Namespace)
	}
	if le.Identity != "" {
		t.Fatalf("leader-election.identity %q is the same for every replica; leave it empty to use $POD_NAME", le.Identity)
	}
	i := slices.IndexFunc(d.container.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_NAME" })
	if i < 0 || d.container.Env[i].ValueFrom == nil || d.container.Env[i].ValueFrom.FieldRef == nil ||
		d.container.Env[i].ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("POD_NAME, the identity in the Lease, must come from the downward API (metadata.name); env is %+v", d.container.Env)
	}
}

func TestPodIsLockedDown(t *testing.T) {
	d := load(t)
	pod := d.sts.Spec.Template.Spec
	psc, csc := pod.SecurityContext, d.container.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if csc == nil {
		t.Fatal("the container has no securityContext")
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isTrue(psc.RunAsNonRoot) && !isTrue(csc.RunAsNonRoot) {
		t.Error("runAsNonRoot is not set")
	}
	if !isTrue(csc.ReadOnlyRootFilesystem) {
		t.Error("readOnlyRootFilesystem is not set")
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false")
	}
	if csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0 {
		t.Errorf("capabilities %+v, want drop [ALL] and nothing added", csc.Capabilities)
	}
	if img := readDockerfile(t); psc.RunAsUser == nil || img.user != fmt.Sprintf("%d:%d", *psc.RunAsUser, *psc.RunAsUser) {
		t.Errorf("Dockerfile USER %q and the pod's runAsUser %s differ", img.user, fmtPtr(psc.RunAsUser))
	}

	// A read-only root needs a writable /tmp.
	i := slices.IndexFunc(d.container.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" })
	if i < 0 {
		t.Error("no volume at /tmp")
	} else {
		name := d.container.VolumeMounts[i].Name
		j := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == name })
		if j < 0 || pod.Volumes[j].EmptyDir == nil {
			t.Errorf("/tmp is volume %q, want an emptyDir", name)
		}
	}

	// The daemon stops within 10s of SIGTERM and then releases its Lease.
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 15 {
		t.Errorf("terminationGracePeriodSeconds %s, want at least 15", fmtPtr(g))
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := d.container.Resources.Requests[r]
		lim, okLim := d.container.Resources.Limits[r]
		if !okReq || !okLim || req.Cmp(lim) > 0 {
			t.Errorf("%s: want a request no larger than the limit, have request %v limit %v", r, req.String(), lim.String())
		}
	}
}

// fmtPtr prints *p, or "unset".
func fmtPtr[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// admits reports whether np lets a pod in a namespace labelled nsLabels,
// other than np's own, connect to port of the daemon's pods. It knows the
// peers this directory uses: an empty list admits everyone, a
// namespaceSelector alone admits the namespaces it selects; any other peer
// (pods, IP blocks) admits none of those.
func (d deployment) admits(t *testing.T, np *networkingv1.NetworkPolicy, port int32, nsLabels map[string]string) bool {
	t.Helper()
	for _, rule := range np.Spec.Ingress {
		portOK := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			switch {
			case p.Port == nil:
				portOK = true
			case p.EndPort != nil:
				portOK = portOK || p.Port.IntValue() <= int(port) && int(port) <= int(*p.EndPort)
			default:
				portOK = portOK || d.containerPort(t, p.Port.String()) == port
			}
		}
		if !portOK {
			continue
		}
		if len(rule.From) == 0 {
			return true
		}
		for _, peer := range rule.From {
			if peer.NamespaceSelector == nil || peer.PodSelector != nil || peer.IPBlock != nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
			if err != nil {
				t.Fatalf("NetworkPolicy %s: %v", np.Name, err)
			}
			if sel.Matches(labels.Set(nsLabels)) {
				return true
			}
		}
	}
	return false
}

func TestNetworkPolicyLetsOnlySeakeeperNamespacesFetch(t *testing.T) {
	d := load(t)
	np := typed[networkingv1.NetworkPolicy](t, find(t, d.all, "NetworkPolicy", ""))
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.sts.Spec.Template.Labels)) {
		t.Fatalf("NetworkPolicy %s podSelector %v does not select the daemon's pods %v", np.Name, np.Spec.PodSelector, d.sts.Spec.Template.Labels)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Fatalf("NetworkPolicy %s does not restrict ingress", np.Name)
	}
	web := listenPort(t, "web.listen", d.cfg.Web.Listen)
	git := listenPort(t, "web.internal-listen", d.cfg.Web.InternalListen)
	// The label the Argo adapter puts on the project namespaces it creates.
	project := map[string]string{argo.LabelManaged: "true", "kubernetes.io/metadata.name": "ci-platform-core"}
	other := map[string]string{"kubernetes.io/metadata.name": "monitoring"}
	notManaged := map[string]string{argo.LabelManaged: "false", "kubernetes.io/metadata.name": "ci-x"}
	for _, c := range []struct {
		what string
		port int32
		ns   map[string]string
		want bool
	}{
		{"a project namespace fetches from the git endpoint", git, project, true},
		{"another namespace fetches from the git endpoint", git, other, false},
		{"a namespace labelled managed=false fetches from the git endpoint", git, notManaged, false},
		{"another namespace reads the status page", web, other, true},
		{"a project namespace reads the status page", web, project, true},
		{"another namespace connects to an unlisted port", 9090, other, false},
	} {
		if got := d.admits(t, np, c.port, c.ns); got != c.want {
			t.Errorf("%s (port %d, namespace labels %v): admitted %v, want %v", c.what, c.port, c.ns, got, c.want)
		}
	}
}
