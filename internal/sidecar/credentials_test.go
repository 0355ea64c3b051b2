package sidecar_test

import (
	"context"
	"errors"
	"testing"

	"github.com/onsi/gomega"

	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/testutil/sandbox"
)

// The file conventions themselves are tested in package natsconn; these
// tests check that the sidecar uses them.

func TestCredentialsDirectory(t *testing.T) {
	ns := natstest.Start(t, natstest.WithToken("s3cret"))
	cfg := testConfig(ns.URL(), ring("r", 1))
	cfg.NATS.CredentialsDir = sandbox.WriteFiles(t, map[string][]byte{"token": []byte("s3cret\n")})
	sc := start(t, cfg)
	eventually(t, sc.Ready).Should(gomega.BeTrue())
}

func TestHalfCredentialPairsAreRefused(t *testing.T) {
	for _, files := range []map[string][]byte{
		{"username": []byte("edge")},
		{"tls.crt": []byte("x")},
	} {
		cfg := testConfig("nats://127.0.0.1:1", ring("r", 1))
		cfg.NATS.CredentialsDir = sandbox.WriteFiles(t, files)
		if _, err := sidecar.Start(context.Background(), cfg); !errors.Is(err, sidecar.ErrInvalidConfig) {
			t.Errorf("with %v: got %v, want ErrInvalidConfig", files, err)
		}
	}
}
