package sidecar_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/onsi/gomega"

	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
)

// writeFiles writes name/content pairs into a new directory.
func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

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

func TestCredentialsDirectory(t *testing.T) {
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
			cfg := testConfig(ns.URL(), ring("r", 1))
			cfg.NATS.CredentialsDir = writeFiles(t, tc.files)
			sc := start(t, cfg)
			eventually(t, sc.Ready).Should(gomega.BeTrue())
		})
	}
}

func TestHalfCredentialPairsAreRefused(t *testing.T) {
	for _, files := range []map[string][]byte{
		{"username": []byte("edge")},
		{"tls.crt": []byte("x")},
	} {
		cfg := testConfig("nats://127.0.0.1:1", ring("r", 1))
		cfg.NATS.CredentialsDir = writeFiles(t, files)
		if _, err := sidecar.Start(context.Background(), cfg); !errors.Is(err, sidecar.ErrInvalidConfig) {
			t.Errorf("with %v: got %v, want ErrInvalidConfig", files, err)
		}
	}
}
