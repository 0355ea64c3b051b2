package natsconn

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
)

// Files read from a credentials directory, as the keys of a Kubernetes
// Secret mounted there.
const (
	// CredsFile holds NATS user credentials (JWT and NKey seed).
	CredsFile = "creds"
	// TokenFile holds an authentication token.
	TokenFile = "token"
	// UserFile holds a user name; it goes with PasswordFile.
	UserFile = "username"
	// PasswordFile holds the password of UserFile's user.
	PasswordFile = "password"
	// CAFile holds the CA bundle that verifies the server.
	CAFile = "ca.crt"
	// CertFile holds the client certificate; it goes with KeyFile.
	CertFile = "tls.crt"
	// KeyFile holds the private key of CertFile.
	KeyFile = "tls.key"
)

// ErrInvalidCredentials is wrapped by the errors of a credentials
// directory whose files do not make a usable set, such as a user name
// without a password.
var ErrInvalidCredentials = errors.New("invalid nats credentials")

// CredentialOptions turns the files of a credentials directory into
// nats.go options. An empty dir gives no options. Missing files are fine;
// a half pair (username without password, tls.crt without tls.key) is an
// error wrapping ErrInvalidCredentials, and an unreadable directory or
// file is an error wrapping the file system's.
func CredentialOptions(dir string) ([]nats.Option, error) {
	if dir == "" {
		return nil, nil
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("nats credentials dir: %w", err)
	}
	present := map[string]bool{}
	for _, f := range []string{CredsFile, TokenFile, UserFile, PasswordFile, CAFile, CertFile, KeyFile} {
		_, err := os.Stat(filepath.Join(dir, f))
		switch {
		case err == nil:
			present[f] = true
		case errors.Is(err, fs.ErrNotExist):
		default:
			return nil, fmt.Errorf("nats credentials: %w", err)
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
	if present[CredsFile] {
		opts = append(opts, nats.UserCredentials(filepath.Join(dir, CredsFile)))
	}
	if present[TokenFile] {
		token, err := read(TokenFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Token(token))
	}
	if present[UserFile] != present[PasswordFile] {
		return nil, fmt.Errorf("%w: %s and %s go together", ErrInvalidCredentials, UserFile, PasswordFile)
	}
	if present[UserFile] {
		user, err := read(UserFile)
		if err != nil {
			return nil, err
		}
		password, err := read(PasswordFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(user, password))
	}
	if present[CAFile] {
		opts = append(opts, nats.RootCAs(filepath.Join(dir, CAFile)))
	}
	if present[CertFile] != present[KeyFile] {
		return nil, fmt.Errorf("%w: %s and %s go together", ErrInvalidCredentials, CertFile, KeyFile)
	}
	if present[CertFile] {
		opts = append(opts, nats.ClientCert(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)))
	}
	return opts, nil
}
