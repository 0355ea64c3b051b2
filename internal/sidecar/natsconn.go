package sidecar

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Files read from NATSConfig.CredentialsDir, as the keys of a Kubernetes
// Secret mounted there.
const (
	credsFile    = "creds"
	tokenFile    = "token"
	userFile     = "username"
	passwordFile = "password"
	caFile       = "ca.crt"
	certFile     = "tls.crt"
	keyFile      = "tls.key"
)

// credentialOptions turns the files of a credentials directory into
// nats.go options. Missing files are fine; a half pair (username without
// password, tls.crt without tls.key) is an error.
func credentialOptions(dir string) ([]nats.Option, error) {
	if dir == "" {
		return nil, nil
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("nats credentials dir: %w", err)
	}
	has := func(name string) (bool, error) {
		_, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		default:
			return false, fmt.Errorf("nats credentials: %w", err)
		}
	}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("nats credentials: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	var opts []nats.Option
	present := map[string]bool{}
	for _, f := range []string{credsFile, tokenFile, userFile, passwordFile, caFile, certFile, keyFile} {
		ok, err := has(f)
		if err != nil {
			return nil, err
		}
		present[f] = ok
	}
	if present[credsFile] {
		opts = append(opts, nats.UserCredentials(filepath.Join(dir, credsFile)))
	}
	if present[tokenFile] {
		token, err := read(tokenFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Token(token))
	}
	if present[userFile] != present[passwordFile] {
		return nil, fmt.Errorf("%w: nats credentials: %s and %s go together", ErrInvalidConfig, userFile, passwordFile)
	}
	if present[userFile] {
		user, err := read(userFile)
		if err != nil {
			return nil, err
		}
		password, err := read(passwordFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(user, password))
	}
	if present[caFile] {
		opts = append(opts, nats.RootCAs(filepath.Join(dir, caFile)))
	}
	if present[certFile] != present[keyFile] {
		return nil, fmt.Errorf("%w: nats credentials: %s and %s go together", ErrInvalidConfig, certFile, keyFile)
	}
	if present[certFile] {
		opts = append(opts, nats.ClientCert(filepath.Join(dir, certFile), filepath.Join(dir, keyFile)))
	}
	return opts, nil
}

// reconnectDelay backs off exponentially from lo to hi, with up to 25%
// jitter so that many buffer processes do not reconnect in lockstep after
// a NATS restart.
func reconnectDelay(lo, hi time.Duration) nats.ReconnectDelayHandler {
	return func(attempts int) time.Duration {
		d := lo
		for i := 1; i < attempts && d < hi; i++ {
			d *= 2
		}
		d = min(d, hi)
		return d + time.Duration(rand.Int64N(int64(d)/4+1))
	}
}
