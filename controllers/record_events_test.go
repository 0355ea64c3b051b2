package controllers

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

func TestConditionTransitions(t *testing.T) {
	c := func(condType string, s metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: condType, Status: s, Reason: reason, Message: reason + " message"}
	}
	ready := c(recbufv1alpha1.ConditionReady, metav1.ConditionTrue, recbufv1alpha1.ReasonReady)
	notReady := c(recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable)
	scaledDown := c(recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonScaledToZero)
	stalled := c(recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonReplicaFailure)
	notStalled := c(recbufv1alpha1.ConditionStalled, metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing)
	fresh := c(recbufv1alpha1.ConditionReporting, metav1.ConditionTrue, recbufv1alpha1.ReasonReportsFresh)
	staleC := c(recbufv1alpha1.ConditionReporting, metav1.ConditionFalse, recbufv1alpha1.ReasonStale)
	awaiting := c(recbufv1alpha1.ConditionReporting, metav1.ConditionUnknown, recbufv1alpha1.ReasonAwaitingReports)
	available := c(recbufv1alpha1.ConditionAvailable, metav1.ConditionTrue, recbufv1alpha1.ReasonMinimumReplicasAvailable)
	tests := []struct {
		name          string
		before, after []metav1.Condition
		want          []string // eventType/reason
	}{
		{"a new Record's expected first states make no Event", nil, []metav1.Condition{notReady, notStalled, awaiting}, nil},
		{"a new Record that is stalled at once makes a Warning", nil, []metav1.Condition{notReady, stalled}, []string{"Warning/ReplicaFailure"}},
		{"becoming ready makes a Normal Event", []metav1.Condition{notReady}, []metav1.Condition{ready}, []string{"Normal/Ready"}},
		{"becoming not ready makes a Warning", []metav1.Condition{ready}, []metav1.Condition{notReady}, []string{"Warning/DeploymentUnavailable"}},
		{"being scaled to zero is no Warning", []metav1.Condition{ready}, []metav1.Condition{scaledDown}, []string{"Normal/ScaledToZero"}},
		{"reports going stale make a Warning", []metav1.Condition{fresh}, []metav1.Condition{staleC}, []string{"Warning/Stale"}},
		{"a change of reason alone makes no Event", []metav1.Condition{notReady}, []metav1.Condition{scaledDown}, nil},
		{"turning Unknown makes no Event", []metav1.Condition{fresh}, []metav1.Condition{awaiting}, nil},
		{"Available is told by Ready", []metav1.Condition{}, []metav1.Condition{available}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, tr := range conditionTransitions(tt.before, tt.after) {
				got = append(got, tr.eventType+"/"+tr.condition.Reason)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
