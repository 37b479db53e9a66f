package gerrittest

import (
	"os"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/seakeeper-ci/seakeeper/gerrit"
)

// The written key logs in over SSH with the written host key checked, and
// the password file holds the password; every file is private.
func TestWriteCredentials(t *testing.T) {
	s, err := New(Options{})
	must(t, err)
	defer s.Close()
	c, err := s.WriteCredentials(t.TempDir())
	must(t, err)
	signer, err := gerrit.LoadSigner(c.KeyFile)
	must(t, err)
	hostKeys, err := gerrit.KnownHosts(c.KnownHostsFile)
	must(t, err)
	conn, err := ssh.Dial("tcp", s.SSHAddr(), &ssh.ClientConfig{User: s.User(),
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hostKeys})
	if err != nil {
		t.Fatalf("ssh login with the written key: %v", err)
	}
	conn.Close()
	pw, err := os.ReadFile(c.PasswordFile)
	must(t, err)
	if string(pw) != s.Password() {
		t.Errorf("password file holds %q, want %q", pw, s.Password())
	}
	for _, f := range []string{c.KeyFile, c.KnownHostsFile, c.PasswordFile} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
}
