package natsconn_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/recbuf/recbuf/internal/natsconn"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/testutil/sandbox"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pki is a throw-away CA with one server and one client certificate.
type pki struct {
	caPEM                    []byte
	serverCert               tls.Certificate
	clientCertPEM, clientKey []byte
	pool                     *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage) ([]byte, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	p := &pki{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	certPEM, keyPEM := issue(2, x509.ExtKeyUsageServerAuth)
	if p.serverCert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	p.clientCertPEM, p.clientKey = issue(3, x509.ExtKeyUsageClientAuth)
	return p
}

func TestCredentialsDirectoryConnects(t *testing.T) {
	p := newPKI(t)
	cases := []struct {
		name  string
		opts  []natstest.Option
		files map[string][]byte
	}{
		{name: "a token file logs in with the token",
			opts: []natstest.Option{natstest.WithToken("s3cret")}, files: map[string][]byte{"token": []byte("s3cret\n")}},
		{name: "username and password files log in as that user",
			opts:  []natstest.Option{natstest.WithUserPassword("edge", "pw")},
			files: map[string][]byte{"username": []byte("edge"), "password": []byte("pw\n")}},
		{name: "ca.crt, tls.crt and tls.key make a verified mutual TLS connection",
			opts: []natstest.Option{natstest.WithOptions(func(o *server.Options) {
				o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 5
				o.TLSConfig = &tls.Config{
					Certificates: []tls.Certificate{p.serverCert}, ClientCAs: p.pool,
					ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
				}
			})},
			files: map[string][]byte{"ca.crt": p.caPEM, "tls.crt": p.clientCertPEM, "tls.key": p.clientKey}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.Start(t, tc.opts...)
			opts, err := natsconn.CredentialOptions(sandbox.WriteFiles(t, tc.files))
			if err != nil {
				t.Fatalf("CredentialOptions: got error %v, want none", err)
			}
			nc, err := nats.Connect(ns.URL(), opts...)
			if err != nil {
				t.Fatalf("Connect: got error %v, want a connection", err)
			}
			defer nc.Close()
			if err := nc.Flush(); err != nil {
				t.Errorf("Flush: got error %v, want none", err)
			}
		})
	}
}

func TestCredentialsDirectoryErrors(t *testing.T) {
	cases := []struct {
		name    string
		dir     func(t *testing.T) string
		wantErr error
		wantN   int
	}{
		{name: "no directory gives no options", dir: func(*testing.T) string { return "" }},
		{name: "an empty directory gives no options", dir: func(t *testing.T) string { return t.TempDir() }},
		{name: "a username without a password is refused", wantErr: natsconn.ErrInvalidCredentials,
			dir: func(t *testing.T) string { return sandbox.WriteFiles(t, map[string][]byte{"username": []byte("edge")}) }},
		{name: "a password without a username is refused", wantErr: natsconn.ErrInvalidCredentials,
			dir: func(t *testing.T) string { return sandbox.WriteFiles(t, map[string][]byte{"password": []byte("pw")}) }},
		{name: "a client certificate without its key is refused", wantErr: natsconn.ErrInvalidCredentials,
			dir: func(t *testing.T) string { return sandbox.WriteFiles(t, map[string][]byte{"tls.crt": []byte("x")}) }},
		{name: "a missing directory is reported as not existing", wantErr: fs.ErrNotExist,
			dir: func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent") }},
		{name: "a creds file and a token give one option each", wantN: 2,
			dir: func(t *testing.T) string {
				return sandbox.WriteFiles(t, map[string][]byte{"creds": []byte("x"), "token": []byte("t")})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := natsconn.CredentialOptions(tc.dir(t))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if len(opts) != tc.wantN {
				t.Errorf("got %d options, want %d", len(opts), tc.wantN)
			}
		})
	}
}
