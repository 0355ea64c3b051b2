package bufferpod

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
)

// MutateContainer sets c to rec's buffer container in placement p. c is
// either new or as read from the API server: each field recbuf owns is set
// whole, so drift inside it is reverted, and the fields it does not own
// (the API server's defaults: terminationMessagePath…) stay, so that an
// unchanged container compares equal.
//
// A Record that does not fit its memory (Memory's error) is not to be
// rolled out: the caller checks that first.
func MutateContainer(c *corev1.Container, rec *recbufv1alpha1.Record, cfg Config, p Placement) {
	c.Name = p.Container
	c.Image = cfg.Image
	c.ImagePullPolicy = cfg.ImagePullPolicy
	c.Command = nil
	mem, _ := Memory(rec, cfg)
	c.Args = Args(rec, cfg, p)
	c.Env = []corev1.EnvVar{{
		Name: "POD_NAME",
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			APIVersion: "v1", FieldPath: "metadata.name",
		}},
	}, memoryLimitEnv(p.Container)}
	c.EnvFrom = nil
	if p.NamedPorts {
		c.Ports = []corev1.ContainerPort{
			{Name: "http", ContainerPort: p.HTTPPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: p.MetricsPort, Protocol: corev1.ProtocolTCP},
		}
	} else {
		c.Ports = []corev1.ContainerPort{{ContainerPort: p.MetricsPort, Protocol: corev1.ProtocolTCP}}
	}
	// Probes spell out the API server's defaults, so that they compare
	// equal to what it stores.
	c.LivenessProbe = HTTPProbe("/healthz", p.MetricsProbePort(), 10)
	c.ReadinessProbe = HTTPProbe("/readyz", p.MetricsProbePort(), 5)
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
	c.VolumeMounts = []corev1.VolumeMount{{Name: p.settingsVolume(), MountPath: SettingsDir, ReadOnly: true}}
	if CredentialsRef(rec) != nil {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: p.credentialsVolume(), MountPath: CredentialsDir, ReadOnly: true})
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: p.reportKeyVolume(), MountPath: ReportKeyDir, ReadOnly: true})
}

// PodSecurityContext is the security context of the Record's own pods:
// restricted Pod Security, run as RunAsID.
func PodSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](RunAsID),
		RunAsGroup:     ptr.To[int64](RunAsID),
		FSGroup:        ptr.To[int64](RunAsID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// HTTPProbe is a probe of path on port every period seconds, with the API
// server's defaults spelled out.
func HTTPProbe(path string, port intstr.IntOrString, period int32) *corev1.Probe {
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

// Volumes are the volumes rec's buffer container in placement p mounts.
func Volumes(rec *recbufv1alpha1.Record, cfg Config, p Placement) []corev1.Volume {
	vols := []corev1.Volume{{Name: p.settingsVolume(), VolumeSource: settingsVolumeSource(rec)}}
	if ref := CredentialsRef(rec); ref != nil {
		vols = append(vols, corev1.Volume{
			Name: p.credentialsVolume(),
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  ref.Name,
				DefaultMode: ptr.To(p.SecretMode),
			}},
		})
	}
	// The report key signs the pod's reports. Not optional: a pod without
	// it could not report.
	return append(vols, corev1.Volume{
		Name: p.reportKeyVolume(),
		VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  ReportKeySecretName(rec, cfg.ReportKeyFingerprint),
			Items:       []corev1.KeyToPath{{Key: report.KeyFile, Path: report.KeyFile}},
			DefaultMode: ptr.To(p.SecretMode),
		}},
	})
}

// settingsVolumeSource mounts the Record's ConfigMap. It is optional, so
// that a pod starts even if the ConfigMap is gone (the buffer process then
// keeps its command line's settings, and the manager recreates it).
func settingsVolumeSource(rec *recbufv1alpha1.Record) corev1.VolumeSource {
	return corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: rec.ChildName()},
		DefaultMode:          ptr.To[int32](0o444),
		Optional:             ptr.To(true),
	}}
}
