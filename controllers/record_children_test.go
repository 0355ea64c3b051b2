package controllers

import (
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

func TestIsConflictMatchesOnlyForeignOwners(t *testing.T) {
	if !isConflict(errors.Join(errors.New("x"), &controllerutil.AlreadyOwnedError{Object: &appsv1.Deployment{}})) {
		t.Error("got false for a wrapped AlreadyOwnedError, want true")
	}
	if isConflict(errors.New("other")) || isConflict(nil) {
		t.Error("got true for another error, want false")
	}
}
