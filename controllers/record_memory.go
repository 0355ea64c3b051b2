package controllers

// This file refuses to roll out the pods of a Record that could not hold
// what it declares (package bufferpod sizes the container, package sizing
// holds the formula).

import (
	"fmt"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/sizing"
)

// insufficientMemory: what the Record declares cannot fit in the memory
// limit its pods would run with.
func insufficientMemory(rec *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	if _, err := sizing.Size(bufferpod.DeclaredMemory(rec, in.bufferMemoryCeiling)); err != nil {
		return recbufv1alpha1.ReasonInsufficientMemory, fmt.Sprintf("Deployment %s left as it was: %v", rec.ChildName(), err), true
	}
	return "", "", false
}
