// Package bufferpod builds a Record's buffer process as Kubernetes runs
// it: the container, its volumes and its command line, for either of the
// two places a buffer runs (a Placement): a pod of the Record's own
// Deployment, or injected into an app's pod beside its containers.
//
// It is the one place that knows the buffer process's flags (cmd/sidecar)
// and which of them the manager sets: the reconciler (controllers) and the
// injection webhook (internal/webhook) both build the container here, so
// that the two placements run the same process with the same
// configuration. Where the Record leaves a setting unset, no flag is
// written and the buffer process's own default applies: one default per
// setting.
package bufferpod
