package merger

import (
	"net/http"
	"net/http/cgi"
	"os"
	"path/filepath"
	"strings"
)

// Handler serves the mirrors read-only over git's smart HTTP protocol, with
// `git http-backend`. It expects request paths /git/<project>/… (a trailing
// .git on the project is accepted), so the daemon mounts it at /git/:
//
//	GET  /git/<project>/info/refs?service=git-upload-pack
//	POST /git/<project>/git-upload-pack
//
// Pushes (git-receive-pack) get 403; dumb-protocol and other paths 404.
// Every ref of the mirror is advertised, refs/seakeeper/* included, and any
// reachable commit may be fetched by id (uploadpack.allowAnySHA1InWant).
//
// There is no authentication: the daemon serves it on its internal listener
// only.
func (m *Merger) Handler() http.Handler {
	return http.HandlerFunc(m.serveGit)
}

func (m *Merger) serveGit(w http.ResponseWriter, req *http.Request) {
	rest, ok := strings.CutPrefix(req.URL.Path, "/git/")
	if !ok {
		http.NotFound(w, req)
		return
	}
	var project, service, suffix string
	switch {
	case strings.HasSuffix(rest, "/info/refs"):
		project, suffix = strings.TrimSuffix(rest, "/info/refs"), "/info/refs"
		service = req.URL.Query().Get("service")
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
	case strings.HasSuffix(rest, "/git-upload-pack"):
		project, service, suffix = strings.TrimSuffix(rest, "/git-upload-pack"), "git-upload-pack", "/git-upload-pack"
		if req.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
	case strings.HasSuffix(rest, "/git-receive-pack"):
		project, service = strings.TrimSuffix(rest, "/git-receive-pack"), "git-receive-pack"
	default:
		http.NotFound(w, req)
		return
	}
	if service == "git-receive-pack" {
		http.Error(w, "this repository is read-only", http.StatusForbidden)
		return
	}
	if service != "git-upload-pack" {
		// The dumb protocol is not served.
		http.Error(w, "only smart HTTP (git-upload-pack) is served", http.StatusForbidden)
		return
	}
	project = strings.TrimSuffix(project, ".git")
	if validProject(project) != nil {
		http.NotFound(w, req)
		return
	}
	dir := m.repoDir(project)
	if st, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil || st.IsDir() {
		http.NotFound(w, req)
		return
	}

	env := []string{
		"GIT_PROJECT_ROOT=" + m.reposDir,
		"GIT_HTTP_EXPORT_ALL=1",
		"HOME=" + m.git.home,
		"XDG_CONFIG_HOME=" + m.git.home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}
	cfg := append(baseConfig(),
		[2]string{"gc.auto", "0"},
		[2]string{"http.uploadpack", "true"},
		[2]string{"http.receivepack", "false"},
		[2]string{"http.getanyfile", "false"},
		[2]string{"uploadpack.allowAnySHA1InWant", "true"},
		[2]string{"uploadpack.allowFilter", "true"},
	)
	env = append(env, configEnv(cfg)...)
	h := &cgi.Handler{Path: m.git.bin, Args: []string{"http-backend"}, Dir: m.reposDir, Env: env}
	// http-backend finds the repository from PATH_INFO, which cgi derives
	// from the URL path: rewrite it to the mirror's path under the root.
	r2 := req.Clone(req.Context())
	r2.URL.Path = "/" + project + ".git" + suffix
	r2.URL.RawPath = ""
	h.ServeHTTP(w, r2)
}
