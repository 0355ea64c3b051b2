package controllers

import (
	"context"
	"net"
	"path"
	"strconv"
	"strings"

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
	mutateContainer(&c, rec, cfg, deploymentLayout(rec))
	ps.Containers = []corev1.Container{c}
	ps.InitContainers = nil
	ps.Volumes = bufferVolumes(rec, cfg, deploymentLayout(rec))
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
	ps.TopologySpreadConstraints = defaultSpread(rec)
	if sc := rec.Spec.Scheduling; sc != nil {
		ps.NodeSelector = sc.NodeSelector
		ps.Tolerations = sc.Tolerations
		ps.Affinity = sc.Affinity
		if len(sc.TopologySpreadConstraints) > 0 {
			ps.TopologySpreadConstraints = sc.TopologySpreadConstraints
		}
	}
}

// defaultSpread spreads a Record's pods across nodes, whatever its
// replicas: set for one replica too, so that scaling up changes no pod
// template and rolls nothing. Soft (ScheduleAnyway): a pod that cannot be
// placed on a node of its own still runs, on a cluster of one node as on a
// node drained for maintenance. pod-template-hash counts only the pods of
// the current revision, so a rollout's surge pod is not pushed away by the
// old pods it is replacing.
func defaultSpread(rec *recbufv1alpha1.Record) []corev1.TopologySpreadConstraint {
	return []corev1.TopologySpreadConstraint{{
		MaxSkew:           1,
		TopologyKey:       corev1.LabelHostname,
		WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: selectorLabels(rec)},
		MatchLabelKeys:    []string{appsv1.DefaultDeploymentUniqueLabelKey},
	}}
}

// bufferLayout is where one buffer container sits in its pod: alone in a
// pod of the Record's Deployment (deploymentLayout), or beside an app's
// containers, one per injected Record (sidecarLayout, sidecar_injector.go).
// One function builds the container for both, so that the two modes run
// the same process with the same configuration.
type bufferLayout struct {
	// container is the container's name, unique in the pod.
	container string
	// httpHost is the consumer API's listen host ("": every interface).
	httpHost string
	// httpPort and metricsPort are the ports of the consumer API and of
	// /metrics, /healthz and /readyz.
	httpPort, metricsPort int32
	// namedPorts names the ports "http" and "metrics" and the probes
	// use the names; an app pod has its own ports, so the sidecar's
	// are numbered only.
	namedPorts bool
	// volumeSuffix makes the volume names unique in the pod.
	volumeSuffix string
	// secretMode is the file mode of the mounted Secrets: readable by the
	// group in the Deployment's pods, whose fsGroup is the buffer's; by
	// all in an app pod, whose fsGroup is the app's (the files are still
	// mounted in the buffer container only).
	secretMode int32
	// consumerAuthentication: the consumer API asks ServiceAccount tokens.
	consumerAuthentication bool
}

// deploymentLayout is the layout of the Record's own pods.
func deploymentLayout(rec *recbufv1alpha1.Record) bufferLayout {
	return bufferLayout{
		container:              ContainerName,
		httpPort:               HTTPPort,
		metricsPort:            MetricsPort,
		namedPorts:             true,
		secretMode:             0o440,
		consumerAuthentication: consumerAuthentication(rec),
	}
}

func (l bufferLayout) settingsVolume() string    { return settingsVolume + l.volumeSuffix }
func (l bufferLayout) credentialsVolume() string { return credentialsVolume + l.volumeSuffix }
func (l bufferLayout) reportKeyVolume() string   { return reportKeyVolume + l.volumeSuffix }

// metricsProbePort is the port the probes ask.
func (l bufferLayout) metricsProbePort() intstr.IntOrString {
	if l.namedPorts {
		return intstr.FromString("metrics")
	}
	return intstr.FromInt32(l.metricsPort)
}

// bufferVolumes are the volumes the buffer container of layout l mounts.
func bufferVolumes(rec *recbufv1alpha1.Record, cfg Config, l bufferLayout) []corev1.Volume {
	vols := []corev1.Volume{{Name: l.settingsVolume(), VolumeSource: settingsVolumeSource(rec)}}
	if ref := credentialsRef(rec); ref != nil {
		vols = append(vols, corev1.Volume{
			Name: l.credentialsVolume(),
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  ref.Name,
				DefaultMode: ptr.To(l.secretMode),
			}},
		})
	}
	// The report key signs the pod's reports (record_reportkey.go). Not
	// optional: a pod without it could not report. Its name changes with
	// the master key, which so rolls the pods onto their new keys.
	return append(vols, corev1.Volume{
		Name: l.reportKeyVolume(),
		VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  reportKeySecretName(rec, cfg),
			Items:       []corev1.KeyToPath{{Key: report.KeyFile, Path: report.KeyFile}},
			DefaultMode: ptr.To(l.secretMode),
		}},
	})
}

// mutateContainer sets the buffer container c of layout l: the Record's
// buffer process.
func mutateContainer(c *corev1.Container, rec *recbufv1alpha1.Record, cfg Config, l bufferLayout) {
	c.Name = l.container
	c.Image = cfg.SidecarImage
	c.ImagePullPolicy = cfg.SidecarImagePullPolicy
	c.Command = nil
	// A Record that does not fit is never written (reconcileDeployment):
	// the plan's error is the Stalled condition's business.
	mem, _ := bufferMemory(rec, cfg)
	c.Args = sidecarArgs(rec, cfg, l)
	c.Env = []corev1.EnvVar{{
		Name: "POD_NAME",
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			APIVersion: "v1", FieldPath: "metadata.name",
		}},
	}, memoryLimitEnv(l.container)}
	c.EnvFrom = nil
	if l.namedPorts {
		c.Ports = []corev1.ContainerPort{
			{Name: "http", ContainerPort: l.httpPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: l.metricsPort, Protocol: corev1.ProtocolTCP},
		}
	} else {
		c.Ports = []corev1.ContainerPort{{ContainerPort: l.metricsPort, Protocol: corev1.ProtocolTCP}}
	}
	// Probes spell out the API server's defaults, so that they compare
	// equal to what it stores.
	c.LivenessProbe = httpProbe("/healthz", l.metricsProbePort(), 10)
	c.ReadinessProbe = httpProbe("/readyz", l.metricsProbePort(), 5)
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
	c.VolumeMounts = []corev1.VolumeMount{{Name: l.settingsVolume(), MountPath: SettingsDir, ReadOnly: true}}
	if credentialsRef(rec) != nil {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: l.credentialsVolume(), MountPath: CredentialsDir, ReadOnly: true})
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: l.reportKeyVolume(), MountPath: ReportKeyDir, ReadOnly: true})
}

func httpProbe(path string, port intstr.IntOrString, period int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: port, Scheme: corev1.URISchemeHTTP,
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
func sidecarArgs(rec *recbufv1alpha1.Record, cfg Config, l bufferLayout) []string {
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
		args = append(args, "--jetstream-stream="+streamName(rec))
	}
	if l.consumerAuthentication {
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
		"--http-addr="+net.JoinHostPort(l.httpHost, strconv.Itoa(int(l.httpPort))),
		"--metrics-addr=:"+strconv.Itoa(int(l.metricsPort)),
		"--report-settings-file="+path.Join(SettingsDir, report.SettingsKey),
		"--report-key-file="+ReportKeyDir+"/"+report.KeyFile,
		"--shutdown-grace="+strconv.Itoa(ShutdownGraceSeconds)+"s",
	)
}
