package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/seakeeper-ci/seakeeper/scheduler"
)

// Helpers that read the manifests of this directory the way `kubectl
// apply -k` would see them (this kustomization has no transformers).

// exampleSecret is the Secret the operator creates by hand; it is not a
// resource of the kustomization but is checked like one.
const exampleSecret = "secret.example.yaml"

// manifest is one YAML document of a manifest file.
type manifest struct {
	where string // file#document, for messages
	obj   *unstructured.Unstructured
}

func (m manifest) String() string {
	return fmt.Sprintf("%s (%s %s)", m.where, m.obj.GetKind(), m.obj.GetName())
}

// kustomization is the part of kustomization.yaml this test understands;
// decoding is strict so that a field it would silently ignore (patches, a
// namespace transformer, generators) fails the test instead.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// resourceFiles returns the resources kustomization.yaml lists.
func resourceFiles(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v (this test reads only apiVersion, kind and resources: teach it any other field)", err)
	}
	if k.Kind != "Kustomization" || !strings.HasPrefix(k.APIVersion, "kustomize.config.k8s.io/") {
		t.Fatalf("kustomization.yaml: apiVersion %q kind %q is not a Kustomization", k.APIVersion, k.Kind)
	}
	if len(k.Resources) == 0 {
		t.Fatal("kustomization.yaml: no resources")
	}
	for _, r := range k.Resources {
		if r != filepath.Base(r) || !strings.HasSuffix(r, ".yaml") {
			t.Fatalf("kustomization.yaml: resource %q is not a YAML file of this directory; this test reads only those", r)
		}
	}
	return k.Resources
}

// readManifests parses every YAML document of file; a document holding
// only comments is skipped.
func readManifests(t *testing.T, file string) []manifest {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []manifest
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		where := fmt.Sprintf("%s#%d", file, i)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if string(bytes.TrimSpace(j)) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if u.GetAPIVersion() == "" || u.GetName() == "" {
			t.Fatalf("%s: apiVersion, kind and metadata.name are required", where)
		}
		out = append(out, manifest{where: where, obj: u})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no documents", file)
	}
	return out
}

// resources returns the documents of every resource of the kustomization.
func resources(t *testing.T) []manifest {
	t.Helper()
	var out []manifest
	for _, f := range resourceFiles(t) {
		out = append(out, readManifests(t, f)...)
	}
	return out
}

// find returns the one manifest of kind and name.
func find(t *testing.T, ms []manifest, kind, name string) manifest {
	t.Helper()
	var found []manifest
	for _, m := range ms {
		if m.obj.GetKind() == kind && (name == "" || m.obj.GetName() == name) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q among the manifests, found %v", kind, name, found)
	}
	return found[0]
}

// typed converts m into a typed object, failing on fields the type lacks.
func typed[T any](t *testing.T, m manifest) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(m.obj.Object, out, true); err != nil {
		t.Fatalf("%s: %v", m, err)
	}
	return out
}

// deployment is what most checks look at: the StatefulSet, its container,
// the sample configuration and the Secret the operator makes.
type deployment struct {
	all       []manifest
	sts       *appsv1.StatefulSet
	container corev1.Container
	configMap *corev1.ConfigMap
	secret    *corev1.Secret
	cfg       *scheduler.Config
}

// configKey is the ConfigMap key that holds the main configuration.
const configKey = "config.yaml"

func load(t *testing.T) deployment {
	t.Helper()
	d := deployment{all: resources(t)}
	d.sts = typed[appsv1.StatefulSet](t, find(t, d.all, "StatefulSet", ""))
	if n := len(d.sts.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("StatefulSet %s: want one container, found %d", d.sts.Name, n)
	}
	d.container = d.sts.Spec.Template.Spec.Containers[0]
	d.configMap = typed[corev1.ConfigMap](t, find(t, d.all, "ConfigMap", ""))
	d.secret = typed[corev1.Secret](t, find(t, readManifests(t, exampleSecret), "Secret", ""))
	text, ok := d.configMap.Data[configKey]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", d.configMap.Name, configKey)
	}
	cfg, err := scheduler.ParseMainConfig("configmap.yaml: "+configKey, []byte(text))
	if err != nil {
		t.Fatalf("the sample configuration in ConfigMap %s is invalid:\n%v", d.configMap.Name, err)
	}
	d.cfg = cfg
	return d
}

