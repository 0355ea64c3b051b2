package bufferpod

import (
	corev1 "k8s.io/api/core/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/streams"
)

// Config is what the manager sets for every buffer container, whatever the
// Record.
type Config struct {
	// Image and ImagePullPolicy run the buffer process.
	Image           string
	ImagePullPolicy corev1.PullPolicy
	// NATSURL is the server of Records that name none.
	NATSURL string
	// MemoryCeiling is the largest memory limit, in bytes, that a buffer
	// container gets by default (<= 0: sizing.DefaultCeiling).
	MemoryCeiling int64
	// ReportKeyFingerprint is the fingerprint of the manager's report
	// master key (report.MasterKeyFingerprint): it names the Records'
	// report key Secrets.
	ReportKeyFingerprint string
}

// The directories the buffer container's volumes are mounted at.
const (
	// SettingsDir holds the Record's ConfigMap; the settings file is
	// SettingsDir/report.SettingsKey.
	SettingsDir = "/etc/recbuf/settings"
	// CredentialsDir holds spec.source.nats.credentialsSecretRef.
	CredentialsDir = "/etc/recbuf/nats"
	// ReportKeyDir holds the report key Secret; the key is the file
	// report.KeyFile in it.
	ReportKeyDir = "/etc/recbuf/report-key"

	settingsVolume    = "settings"
	credentialsVolume = "nats-credentials"
	reportKeyVolume   = "report-key"
)

// The buffer process's run time settings that are no Record's business.
const (
	// ShutdownGraceSeconds is the buffer process's drain time on SIGTERM;
	// the pod gets a few seconds more before SIGKILL.
	ShutdownGraceSeconds = 10
	// RunAsID is the UID and GID the buffer process runs as (distroless's
	// "nonroot"; our FROM scratch images have no user database).
	RunAsID = 65532
)

// ReportKeySecretName is the name of rec's report key Secret under the
// master key of fingerprint: <record>-recbuf-report-key-<fingerprint>. Its
// name changes with the master key, which so rolls the pods onto their
// new keys.
func ReportKeySecretName(rec *recbufv1alpha1.Record, fingerprint string) string {
	return rec.ChildName() + "-report-key-" + fingerprint
}

// StreamName is the Record's stream: the adopted one, or the one the
// manager owns (streams.Name); "" without spec.persistence. The manager
// hands it to the buffer process (--jetstream-stream), which never derives
// it.
func StreamName(rec *recbufv1alpha1.Record) string {
	switch {
	case !rec.Persistent():
		return ""
	case rec.AdoptsStream():
		return rec.Spec.Persistence.Stream
	default:
		return streams.Name(rec.Namespace, rec.Name)
	}
}

// NATSURL is the server rec's buffer connects to.
func NATSURL(rec *recbufv1alpha1.Record, cfg Config) string {
	if s := rec.Spec.Source; s != nil && s.NATS.URL != "" {
		return s.NATS.URL
	}
	return cfg.NATSURL
}

// CredentialsRef is the Secret of NATS credentials rec's buffer presents,
// nil when none.
func CredentialsRef(rec *recbufv1alpha1.Record) *recbufv1alpha1.SecretReference {
	if rec.Spec.Source == nil {
		return nil
	}
	return rec.Spec.Source.NATS.CredentialsSecretRef
}
