package bufferpod

import (
	"net"
	"path"
	"strconv"
	"strings"

	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
)

// Args is the buffer process's command line (cmd/sidecar's flags) for rec
// in placement p: what the Record declares and what the pods run, each a
// reason to restart them. The manager's report settings are not among
// them: they come from the settings file (the Record's ConfigMap), so that
// changing them restarts no pod.
func Args(rec *recbufv1alpha1.Record, cfg Config, p Placement) []string {
	args := []string{
		"--record-namespace=" + rec.Namespace,
		"--record-name=" + rec.Name,
		"--record-uid=" + string(rec.UID),
		"--buffer-type=" + string(rec.Spec.Buffer.Type),
	}
	if c := rec.Spec.Buffer.Capacity; c != nil {
		args = append(args, "--capacity="+strconv.Itoa(int(*c)))
	}
	if mem, _ := Memory(rec, cfg); mem.MaxBytes > 0 {
		args = append(args, "--buffer-max-bytes="+strconv.FormatInt(mem.MaxBytes, 10))
	}
	args = append(args,
		"--nats-url="+NATSURL(rec, cfg),
		"--nats-subject="+rec.EffectiveSubject(),
	)
	if s := rec.Spec.Source; s != nil && s.NATS.QueueGroup != "" {
		args = append(args, "--nats-queue-group="+s.NATS.QueueGroup)
	}
	if CredentialsRef(rec) != nil {
		args = append(args, "--nats-credentials-dir="+CredentialsDir)
	}
	if stream := StreamName(rec); stream != "" {
		// Restore from and follow the stream instead of subscribing to
		// the subject.
		args = append(args, "--jetstream-stream="+stream)
	}
	if p.ConsumerAuthentication {
		args = append(args, "--consumer-authentication="+string(recbufv1alpha1.ConsumerAuthenticationServiceAccountToken))
	}
	if c := rec.Spec.Consumers; c != nil {
		// Unset, the buffer process's own defaults apply: one place for them.
		if c.MaxStreams != nil {
			args = append(args, "--max-streams="+strconv.Itoa(int(*c.MaxStreams)))
		}
		if c.MaxTakes != nil {
			args = append(args, "--max-takes="+strconv.Itoa(int(*c.MaxTakes)))
		}
		if len(c.AllowedOrigins) > 0 {
			// The API server refused the origins a comma could be part of.
			origins := make([]string, len(c.AllowedOrigins))
			for i, o := range c.AllowedOrigins {
				origins[i] = string(o)
			}
			args = append(args, "--allowed-origins="+strings.Join(origins, ","))
		}
	}
	maxBytes := ptr.Deref(rec.Spec.MaxMessageBytes, recbufv1alpha1.DefaultMaxMessageBytes)
	return append(args,
		"--max-message-bytes="+strconv.Itoa(int(maxBytes)),
		"--http-addr="+net.JoinHostPort(p.HTTPHost, strconv.Itoa(int(p.HTTPPort))),
		"--metrics-addr=:"+strconv.Itoa(int(p.MetricsPort)),
		"--report-settings-file="+path.Join(SettingsDir, report.SettingsKey),
		"--report-key-file="+ReportKeyDir+"/"+report.KeyFile,
		"--shutdown-grace="+strconv.Itoa(ShutdownGraceSeconds)+"s",
	)
}
