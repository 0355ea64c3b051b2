package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/recbuf/recbuf/controllers"
	recbufwebhook "github.com/recbuf/recbuf/internal/webhook"
)

// The sidecar injection webhook's certificates: either the manager makes
// and rotates them itself (the default: no cert-manager needed), or
// someone else (cert-manager) mounts them and keeps the caBundle.
const (
	webhookCertsSelf     = "self"
	webhookCertsExternal = "external"
)

// minWebhookCertValidity is the shortest --webhook-cert-validity: short
// enough for a test to see a rotation, long beside the kubelet's delay in
// updating the mounted Secret only in a test that copies it itself.
const minWebhookCertValidity = 10 * time.Second

// setupSidecarInjection registers the webhook's handler and, with
// self-managed certificates, the certificate rotator; the manager is
// ready only once the webhook serves with a certificate the API server
// trusts, so that a rollout does not route admissions to a manager that
// would fail them.
func setupSidecarInjection(mgr ctrl.Manager, o options, cfg controllers.Config, log logr.Logger) error {
	if !o.sidecarInjection {
		return nil
	}
	ready := make(chan struct{})
	if o.webhookCerts == webhookCertsSelf {
		secret, _ := splitNamespacedName(o.webhookCertSecret)
		service, _ := splitNamespacedName(o.webhookService)
		if err := rotator.AddRotator(mgr, &rotator.CertRotator{
			SecretKey:      secret,
			CertDir:        o.webhookCertDir,
			CAName:         "recbuf-webhook-ca",
			CAOrganization: "recbuf",
			DNSName:        service.Name + "." + service.Namespace + ".svc",
			ExtraDNSNames:  append([]string{service.Name + "." + service.Namespace + ".svc.cluster.local"}, o.webhookExtraDNSNames...),
			IsReady:        ready,
			Webhooks:       []rotator.WebhookInfo{{Name: o.webhookConfiguration, Type: rotator.Mutating}},
			ControllerName: rotatorName(o),
			// Every replica serves the webhook: each keeps its files
			// current, whoever leads.
			RequireLeaderElection:  false,
			ServerCertDuration:     o.webhookCertValidity,
			CaCertDuration:         4 * o.webhookCertValidity,
			LookaheadInterval:      o.webhookCertValidity / 4,
			RotationCheckFrequency: min(o.webhookCertValidity/8, 12*time.Hour),
		}); err != nil {
			return fmt.Errorf("adding the webhook certificate rotator: %w", err)
		}
	} else {
		close(ready)
	}
	tlsOpts := []func(*tls.Config){
		// HTTP/1.1 only, as kubebuilder's scaffold and the metrics
		// endpoint: HTTP/2's stream multiplexing let one client keep a
		// server busy (CVE-2023-44487, CVE-2023-39325), and the API
		// server calls webhooks over HTTP/1.1 as well.
		func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} },
	}
	callers, probe, err := webhookCallers(o)
	if err != nil {
		return err
	}
	if callers != nil {
		tlsOpts = append(tlsOpts, callers)
		log.Info("The webhook answers only callers with a client certificate of --webhook-client-ca-file", "file", o.webhookClientCAFile, "names", clientNames(o.webhookClientNames))
	} else {
		log.Info("WARNING: no --webhook-client-ca-file: the webhook does not authenticate its callers, and anyone who can reach its port can read Records' configuration in any namespace from its answers (docs/security.md#the-webhooks-callers)")
	}
	srv := webhook.NewServer(webhook.Options{Port: o.webhookPort, CertDir: o.webhookCertDir, TLSOpts: tlsOpts})
	srv.Register(recbufwebhook.Path, &webhook.Admission{Handler: &recbufwebhook.Injector{
		Client:  mgr.GetClient(),
		Decoder: admission.NewDecoder(mgr.GetScheme()),
		Config:  recbufwebhook.Config{BufferPod: cfg.BufferPod(), NATSPolicy: cfg.NATSPolicy()},
	}})
	if err := mgr.Add(&afterCerts{server: srv, ready: ready}); err != nil {
		return fmt.Errorf("adding the webhook server: %w", err)
	}
	checker := srv.StartedChecker()
	if probe != nil {
		// StartedChecker's handshake presents no certificate: where one is
		// required, the server would log a handshake error for every
		// probe. The manager's own check presents the probe certificate
		// only it holds.
		checker = handshakeChecker(o.webhookPort, probe)
	}
	if err := mgr.AddReadyzCheck("webhook", func(req *http.Request) error {
		select {
		case <-ready:
			return checker(req)
		default:
			return errors.New("the webhook's certificates are not in place yet")
		}
	}); err != nil {
		return fmt.Errorf("adding the webhook readiness check: %w", err)
	}
	return mgr.AddHealthzCheck("webhook", healthz.Ping)
}

// rotatorRuns numbers the certificate rotators of a process that runs the
// manager more than once (skipControllerNameValidation).
var rotatorRuns atomic.Int64

// rotatorName is the name of the certificate rotator's controller:
// cert-controller's own, "cert-rotator", for main. The rotator's
// controller is unmanaged, so the manager's SkipNameValidation does not
// reach it; a process that runs the manager again names each one apart.
func rotatorName(o options) string {
	if !o.skipControllerNameValidation {
		return ""
	}
	return fmt.Sprintf("cert-rotator-%d", rotatorRuns.Add(1))
}

// afterCerts starts the webhook server once its certificates are in
// place: the server reads them as it starts, and a manager that made them
// itself has none before. It runs on every replica, leader or not.
type afterCerts struct {
	server webhook.Server
	ready  <-chan struct{}
}