// source is where a file in the container comes from.
type source struct {
	kind, name, key string // kind is ConfigMap or Secret
	readOnly        bool
}

// fileSource resolves the absolute path of a file in the container to the
// ConfigMap or Secret key behind it, through the container's mounts and
// the pod's configMap, secret and projected volumes.
func (d deployment) fileSource(path string) (source, error) {
	var best *corev1.VolumeMount
	for i, vm := range d.container.VolumeMounts {
		if vm.SubPath != "" {
			continue
		}
		if strings.HasPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/") &&
			(best == nil || len(vm.MountPath) > len(best.MountPath)) {
			best = &d.container.VolumeMounts[i]
		}
	}
	if best == nil {
		return source{}, fmt.Errorf("no volume is mounted above %s", path)
	}
	rel := strings.TrimPrefix(path, strings.TrimSuffix(best.MountPath, "/")+"/")
	i := slices.IndexFunc(d.sts.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == best.Name })
	if i < 0 {
		return source{}, fmt.Errorf("%s is mounted from volume %q, which the pod does not define", best.MountPath, best.Name)
	}
	v := d.sts.Spec.Template.Spec.Volumes[i]
	type src struct {
		kind, name string
		items      []corev1.KeyToPath
	}
	var srcs []src
	switch {
	case v.ConfigMap != nil:
		srcs = append(srcs, src{"ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items})
	case v.Secret != nil:
		srcs = append(srcs, src{"Secret", v.Secret.SecretName, v.Secret.Items})
	case v.Projected != nil:
		for _, p := range v.Projected.Sources {
			switch {
			case p.ConfigMap != nil:
				srcs = append(srcs, src{"ConfigMap", p.ConfigMap.Name, p.ConfigMap.Items})
			case p.Secret != nil:
				srcs = append(srcs, src{"Secret", p.Secret.Name, p.Secret.Items})
			}
		}
	default:
		return source{}, fmt.Errorf("%s is under %s, volume %q, which is neither a ConfigMap, a Secret nor a projection of them", path, best.MountPath, v.Name)
	}
	for _, s := range srcs {
		if s.items == nil {
			// Every key becomes a file of its name; only a direct child
			// can be one.
			if !strings.Contains(rel, "/") {
				return source{s.kind, s.name, rel, best.ReadOnly}, nil
			}
			continue
		}
		for _, it := range s.items {
			if it.Path == rel {
				return source{s.kind, s.name, it.Key, best.ReadOnly}, nil
			}
		}
	}
	return source{}, fmt.Errorf("%s: volume %q mounted at %s projects no key to %s", path, v.Name, best.MountPath, rel)
}

// containerPort returns the number of the container's port called name (a
// number is returned as it is).
func (d deployment) containerPort(t *testing.T, name string) int32 {
	t.Helper()
	for _, p := range d.container.Ports {
		if p.Name == name || fmt.Sprint(p.ContainerPort) == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port %q", d.container.Name, name)
	return 0
}

// dockerfile is what the image's final stage says.
type dockerfile struct {
	entrypoint, cmd []string
	user            string
}

// readDockerfile reads ENTRYPOINT, CMD (exec form) and USER of the final
// stage of the Dockerfile.
func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var d dockerfile
	for n, line := range strings.Split(string(data), "\n") {
		instr, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		var dst *[]string
		switch strings.ToUpper(instr) {
		case "FROM":
			d = dockerfile{} // a new stage: only the last one counts
		case "USER":
			d.user = strings.TrimSpace(arg)
		case "ENTRYPOINT":
			dst = &d.entrypoint
		case "CMD":
			dst = &d.cmd
		}
		if dst != nil {
			if err := json.Unmarshal([]byte(arg), dst); err != nil {
				t.Fatalf("Dockerfile:%d: %s must be in exec form (a JSON array): %v", n+1, instr, err)
			}
		}
	}
	return d
}
