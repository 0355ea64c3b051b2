package controllers

import (
	"context"
	"path"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
)

// The buffer pods' fixed layout.
const (
	// ContainerName is the buffer container's name.
	ContainerName = "buffer"
	// HTTPPort serves the consumer API; MetricsPort serves /metrics,
	// /healthz and /readyz.
	HTTPPort    = 8080
	MetricsPort = 9090
	// CredentialsDir is where spec.source.nats.credentialsSecretRef is
	// mounted.
	CredentialsDir = "/etc/recbuf/nats"
	// ShutdownGraceSeconds is the buffer process's drain time on SIGTERM;
	// the pod gets a few seconds more before SIGKILL.
	ShutdownGraceSeconds = 10
	// RunAsID is the UID and GID the buffer process runs as (distroless's
	// "nonroot"; our FROM scratch images have no user database).
	RunAsID = 65532

	credentialsVolume = "nats-credentials"
)

// reconcileDeployment creates or updates the Record's Deployment. Only the
// fields recbuf sets are written, so the API server's defaults stay and an
// unchanged Deployment is not updated; any edit of those fields by someone
// else is reverted.
func (r *RecordReconciler) reconcileDeployment(ctx context.Context, s *recordScope) error {
	if _, err := bufferMemory(s.record, r.Config); err != nil {
		// Stalled (insufficientMemory): pods that cannot hold what the
		// Record declares are not rolled out.
		return r.observeDeployment(ctx, s)
	}
	d := &appsv1.Deployment{ObjectMeta: childMeta(s.record)}
	observed, statusErr, err := r.reconcileChild(ctx, s, "Deployment", d, func() { mutateDeployment(d, s.record, r.Config) })
	if observed {
		s.deployment = d
	}
	s.deploymentErr = statusErr
	return err
}

// mutateDeployment sets the fields recbuf owns on d, which is either new or
// as read from the API server. Each field is set whole, so drift inside it
// is reverted; the buffer container is updated in place so that the
// defaults the API server filled in (terminationMessagePath…) stay equal.
func mutateDeployment(d *appsv1.Deployment, rec *recbufv1alpha1.Record, cfg Config) {
	d.Labels = mergeLabels(d.Labels, childLabels(rec))
	if d.CreationTimestamp.IsZero() {
		// The selector is immutable: set once.
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: selectorLabels(rec)}
	}
	d.Spec.Replicas = ptr.To(ptr.Deref(rec.Spec.Replicas, 1))
	if rec.Spec.Buffer.Type == recbufv1alpha1.BufferTypeMailbox && !rec.Persistent() {
		// Two mailboxes side by side during a rolling update would each take
		// the same values: a value could be taken twice. Stop the old first.
		// A persistent Mailbox is one in JetStream, whose take only one
		// replica can make (a DeleteMsg of the value's sequence).
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	} else {
		// Start the new pod before stopping the old, so that the record
		// stays served through a rollout.
		d.Spec.Strategy = appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)),
				MaxSurge:       ptr.To(intstr.FromInt32(1)),
			},
		}
	}

	t := &d.Spec.Template
	t.Labels = mergeLabels(t.Labels, childLabels(rec))
	ps := &t.Spec
	var c corev1.Container
	for _, have := range ps.Containers {
		if have.Name == ContainerName {
			c = have
		}
	}
	mutateContainer(&c, rec, cfg)
	ps.Containers = []corev1.Container{c}
	ps.InitContainers = nil
	ps.Volumes = []corev1.Volume{{Name: settingsVolume, VolumeSource: settingsVolumeSource(rec)}}
	if ref := credentialsRef(rec); ref != nil {
		ps.Volumes = append(ps.Volumes, corev1.Volume{
			Name: credentialsVolume,
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  ref.Name,
				DefaultMode: ptr.To[int32](0o440),
			}},
		})
	}
	// The report key signs the pod's reports (record_reportkey.go). Not
	// optional: a pod without it could not report. Its name changes with
	// the master key, which so rolls the pods onto their new keys.
	ps.Volumes = append(ps.Volumes, corev1.Volume{
		Name: reportKeyVolume,
		VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  reportKeySecretName(rec, cfg),
			Items:       []corev1.KeyToPath{{Key: report.KeyFile, Path: report.KeyFile}},
			DefaultMode: ptr.To[int32](0o440),
		}},
	})
	ps.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](RunAsID),
		RunAsGroup:     ptr.To[int64](RunAsID),
		FSGroup:        ptr.To[int64](RunAsID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	// The buffer process talks to the API server only to check its
	// consumers' tokens, as its own ServiceAccount
	// (record_consumerauth.go); otherwise it has no token at all. Both
	// fields of the account's name are set: the API server reads the
	// deprecated one when the other is empty, so clearing one alone would
	// keep the account.
	ps.ServiceAccountName, ps.DeprecatedServiceAccount = "", ""
	ps.AutomountServiceAccountToken = ptr.To(false)
	if consumerAuthentication(rec) {
		ps.ServiceAccountName = bufferServiceAccountName(rec)
		ps.DeprecatedServiceAccount = ps.ServiceAccountName
		ps.AutomountServiceAccountToken = ptr.To(true)
	}
	ps.EnableServiceLinks = ptr.To(false)
	ps.TerminationGracePeriodSeconds = ptr.To[int64](ShutdownGraceSeconds + 5)
	ps.NodeSelector, ps.Tolerations, ps.Affinity = nil, nil, nil
	if sc := rec.Spec.Scheduling; sc != nil {
		ps.NodeSelector = sc.NodeSelector
		ps.Tolerations = sc.Tolerations
		ps.Affinity = sc.Affinity
	}
}

