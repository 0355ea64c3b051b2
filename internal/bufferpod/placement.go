package bufferpod

import (
	"strconv"

	"k8s.io/apimachinery/pkg/util/intstr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// The buffer pods' fixed layout.
const (
	// ContainerName is the buffer container's name in the Record's own
	// pods.
	ContainerName = "buffer"
	// HTTPPort serves the consumer API; MetricsPort serves /metrics,
	// /healthz and /readyz.
	HTTPPort    = 8080
	MetricsPort = 9090
	// InjectedContainerPrefix prefixes the Record's name to name its
	// container in an app's pod.
	InjectedContainerPrefix = "recbuf-"

	// injectedVolumeSuffix and the Record's index in the pod's list name
	// its volumes apart from the app's and from each other's.
	injectedVolumeSuffix = "-recbuf-"
)

// Placement is where one buffer container sits in its pod: alone in a pod
// of the Record's Deployment (Own), or beside an app's containers, one
// per injected Record (Injected).
type Placement struct {
	// Container is the container's name, unique in the pod.
	Container string
	// HTTPHost is the consumer API's listen host ("": every interface).
	HTTPHost string
	// HTTPPort and MetricsPort are the ports of the consumer API and of
	// /metrics, /healthz and /readyz.
	HTTPPort, MetricsPort int32
	// NamedPorts names the ports "http" and "metrics" and the probes use
	// the names; an app pod has its own ports, so an injected buffer's are
	// numbered only.
	NamedPorts bool
	// VolumeSuffix makes the volume names unique in the pod.
	VolumeSuffix string
	// SecretMode is the file mode of the mounted Secrets: readable by the
	// group in the Record's own pods, whose fsGroup is the buffer's; by
	// all in an app pod, whose fsGroup is the app's (the files are still
	// mounted in the buffer container only).
	SecretMode int32
	// ConsumerAuthentication: the consumer API asks ServiceAccount tokens.
	ConsumerAuthentication bool
}

// Own is the placement in the Record's own pods.
func Own(rec *recbufv1alpha1.Record) Placement {
	return Placement{
		Container:              ContainerName,
		HTTPPort:               HTTPPort,
		MetricsPort:            MetricsPort,
		NamedPorts:             true,
		SecretMode:             0o440,
		ConsumerAuthentication: ConsumerAuthentication(rec),
	}
}

// Injected is the placement of the index-th Record injected into an app's
// pod: its consumer API on listenHost at httpPort+index, its metrics at
// metricsPort+index.
func Injected(rec *recbufv1alpha1.Record, listenHost string, httpPort, metricsPort int32, index int) Placement {
	return Placement{
		Container:    InjectedContainerPrefix + rec.Name,
		HTTPHost:     listenHost,
		HTTPPort:     httpPort + int32(index),
		MetricsPort:  metricsPort + int32(index),
		VolumeSuffix: injectedVolumeSuffix + strconv.Itoa(index),
		SecretMode:   0o444,
		// On loopback only the pod's own containers reach it: there is no
		// one to authenticate; beyond the pod, the webhook keeps out the
		// Records that would need it (docs/sidecar.md).
		ConsumerAuthentication: false,
	}
}

// ConsumerAuthentication reports whether the Record's own pods
// authenticate their consumers.
func ConsumerAuthentication(rec *recbufv1alpha1.Record) bool {
	return rec.ConsumerAuthenticationMode() == recbufv1alpha1.ConsumerAuthenticationServiceAccountToken
}

func (p Placement) settingsVolume() string    { return settingsVolume + p.VolumeSuffix }
func (p Placement) credentialsVolume() string { return credentialsVolume + p.VolumeSuffix }
func (p Placement) reportKeyVolume() string   { return reportKeyVolume + p.VolumeSuffix }

// MetricsProbePort is the port the probes ask.
func (p Placement) MetricsProbePort() intstr.IntOrString {
	if p.NamedPorts {
		return intstr.FromString("metrics")
	}
	return intstr.FromInt32(p.MetricsPort)
}
