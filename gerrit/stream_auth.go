package gerrit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Authentication of the stream client: Gerrit's host key checked against
// known_hosts, the client key, and the errors that name what was refused.

// AuthError is Gerrit refusing the client's key.
type AuthError struct {
	Addr, User  string
	Fingerprint string // of the client's public key
	Err         error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("gerrit ssh: %s refused user %q with key %s (is the key registered for this account?): %v",
		e.Addr, e.User, e.Fingerprint, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

var typeRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func (c StreamConfig) withDefaults() (StreamConfig, error) {
	if c.Keepalive <= 0 {
		c.Keepalive = DefaultKeepalive
	}
	if c.KeepaliveMax <= 0 {
		c.KeepaliveMax = DefaultKeepaliveMax
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Buffer <= 0 {
		c.Buffer = DefaultBuffer
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Backoff = c.Backoff.withDefaults()
	c.Logger = c.Logger.With("gerrit", c.Addr)
	var missing []string
	for name, unset := range map[string]bool{"Addr": c.Addr == "", "User": c.User == "",
		"Signer": c.Signer == nil, "HostKeyCallback": c.HostKeyCallback == nil} {
		if unset {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("gerrit ssh: StreamConfig lacks %s", strings.Join(missing, ", "))
	}
	for _, t := range c.EventTypes {
		if !typeRE.MatchString(t) {
			return c, fmt.Errorf("gerrit ssh: bad event type %q", t)
		}
	}
	return c, nil
}

// HostKeyError is a server whose host key known_hosts does not vouch for.
type HostKeyError struct {
	Host        string // as dialled, host:port
	KeyType     string // of the key the server offered
	Fingerprint string // SHA256 fingerprint of that key
	File        string // the known_hosts file
	// Known lists the keys the file has for the host ("file:line: type
	// fingerprint"); empty when the host is unknown.
	Known   []string
	Revoked bool // the key is marked @revoked
	known   []ssh.PublicKey
	// noneOffered: the server has no key of the types the file lists.
	noneOffered bool
}

func (e *HostKeyError) Error() string {
	offered := e.KeyType + " " + e.Fingerprint
	switch {
	case e.noneOffered:
		return fmt.Sprintf("gerrit ssh: host key of %s does not match %s: the server offers no key of the types "+
			"the file has (%s); refusing to connect", e.Host, e.File, strings.Join(e.Known, ", "))
	case e.Revoked:
		return fmt.Sprintf("gerrit ssh: host key of %s (%s) is revoked in %s; refusing to connect", e.Host, offered, e.File)
	case len(e.Known) == 0:
		return fmt.Sprintf("gerrit ssh: host key of %s is unknown: %s is not in %s; refusing to connect "+
			"(add the server's key to that file if it is genuine)", e.Host, offered, e.File)
	}
	return fmt.Sprintf("gerrit ssh: host key of %s does not match %s: the server offered %s, the file has %s; "+
		"refusing to connect (the key was changed, or the connection is intercepted)",
		e.Host, e.File, offered, strings.Join(e.Known, ", "))
}

// KnownHosts returns a host key callback that accepts only keys listed for
// the host in the OpenSSH known_hosts file at path, and refuses others
// with a *HostKeyError.
func KnownHosts(path string) (ssh.HostKeyCallback, error) {
	check, err := knownhosts.New(path)
	if err != nil {
		return nil, fmt.Errorf("gerrit ssh: known_hosts: %w", err)
	}
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		if err == nil {
			return nil
		}
		he := &HostKeyError{Host: host, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), File: path}
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &ke):
			for _, k := range ke.Want {
				he.known = append(he.known, k.Key)
				he.Known = append(he.Known, fmt.Sprintf("%s:%d: %s %s", k.Filename, k.Line,
					k.Key.Type(), ssh.FingerprintSHA256(k.Key)))
			}
		case errors.As(err, &re):
			he.Revoked = true
		default:
			return fmt.Errorf("gerrit ssh: known_hosts %s: %w", path, err)
		}
		return he
	}, nil
}

// probeKey is a throwaway key that no known_hosts file lists.
func probeKey() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil
	}
	k, _ := ssh.NewPublicKey(pub)
	return k
}

// hostKeyAlgorithms returns the host key algorithms of the keys a
// KnownHosts callback has for addr, and its error naming them, found by
// offering it the probe key. Restricting the handshake to them asks the
// server for a key we can check: x/crypto would otherwise prefer ECDSA
// and RSA to the ed25519 key that known_hosts often holds alone. nil (no
// restriction) for other callbacks and unknown hosts.
func hostKeyAlgorithms(check ssh.HostKeyCallback, addr string, probe ssh.PublicKey) ([]string, *HostKeyError) {
	if probe == nil {
		return nil, nil
	}
	var he *HostKeyError
	if err := check(addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, probe); !errors.As(err, &he) || len(he.known) == 0 {
		return nil, nil
	}
	var algos []string
	for _, k := range he.known {
		more := []string{k.Type()}
		if k.Type() == ssh.KeyAlgoRSA {
			more = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, a := range more {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos, he
}

// LoadSigner reads an unencrypted private key in OpenSSH or PEM format.
func LoadSigner(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gerrit ssh: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var pm *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &pm):
		return nil, fmt.Errorf("gerrit ssh: key %s is protected by a passphrase; give Seakeeper an unencrypted key", path)
	case err != nil:
		return nil, fmt.Errorf("gerrit ssh: key %s: %w", path, err)
	}
	return s, nil
}