func mutateContainer(c *corev1.Container, rec *recbufv1alpha1.Record, cfg Config) {
	c.Name = ContainerName
	c.Image = cfg.SidecarImage
	c.ImagePullPolicy = cfg.SidecarImagePullPolicy
	c.Command = nil
	// A Record that does not fit is never written (reconcileDeployment):
	// the plan's error is the Stalled condition's business.
	mem, _ := bufferMemory(rec, cfg)
	c.Args = sidecarArgs(rec, cfg)
	c.Env = []corev1.EnvVar{{
		Name: "POD_NAME",
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			APIVersion: "v1", FieldPath: "metadata.name",
		}},
	}, memoryLimitEnv()}
	c.EnvFrom = nil
	c.Ports = []corev1.ContainerPort{
		{Name: "http", ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
		{Name: "metrics", ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP},
	}
	// Probes spell out the API server's defaults, so that they compare
	// equal to what it stores.
	c.LivenessProbe = httpProbe("/healthz", 10)
	c.ReadinessProbe = httpProbe("/readyz", 5)
	c.StartupProbe = nil
	c.Resources = defaultResources(mem)
	if rec.Spec.Resources != nil {
		c.Resources = *rec.Spec.Resources.DeepCopy()
	}
	c.SecurityContext = &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	c.VolumeMounts = []corev1.VolumeMount{{Name: settingsVolume, MountPath: SettingsDir, ReadOnly: true}}
	if credentialsRef(rec) != nil {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: credentialsVolume, MountPath: CredentialsDir, ReadOnly: true})
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: reportKeyVolume, MountPath: ReportKeyDir, ReadOnly: true})
}

func httpProbe(path string, period int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromString("metrics"), Scheme: corev1.URISchemeHTTP,
		}},
		PeriodSeconds:    period,
		TimeoutSeconds:   1,
		SuccessThreshold: 1,
		FailureThreshold: 3,
	}
}

func credentialsRef(rec *recbufv1alpha1.Record) *recbufv1alpha1.SecretReference {
	if rec.Spec.Source == nil {
		return nil
	}
	return rec.Spec.Source.NATS.CredentialsSecretRef
}

// natsURL is the server the Record's buffer connects to.
func natsURL(rec *recbufv1alpha1.Record, cfg Config) string {
	if s := rec.Spec.Source; s != nil && s.NATS.URL != "" {
		return s.NATS.URL
	}
	return cfg.NATSURL
}

// sidecarArgs is the buffer process's command line (cmd/sidecar's flags):
// what the Record declares and what the pods run, each a reason to restart
// them. The manager's report settings are not among them: they come from
// the settings file (record_settings.go), so that changing them restarts
// no pod.
func sidecarArgs(rec *recbufv1alpha1.Record, cfg Config) []string {
	args := []string{
		"--record-namespace=" + rec.Namespace,
		"--record-name=" + rec.Name,
		"--record-uid=" + string(rec.UID),
		"--buffer-type=" + string(rec.Spec.Buffer.Type),
	}
	if c := rec.Spec.Buffer.Capacity; c != nil {
		args = append(args, "--capacity="+strconv.Itoa(int(*c)))
	}
	if mem, _ := bufferMemory(rec, cfg); mem.MaxBytes > 0 {
		args = append(args, "--buffer-max-bytes="+strconv.FormatInt(mem.MaxBytes, 10))
	}
	args = append(args,
		"--nats-url="+natsURL(rec, cfg),
		"--nats-subject="+rec.EffectiveSubject(),
	)
	if s := rec.Spec.Source; s != nil && s.NATS.QueueGroup != "" {
		args = append(args, "--nats-queue-group="+s.NATS.QueueGroup)
	}
	if credentialsRef(rec) != nil {
		args = append(args, "--nats-credentials-dir="+CredentialsDir)
	}
	if rec.Persistent() {
		// Restore from and follow the stream instead of subscribing to
		// the subject (record_stream.go).
		args = append(args, "--jetstream-stream="+rec.StreamName())
	}
	if consumerAuthentication(rec) {
		args = append(args, "--consumer-authentication="+string(recbufv1alpha1.ConsumerAuthenticationServiceAccountToken))
	}
	maxBytes := ptr.Deref(rec.Spec.MaxMessageBytes, recbufv1alpha1.DefaultMaxMessageBytes)
	return append(args,
		"--max-message-bytes="+strconv.Itoa(int(maxBytes)),
		"--http-addr=:"+strconv.Itoa(HTTPPort),
		"--metrics-addr=:"+strconv.Itoa(MetricsPort),
		"--report-settings-file="+path.Join(SettingsDir, report.SettingsKey),
		"--report-key-file="+ReportKeyDir+"/"+report.KeyFile,
		"--shutdown-grace="+strconv.Itoa(ShutdownGraceSeconds)+"s",
	)
}
