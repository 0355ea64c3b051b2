package bufferpod

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// StampGenerations records on pod the generation of each Record injected
// into it (recbufv1alpha1.AnnotationRecordGenerations), in their order.
func StampGenerations(pod *corev1.Pod, recs []*recbufv1alpha1.Record) {
	gens := make([]string, 0, len(recs))
	for _, rec := range recs {
		gens = append(gens, rec.Name+"="+strconv.FormatInt(rec.Generation, 10))
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[recbufv1alpha1.AnnotationRecordGenerations] = strings.Join(gens, ",")
}

// InjectedGenerations reads the generations StampGenerations recorded on
// pod, by Record name.
func InjectedGenerations(pod *corev1.Pod) map[string]int64 {
	out := map[string]int64{}
	for kv := range strings.SplitSeq(pod.Annotations[recbufv1alpha1.AnnotationRecordGenerations], ",") {
		name, g, ok := strings.Cut(kv, "=")
		if n, err := strconv.ParseInt(g, 10, 64); ok && err == nil {
			out[name] = n
		}
	}
	return out
}
