package bufferpod

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/sizing"
)

// defaultCPURequest is the buffer container's CPU request when the Record
// sets no resources: a buffer process idles most of the time.
var defaultCPURequest = resource.MustParse("10m")

// DeclaredMemory is what rec declares that sizes its buffer process, with
// the manager's ceiling (ceiling <= 0: sizing.DefaultCeiling).
func DeclaredMemory(rec *recbufv1alpha1.Record, ceiling int64) sizing.Declared {
	d := sizing.Declared{
		MaxMessageBytes: int64(ptr.Deref(rec.Spec.MaxMessageBytes, recbufv1alpha1.DefaultMaxMessageBytes)),
		Ceiling:         ceiling,
	}
	b := rec.Spec.Buffer
	if b.Type == recbufv1alpha1.BufferTypeSpmcRing {
		d.Capacity = int64(ptr.Deref(b.Capacity, 1))
		if b.MaxBytes != nil {
			// Value rounds a fraction of a byte up.
			d.MaxBytes = b.MaxBytes.Value()
		}
	}
	if c := rec.Spec.Consumers; c != nil && c.MaxStreams != nil {
		d.MaxStreams = int64(*c.MaxStreams)
	}
	if r := rec.Spec.Resources; r != nil {
		if l, ok := r.Limits[corev1.ResourceMemory]; ok {
			d.Limit = l.Value()
		}
	}
	return d
}

// Memory is the memory plan of rec's buffer process; its error, a
// *sizing.DoesNotFitError, says the Record does not fit.
func Memory(rec *recbufv1alpha1.Record, cfg Config) (sizing.Plan, error) {
	return sizing.Size(DeclaredMemory(rec, cfg.MemoryCeiling))
}

// defaultResources are the buffer container's resources when the Record
// sets none: the plan's memory request (the steady state: what a full ring
// keeps) and limit (the worst case, with the intake queue full), and a
// small CPU request.
func defaultResources(p sizing.Plan) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    defaultCPURequest,
			corev1.ResourceMemory: *resource.NewQuantity(p.Request, resource.BinarySI),
		},
		Limits: corev1.ResourceList{corev1.ResourceMemory: *resource.NewQuantity(p.Limit, resource.BinarySI)},
	}
}

// memoryLimitEnv hands the buffer process its container's memory limit in
// bytes, from which it sets the Go runtime's soft limit
// (sizing.GoMemoryLimit). The downward API reads the limit the kubelet
// enforces, whoever set it; without one, it gives the node's allocatable
// memory.
func memoryLimitEnv(container string) corev1.EnvVar {
	return corev1.EnvVar{
		Name: sizing.MemoryLimitEnv,
		ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
			ContainerName: container, Resource: "limits.memory", Divisor: resource.MustParse("1"),
		}},
	}
}