func (a *afterCerts) Start(ctx context.Context) error {
	select {
	case <-a.ready:
		return a.server.Start(ctx)
	case <-ctx.Done():
		return nil
	}
}

func (a *afterCerts) NeedLeaderElection() bool { return false }

// splitNamespacedName parses NAMESPACE/NAME.
func splitNamespacedName(s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("%q is not NAMESPACE/NAME", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// validateWebhook checks the webhook's flags.
func (o options) validateWebhook() error {
	if !o.sidecarInjection {
		return nil
	}
	var errs []error
	switch o.webhookCerts {
	case webhookCertsSelf:
		if _, err := splitNamespacedName(o.webhookCertSecret); err != nil {
			errs = append(errs, fmt.Errorf("--webhook-cert-secret: %w", err))
		}
		if _, err := splitNamespacedName(o.webhookService); err != nil {
			errs = append(errs, fmt.Errorf("--webhook-service: %w", err))
		}
		if o.webhookConfiguration == "" {
			errs = append(errs, errors.New("--webhook-configuration is required with --webhook-certs=self"))
		}
		if o.webhookCertValidity < minWebhookCertValidity {
			errs = append(errs, fmt.Errorf("--webhook-cert-validity %s: want at least %s", o.webhookCertValidity, minWebhookCertValidity))
		}
	case webhookCertsExternal:
	default:
		errs = append(errs, fmt.Errorf("--webhook-certs %q: want %s or %s", o.webhookCerts, webhookCertsSelf, webhookCertsExternal))
	}
	if o.webhookClientCAFile != "" {
		if _, err := clientCAPool(o.webhookClientCAFile); err != nil {
			errs = append(errs, err)
		}
	} else if o.webhookClientNames != "" {
		errs = append(errs, errors.New("--webhook-client-names needs --webhook-client-ca-file: without it no client certificate is asked for"))
	}
	if o.webhookClientNames != "" && len(clientNames(o.webhookClientNames)) == 0 {
		errs = append(errs, fmt.Errorf("--webhook-client-names %q: want comma-separated names", o.webhookClientNames))
	}
	if o.webhookPort < 1 || o.webhookPort > 65535 {
		errs = append(errs, fmt.Errorf("--webhook-port %d: want a port", o.webhookPort))
	}
	return errors.Join(errs...)
}

// webhookCallers is the TLS option that has the webhook server require a
// client certificate signed by --webhook-client-ca-file, and with one of
// --webhook-client-names if any are given; nil without the flag. The API
// server is the webhook's only legitimate caller, and the answers tell
// the Records (subject, queue group, Secret names) of whatever namespace
// the review names: anyone else is refused in the handshake.
//
// probe is the client certificate of the manager's own readiness check,
// made at start and held in memory only: the pool trusts it too, and the
// names, when given, include its name.
func webhookCallers(o options) (callers func(*tls.Config), probe *tls.Certificate, err error) {
	if o.webhookClientCAFile == "" {
		return nil, nil, nil
	}
	pool, err := clientCAPool(o.webhookClientCAFile)
	if err != nil {
		return nil, nil, err
	}
	probe, probeCert, err := probeCertificate()
	if err != nil {
		return nil, nil, err
	}
	pool.AddCert(probeCert)
	names := clientNames(o.webhookClientNames)
	if len(names) > 0 {
		names = append(names, probeCert.Subject.CommonName)
	}
	return func(c *tls.Config) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = pool
		if len(names) == 0 {
			return
		}
		// After the chain is verified, in every handshake (resumed ones
		// too, unlike VerifyPeerCertificate).
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			leaf := cs.PeerCertificates[0]
			if slices.Contains(names, leaf.Subject.CommonName) {
				return nil
			}
			for _, dns := range leaf.DNSNames {
				if slices.Contains(names, dns) {
					return nil
				}
			}
			return fmt.Errorf("client certificate %q is not for --webhook-client-names", leaf.Subject.CommonName)
		}
	}, probe, nil
}

// probeCommonName names the readiness check's client certificate.
const probeCommonName = "recbuf-manager-readiness-probe"

// probeCertificate makes the readiness check's client certificate:
// self-signed, for client authentication only, valid for a year (a
// manager process lives less), its key never written anywhere.
func probeCertificate() (*tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("the readiness probe's key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("the readiness probe's serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: probeCommonName},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("the readiness probe's certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("the readiness probe's certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, cert, nil
}

// handshakeChecker is the webhook server's StartedChecker with a client
// certificate: ready once a TLS handshake with it on port succeeds.
func handshakeChecker(port int, cert *tls.Certificate) healthz.Checker {
	return func(req *http.Request) error {
		d := &net.Dialer{Timeout: 10 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort("localhost", strconv.Itoa(port)), &tls.Config{
			InsecureSkipVerify: true, //nolint:gosec // the manager's own server, checked for being up, not for who it is
			Certificates:       []tls.Certificate{*cert},
			NextProtos:         []string{"http/1.1"},
		})
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return conn.Close()
	}
}

// clientCAPool reads --webhook-client-ca-file: PEM certificates, at least
// one, and nothing else.
func clientCAPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--webhook-client-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if n == 0 {
				return nil, fmt.Errorf("--webhook-client-ca-file %s: no PEM certificate in it", path)
			}
			if len(bytes.TrimSpace(rest)) > 0 {
				return nil, fmt.Errorf("--webhook-client-ca-file %s: not PEM after %d certificate(s)", path, n)
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("--webhook-client-ca-file %s: a %s PEM block, want only CERTIFICATE blocks", path, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--webhook-client-ca-file %s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	return pool, nil
}

// clientNames splits --webhook-client-names.
func clientNames(list string) []string {
	var names []string
	for n := range strings.SplitSeq(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}
