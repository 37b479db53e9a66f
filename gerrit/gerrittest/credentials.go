package gerrittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// Credentials are the files WriteCredentials wrote, as a daemon's main
// configuration names them.
type Credentials struct {
	// KeyFile (dir/ssh/id_ed25519) holds a new private SSH key that the
	// server accepts for its user; KnownHostsFile (dir/ssh/known_hosts)
	// the server's host key; PasswordFile (dir/http-password) the user's
	// HTTP password.
	KeyFile, KnownHostsFile, PasswordFile string
}

// WriteCredentials gives a client of the server (a daemon under test, the
// demo) its credentials: it makes an SSH key, lets it in for the server's
// user, and writes the key, the host key and the HTTP password under dir,
// readable by the owner only.
func (s *Server) WriteCredentials(dir string) (Credentials, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Credentials{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return Credentials{}, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return Credentials{}, err
	}
	c := Credentials{
		KeyFile:        filepath.Join(dir, "ssh", "id_ed25519"),
		KnownHostsFile: filepath.Join(dir, "ssh", "known_hosts"),
		PasswordFile:   filepath.Join(dir, "http-password"),
	}
	for path, content := range map[string][]byte{
		c.KeyFile:        pem.EncodeToMemory(block),
		c.KnownHostsFile: s.KnownHosts(),
		c.PasswordFile:   []byte(s.Password()),
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return Credentials{}, fmt.Errorf("gerrittest: credentials: %w", err)
		}
		if err := os.WriteFile(path, content, 0o600); err != nil {
			return Credentials{}, fmt.Errorf("gerrittest: credentials: %w", err)
		}
	}
	s.SSH().AddUser(s.User(), sshPub)
	return c, nil
}
