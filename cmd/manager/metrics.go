package main

import (
	"crypto/tls"
	"fmt"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/recbuf/recbuf/internal/profiling"
)

// The files of --metrics-cert-path, as a kubernetes.io/tls Secret mounted
// there holds them.
const (
	metricsCertFile = "tls.crt"
	metricsKeyFile  = "tls.key"
)

// metricsServerOptions are the metrics endpoint's options for the flags.
//
// With --metrics-secure (the default) it is HTTPS, and every request is
// authenticated with a TokenReview of its bearer token and authorized with
// a SubjectAccessReview for get on the non-resource URL /metrics
// (controller-runtime's filters.WithAuthenticationAndAuthorization, as
// kubebuilder v4 scaffolds it; it caches TokenReviews for a minute, allowed
// SubjectAccessReviews for 5 and refused ones for 30 s). The certificate is --metrics-cert-path's, reloaded when its
// files change (the returned watcher, a runnable for the manager), or else
// a self-signed one that controller-runtime makes at start: it encrypts,
// and scrapers skip its verification.
//
// HTTP/2 is off: its stream resets (CVE-2023-44487, CVE-2023-39325) let an
// unauthenticated client make the server work before any token is looked
// at, and Prometheus scrapes over HTTP/1.1 anyway.
//
// With --metrics-secure=false it is plain HTTP without authentication, for
// development only.
//
// With --profiling it also serves Go's runtime profiles, behind the same
// filter: controller-runtime wraps extra handlers in it too, and the
// SubjectAccessReview is for the request's own path, so a token allowed
// /metrics is not allowed /debug/pprof/ unless a role says so.
func metricsServerOptions(o options) (metricsserver.Options, *certwatcher.CertWatcher, error) {
	opts := metricsserver.Options{BindAddress: o.metricsAddr}
	if o.profiling {
		opts.ExtraHandlers = profiling.Handlers()
	}
	if !o.metricsSecure {
		return opts, nil, nil
	}
	opts.SecureServing = true
	opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	opts.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	if o.metricsCertPath == "" {
		return opts, nil, nil
	}
	// Read here, not by the metrics server: it would fall back to a
	// self-signed certificate without a word when the files are missing.
	w, err := certwatcher.New(filepath.Join(o.metricsCertPath, metricsCertFile), filepath.Join(o.metricsCertPath, metricsKeyFile))
	if err != nil {
		return metricsserver.Options{}, nil, fmt.Errorf("reading the certificate of --metrics-cert-path %s: %w", o.metricsCertPath, err)
	}
	opts.TLSOpts = append(opts.TLSOpts, func(c *tls.Config) { c.GetCertificate = w.GetCertificate })
	return opts, w, nil
}
