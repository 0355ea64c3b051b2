package controllers

// This file holds a namespace's durable Records to a stream quota: the
// most their streams may reserve in NATS together. NATS reserves each
// stream's max_bytes from its store when the stream is created
// (streamLimits), so the store is shared first come, first served; the
// quota keeps one namespace from reserving all of it.

import (
	"cmp"
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// streamQuota is a namespace's stream quota and where it was set.
type streamQuota struct {
	// bytes is the quota; 0 is no limit.
	bytes int64
	// source names the setting, for the message.
	source string
}

// checkStreamQuota returns a *streamError when the Record's stream, to be
// created or grown, does not fit in its namespace's stream quota beside
// the streams of the durable Records created before it
// (StreamQuotaExceeded), or when the quota cannot be read (ReconcileError,
// retried); nil when it fits. Ordering by creation makes the answer
// stable: a Record created later never takes the room of one that had it.
func (r *RecordReconciler) checkStreamQuota(ctx context.Context, rec *recbufv1alpha1.Record) *streamError {
	quota, se := r.namespaceStreamQuota(ctx, rec.Namespace)
	if se != nil || quota.bytes == 0 {
		return se
	}
	var records recbufv1alpha1.RecordList
	if err := r.Client.List(ctx, &records, client.InNamespace(rec.Namespace)); err != nil {
		return &streamError{recbufv1alpha1.ReasonReconcileError, fmt.Sprintf("retrying: listing the Records of namespace %s: %v", rec.Namespace, err), err}
	}
	_, mine := streamLimits(rec, r.Config)
	before := reservedBefore(rec, records.Items, r.Config)
	if before+mine <= quota.bytes {
		return nil
	}
	return &streamError{recbufv1alpha1.ReasonStreamQuotaExceeded, fmt.Sprintf(
		"the stream would reserve %s in NATS, and the durable Records of namespace %s created before this one reserve %s: together beyond the namespace's stream quota %s (%s); lower spec.buffer.maxBytes or spec.maxMessageBytes, or ask the cluster admin for more",
		formatBytes(mine), rec.Namespace, formatBytes(before), formatBytes(quota.bytes), quota.source), nil}
}

// namespaceStreamQuota is the namespace's annotation, else the manager's
// flag. An annotation that is no quantity refuses every stream of the
// namespace: the admin meant a limit.
func (r *RecordReconciler) namespaceStreamQuota(ctx context.Context, namespace string) (streamQuota, *streamError) {
	annotations, err := r.namespaceAnnotations(ctx, namespace)
	if err != nil {
		return streamQuota{}, &streamError{recbufv1alpha1.ReasonReconcileError, "retrying: " + err.Error(), err}
	}
	v, ok := annotations[recbufv1alpha1.AnnotationNamespaceStreamMaxBytes]
	if !ok {
		return streamQuota{r.Config.NamespaceStreamMaxBytes, "the manager's --namespace-stream-max-bytes"}, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() < 0 {
		return streamQuota{}, &streamError{recbufv1alpha1.ReasonStreamQuotaExceeded, fmt.Sprintf(
			"Namespace %s's annotation %s %q is not a non-negative quantity such as 256Mi: no stream is created or updated in it until the cluster admin fixes it",
			namespace, recbufv1alpha1.AnnotationNamespaceStreamMaxBytes, v), nil}
	}
	return streamQuota{q.Value(), fmt.Sprintf("Namespace %s's annotation %s", namespace, recbufv1alpha1.AnnotationNamespaceStreamMaxBytes)}, nil
}

// reservedBefore is what the streams of the namespace's other durable
// Records created before rec reserve (by creation time, then name).
// Records being deleted count: their streams are there until they go.
// Adopted streams are the user's, made and sized outside the manager.
func reservedBefore(rec *recbufv1alpha1.Record, records []recbufv1alpha1.Record, cfg Config) int64 {
	var sum int64
	for i := range records {
		o := &records[i]
		if o.Name == rec.Name || !o.Persistent() || o.AdoptsStream() || createdAfter(o, rec) {
			continue
		}
		_, b := streamLimits(o, cfg)
		sum += b
	}
	return sum
}

// createdAfter orders Records by creation time, then by name.
func createdAfter(a, b *recbufv1alpha1.Record) bool {
	return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name)) > 0
}

// formatBytes is n as a binary quantity (8Mi), as users write them.
func formatBytes(n int64) string { return resource.NewQuantity(n, resource.BinarySI).String() }
