package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/controllers"
	"github.com/recbuf/recbuf/internal/natsconn"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// leaderElectionID names the manager's leader election Lease.
const leaderElectionID = "recbuf.dev"

// run runs the manager against the API server of cfg until ctx is done.
func run(ctx context.Context, cfg *rest.Config, o options) error {
	log := ctrl.Log.WithName("setup")
	o.logDeprecated(log)
	// Credentials are read first so that a bad Secret stops the manager
	// at once instead of leaving it running deaf to every report.
	natsOpts, err := natsconn.CredentialOptions(o.natsCredentialsDir)
	if err != nil {
		return fmt.Errorf("reading --nats-credentials-dir: %w", err)
	}
	inCluster := o.inCluster != nil && o.inCluster()
	masterKey, err := reportMasterKey(o.reportMasterKeyFile, inCluster, log)
	if err != nil {
		return err
	}
	metricsOpts, metricsCerts, err := metricsServerOptions(o)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building the scheme: %w", err)
	}
	if err := recbufv1alpha1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building the scheme: %w", err)
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         controllers.CacheOptions(),
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       o.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: &o.skipControllerNameValidation},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	if metricsCerts != nil {
		if err := mgr.Add(metricsCerts); err != nil {
			return fmt.Errorf("adding the metrics certificate watcher: %w", err)
		}
	}

	collector := statusagg.New(statusagg.Options{
		URL:          o.natsURL,
		NATSOptions:  natsOpts,
		Prefix:       o.reportSubjectPrefix,
		Interval:     o.reportInterval,
		StaleAfter:   o.reportStaleAfter,
		MaxClockSkew: o.reportMaxClockSkew,
		Logger:       ctrl.Log.WithName("statusagg"),
	})
	if err := mgr.Add(collector); err != nil {
		return fmt.Errorf("adding the status collector: %w", err)
	}

	// The streams of persistent Records are managed over a connection of
	// their own, with the collector's server, credentials and policy: the
	// collector's connection lives and dies with its Start.
	streamConn, err := natsconn.Policy{
		Name:   "recbuf-manager-streams",
		Logger: slog.New(logr.ToSlogHandler(ctrl.Log.WithName("jetstream"))),
	}.Connect(o.natsURL, natsOpts...)
	if err != nil {
		return fmt.Errorf("connecting to NATS at %q for JetStream: %w", natsconn.RedactURL(o.natsURL), err)
	}
	defer streamConn.Close()
	js, err := jetstream.New(streamConn)
	if err != nil {
		return fmt.Errorf("creating the JetStream client: %w", err)
	}

	ctrlCfg := controllers.Config{
		BufferImage:                   o.bufferImage,
		BufferImagePullPolicy:         corev1.PullPolicy(o.bufferImagePullPolicy),
		NATSURL:                       o.natsURL,
		ReportSubjectPrefix:           o.reportSubjectPrefix,
		ReportInterval:                o.reportInterval,
		AllowedNATSServers:            allowedServers(o.allowedNATSServers),
		AllowPlaintextNATSCredentials: o.allowPlaintextNATSCreds,
		ReportMasterKey:               masterKey,
		BufferMemoryCeiling:           o.bufferMemoryCeiling.Value(),
		StreamMaxBytes:                o.streamMaxBytes.Value(),
		NamespaceStreamMaxBytes:       o.namespaceStreamMaxBytes.Value(),
		ConsumerAuthenticationOptIn:   o.consumerAuthOptIn,
		NetworkPolicies:               o.networkPolicyConfig(),
	}
	sidecarPods, err := newSidecarPodsCache(mgr)
	if err != nil {
		return err
	}
	r := &controllers.RecordReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("recbuf-manager"),
		Reports:   collector,
		JetStream: js,
		Config:    ctrlCfg,
		// Counted whether or not this manager injects: pods admitted
		// before injection was turned off still run their sidecars.
		SidecarPods: sidecarPods,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Record controller: %w", err)
	}

	if err := setupSidecarInjection(mgr, o, ctrlCfg, log); err != nil {
		return err
	}

	// Neither probe depends on NATS: the manager is healthy and ready
	// while NATS is down, and says so in the Records' conditions.
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}

	log.Info("Starting manager", "bufferImage", o.bufferImage, "natsURL", natsconn.RedactURL(o.natsURL), "natsCredentialsDir", o.natsCredentialsDir,
		"allowedNATSServers", natsconn.RedactURL(o.allowedNATSServers), "allowPlaintextNATSCredentials", o.allowPlaintextNATSCreds, "leaderElection", o.leaderElect,
		"metricsBindAddress", o.metricsAddr, "metricsSecure", o.metricsSecure, "metricsCertPath", o.metricsCertPath,
		"networkPolicies", o.networkPolicies, "sidecarInjection", o.sidecarInjection, "webhookCerts", o.webhookCerts, "metricsFromNamespaceSelector", o.metricsFrom,
		"reportMasterKeyFile", o.reportMasterKeyFile, "reportKeyFingerprint", report.MasterKeyFingerprint(masterKey))
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// newSidecarPodsCache makes the cache of the app pods that asked for
// sidecars, started with mgr.
func newSidecarPodsCache(mgr ctrl.Manager) (cache.Cache, error) {
	opts := controllers.SidecarPodsCacheOptions(mgr.GetScheme())
	opts.Mapper, opts.HTTPClient = mgr.GetRESTMapper(), mgr.GetHTTPClient()
	c, err := cache.New(mgr.GetConfig(), opts)
	if err != nil {
		return nil, fmt.Errorf("creating the cache of pods with sidecars: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("adding the cache of pods with sidecars: %w", err)
	}
	return c, nil
}

// allowedServers is --allowed-nats-servers as the reconciler takes it:
// nil when unset, so that it defaults to --nats-url's servers.
func allowedServers(flag string) []string {
	if flag == "" {
		return nil
	}
	return []string{flag}
}
