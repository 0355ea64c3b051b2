package controllers

// This file keeps the JetStream stream of a Record with spec.persistence:
// created, updated in place and deleted with the Record (or retained), or
// only observed when the Record adopts a stream the user manages. The
// names and metadata keys are package streams'.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/streams"
)

// StreamFinalizer holds a Record whose stream the manager deletes with it
// (spec.persistence with deletionPolicy Delete) until the stream is gone.
const StreamFinalizer = "recbuf.dev/stream"

// streamTimeout bounds each JetStream request of a reconcile, so that an
// unreachable NATS delays a Record's other children by at most this much.
const streamTimeout = 5 * time.Second

// streamError is why a Record's stream cannot be had: the StreamReady
// reason and its message. Match it with errors.As.
type streamError struct {
	reason  string
	message string
	err     error
}

func (e *streamError) Error() string { return e.message }
func (e *streamError) Unwrap() error { return e.err }

// streamObservation is what the stream phase saw: the stream's state (nil:
// not read) or why it cannot be had.
type streamObservation struct {
	// name is the Record's stream.
	name string
	// state is the stream's state as JetStream answered (nil: not read).
	state *jetstream.StreamState
	// err is a *streamError, or nil.
	err error
}

// Stream error codes of JetStream (nats-server's
// jetstream_errors_generated.go) that say a resource limit refused the
// stream, and the one that says its subjects overlap another stream's.
var accountLimitCodes = []jetstream.ErrorCode{
	10023, // insufficient resources
	10027, // maximum number of streams reached
	10028, // insufficient memory resources available
	10047, // insufficient storage resources available
	10113, // account requires a stream config to have max bytes set
	10122, // stream max bytes exceeds account limit max stream bytes
}

const subjectOverlapCode jetstream.ErrorCode = 10065

// classifyStreamErr turns an error of a JetStream request into the
// StreamReady reason it means.
func classifyStreamErr(name string, err error) *streamError {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
		// Nothing answers the JetStream API: the server runs without it.
		errors.Is(err, nats.ErrNoResponders):
		return &streamError{recbufv1alpha1.ReasonJetStreamDisabled,
			"JetStream is not enabled on the manager's NATS server or for its account: enable it (the chart's nats.jetstream.enabled), or remove spec.persistence", err}
	case errors.As(err, &apiErr) && slices.Contains(accountLimitCodes, apiErr.ErrorCode):
		return &streamError{recbufv1alpha1.ReasonAccountLimits,
			fmt.Sprintf("JetStream refused stream %s for its resource limits: %s", name, apiErr.Description), err}
	case errors.As(err, &apiErr) && apiErr.ErrorCode == subjectOverlapCode:
		return &streamError{recbufv1alpha1.ReasonStreamConflict,
			fmt.Sprintf("the subject of stream %s overlaps the subjects of another stream: change spec.source.nats.subject, or the other stream", name), err}
	case errors.As(err, &apiErr):
		return &streamError{recbufv1alpha1.ReasonStreamRefused, fmt.Sprintf("JetStream refused stream %s: %s", name, apiErr.Description), err}
	default:
		return &streamError{recbufv1alpha1.ReasonNATSUnavailable, fmt.Sprintf("the manager could not reach JetStream for stream %s: %v", name, err), err}
	}
}

// reconcileStream makes sure of the Record's stream: the one it adopts
// exists; the one the manager owns exists with the Record's configuration,
// and the finalizer is there exactly when the stream goes with the Record.
// A Record without spec.persistence whose finalizer is still there had
// its persistence removed: its stream is released as on deletion.
func (r *RecordReconciler) reconcileStream(ctx context.Context, s *recordScope) error {
	rec := s.record
	if !rec.Persistent() {
		if controllerutil.ContainsFinalizer(rec, StreamFinalizer) {
			return r.finalizeStream(ctx, s)
		}
		return nil
	}
	name := bufferpod.StreamName(rec)
	s.stream = &streamObservation{name: name}
	if r.JetStream == nil {
		s.stream.err = &streamError{reason: recbufv1alpha1.ReasonNATSUnavailable, message: "the manager has no JetStream connection"}
		return nil
	}
	if err := r.reconcileStreamFinalizer(ctx, s); err != nil {
		s.stream.err = &streamError{recbufv1alpha1.ReasonReconcileError, "retrying: " + err.Error(), err}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	if rec.AdoptsStream() {
		s.stream.state, s.stream.err = r.observeAdoptedStream(ctx, rec, name)
		return nil
	}
	s.stream.state, s.stream.err = r.ensureStream(ctx, rec, name)
	if err := s.stream.err; err != nil {
		s.log.V(1).Info("Stream not ready", "record", klog.KObj(rec), "stream", name, "error", err)
	}
	return nil
}

// reconcileStreamFinalizer puts StreamFinalizer on a Record whose stream
// goes with it, before there is a stream to delete, and takes it off one
// whose stream stays (Retain, adopted). A Record that owned a stream to be
// deleted with it and now adopts another one has the owned stream deleted.
func (r *RecordReconciler) reconcileStreamFinalizer(ctx context.Context, s *recordScope) error {
	rec := s.record
	if rec.AdoptsStream() && controllerutil.ContainsFinalizer(rec, StreamFinalizer) {
		return r.finalizeStream(ctx, s)
	}
	return r.setStreamFinalizer(ctx, s, rec.StreamDeletionPolicy() == recbufv1alpha1.DeletionPolicyDelete)
}

// observeAdoptedStream reads the state of a stream the user manages, and
// checks that it holds only values of the Record's subject: adopting a
// stream must not let a Record read what its subject, vetted at admission,
// would not.
func (r *RecordReconciler) observeAdoptedStream(ctx context.Context, rec *recbufv1alpha1.Record, name string) (*jetstream.StreamState, error) {
	st, err := r.JetStream.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, &streamError{recbufv1alpha1.ReasonStreamNotFound,
			fmt.Sprintf("stream %s named by spec.persistence.stream does not exist: create it, or fix the name", name), err}
	}
	if err != nil {
		return nil, classifyStreamErr(name, err)
	}
	info := st.CachedInfo()
	if owner, ok := info.Config.Metadata[streams.MetadataRecord]; ok && owner != streams.RecordKey(rec.Namespace, rec.Name) {
		// Another Record's stream, made by the manager: its values, its
		// deletion policy and its numbering are that Record's.
		return nil, &streamError{recbufv1alpha1.ReasonStreamNotAllowed, fmt.Sprintf(
			"stream %s named by spec.persistence.stream belongs to Record %s (its metadata %s): a Record adopts only a stream no other Record owns; no buffer pod reads it",
			name, owner, streams.MetadataRecord), nil}
	}
	if why := adoptedStreamScope(info.Config, rec.EffectiveSubject()); why != "" {
		return nil, &streamError{recbufv1alpha1.ReasonStreamNotAllowed, fmt.Sprintf(
			"stream %s named by spec.persistence.stream %s, so its buffer pods could read values outside the Record's subject %s: no buffer pod reads it",
			name, why, rec.EffectiveSubject()), nil}
	}
	return ptr.To(info.State), nil
}

// adoptedStreamScope says why a stream of configuration c may hold values
// that are not on subject, "" when it may not.
func adoptedStreamScope(c jetstream.StreamConfig, subject string) string {
	switch {
	case c.Mirror != nil || len(c.Sources) > 0:
		return "mirrors or sources other streams"
	case len(c.Subjects) == 0:
		return "has no subjects"
	}
	for _, s := range c.Subjects {
		if !subjectWithin(s, subject) {
			return fmt.Sprintf("has subject %s, not within", s)
		}
	}
	return ""
}

// subjectWithin says whether every subject that sub matches is matched
// by pattern too (both NATS subjects, with wildcards '*' and '>').
func subjectWithin(sub, pattern string) bool {
	st, pt := strings.Split(sub, "."), strings.Split(pattern, ".")
	for i, p := range pt {
		switch {
		case p == ">":
			return i < len(st)
		case i >= len(st):
			return false
		case st[i] == ">":
			return false
		case p == "*":
		case p != st[i]:
			return false
		}
	}
	return len(st) == len(pt)
}

// adoptedStreamUnvetted says whether the phase found the adopted stream
// missing (StreamNotFound) or refused it (StreamNotAllowed): the
// Deployment is then left as it was, so that no new pod waits for a
// stream the manager has not checked. (Pods already running keep reading
// the stream they were given: NATS's permissions of their user are what
// holds them to their subjects for good; docs/persistence.md.)
func adoptedStreamUnvetted(o *streamObservation) bool {
	return adoptedStreamRefused(o) || streamReason(o) == recbufv1alpha1.ReasonStreamNotFound
}

// adoptedStreamRefused says whether the phase refused the adopted stream
// (StreamNotAllowed): its pods, running or not, must not read it.
func adoptedStreamRefused(o *streamObservation) bool {
	return streamReason(o) == recbufv1alpha1.ReasonStreamNotAllowed
}

// streamReason is the reason of the stream phase's error, "" for none.
func streamReason(o *streamObservation) string {
	var se *streamError
	if o == nil || !errors.As(o.err, &se) {
		return ""
	}
	return se.reason
}

// ensureStream creates the Record's stream, or updates the fields the
// manager owns when they drifted, and returns its state.
func (r *RecordReconciler) ensureStream(ctx context.Context, rec *recbufv1alpha1.Record, name string) (*jetstream.StreamState, error) {
	st, err := r.JetStream.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if err := r.checkStreamQuota(ctx, rec); err != nil {
			return nil, err
		}
		cfg := jetstream.StreamConfig{Name: name, Retention: jetstream.LimitsPolicy}
		mutateStreamConfig(&cfg, rec, r.Config)
		created, err := r.JetStream.CreateStream(ctx, cfg)
		if err != nil {
			return nil, classifyStreamErr(name, err)
		}
		return ptr.To(created.CachedInfo().State), nil
	}
	if err != nil {
		return nil, classifyStreamErr(name, err)
	}
	info := st.CachedInfo()
	if owner := info.Config.Metadata[streams.MetadataRecord]; owner != streams.RecordKey(rec.Namespace, rec.Name) {
		return nil, &streamError{recbufv1alpha1.ReasonStreamConflict, fmt.Sprintf(
			"a stream named %s exists that this Record does not manage (its metadata %s is %q): delete it, adopt it with spec.persistence.stream on another Record, or rename the Record",
			name, streams.MetadataRecord, owner), nil}
	}
	want := info.Config
	// The map is the server's: change a copy.
	want.Metadata = maps.Clone(info.Config.Metadata)
	mutateStreamConfig(&want, rec, r.Config)
	if ownedStreamFields(want) == ownedStreamFields(info.Config) {
		return &info.State, nil
	}
	if want.MaxBytes > info.Config.MaxBytes {
		// A stream that grows reserves more: a quota lowered since
		// leaves the stream as it is, not its Record Stalled.
		if err := r.checkStreamQuota(ctx, rec); err != nil {
			return nil, err
		}
	}
	updated, err := r.JetStream.UpdateStream(ctx, want)
	if err != nil {
		return nil, classifyStreamErr(name, err)
	}
	return ptr.To(updated.CachedInfo().State), nil
}

// mutateStreamConfig sets the fields the manager owns on c, which is
// either new or as JetStream returned it: the subject, storage, replicas
// and age from spec.persistence, the limits that give the stream the
// buffer's semantics, and the metadata that makes it ours. The limits
// (see docs/persistence.md):
//
//	SpmcRing      max_msgs capacity, max_bytes the ring's byte budget
//	              when spec.buffer.maxBytes is set, else the manager's
//	              --stream-max-bytes; discard old
//	SingleLatest  max_msgs 1, max_bytes one largest message; discard
//	              old: the newest value only
//	Mailbox       max_msgs 1, max_bytes one largest message; discard
//	              old: a new value overwrites the pending one; a take
//	              deletes it (the buffer process)
func mutateStreamConfig(c *jetstream.StreamConfig, rec *recbufv1alpha1.Record, cfg Config) {
	p := rec.Spec.Persistence
	c.Description = "recbuf Record " + streams.RecordKey(rec.Namespace, rec.Name)
	c.Subjects = []string{rec.EffectiveSubject()}
	c.Storage = jetstream.FileStorage
	if p.Storage == recbufv1alpha1.StreamStorageMemory {
		c.Storage = jetstream.MemoryStorage
	}
	c.Replicas = int(ptr.Deref(p.Replicas, recbufv1alpha1.DefaultStreamReplicas))
	c.MaxAge = 0
	if p.MaxAge != nil {
		c.MaxAge = p.MaxAge.Duration
	}
	c.Discard = jetstream.DiscardOld
	c.MaxMsgSize = ptr.Deref(rec.Spec.MaxMessageBytes, recbufv1alpha1.DefaultMaxMessageBytes)
	c.MaxMsgs, c.MaxBytes = streamLimits(rec, cfg)
	if c.Metadata == nil {
		c.Metadata = map[string]string{}
	}
	c.Metadata[streams.MetadataRecord] = streams.RecordKey(rec.Namespace, rec.Name)
	c.Metadata[streams.MetadataRecordUID] = string(rec.UID)
}

// streamLimits are max_msgs and max_bytes of the Record's stream. Both
// are always set: a standalone nats-server reserves max_bytes from its
// store for the stream, so one tenant's full stream discards its own
// oldest values instead of taking the space of another's
// (streams.DefaultRingMaxBytes).
func streamLimits(rec *recbufv1alpha1.Record, cfg Config) (maxMsgs, maxBytes int64) {
	b := rec.Spec.Buffer
	if b.Type != recbufv1alpha1.BufferTypeSpmcRing {
		return streams.SingleValueMaxMsgs, streams.SingleValueMaxBytes(ptr.Deref(rec.Spec.MaxMessageBytes, recbufv1alpha1.DefaultMaxMessageBytes))
	}
	maxMsgs, maxBytes = int64(ptr.Deref(b.Capacity, 1)), cfg.StreamMaxBytes
	if maxBytes <= 0 {
		maxBytes = streams.DefaultRingMaxBytes
	}
	if b.MaxBytes != nil {
		maxBytes = b.MaxBytes.Value()
		// The budget the buffer process is given, when the Record fits:
		// the stream then holds what the ring restored from it can.
		if plan, err := bufferpod.Memory(rec, cfg.BufferPod()); err == nil && plan.MaxBytes > 0 {
			maxBytes = plan.MaxBytes
		}
	}
	return maxMsgs, maxBytes
}

// streamFields are the fields of a stream configuration the manager owns,
// comparable: an update is sent only when they differ.
type streamFields struct {
	description, subjects string
	storage               jetstream.StorageType
	replicas              int
	maxAge                time.Duration
	discard               jetstream.DiscardPolicy
	maxMsgSize            int32
	maxMsgs, maxBytes     int64
	record, uid           string
}

func ownedStreamFields(c jetstream.StreamConfig) streamFields {
	return streamFields{
		description: c.Description, subjects: fmt.Sprint(c.Subjects),
		storage: c.Storage, replicas: c.Replicas, maxAge: c.MaxAge, discard: c.Discard,
		maxMsgSize: c.MaxMsgSize, maxMsgs: c.MaxMsgs, maxBytes: c.MaxBytes,
		record: c.Metadata[streams.MetadataRecord], uid: c.Metadata[streams.MetadataRecordUID],
	}
}

// setStreamFinalizer adds or removes StreamFinalizer, patching the
// Record's metadata (verb patch on records).
func (r *RecordReconciler) setStreamFinalizer(ctx context.Context, s *recordScope, want bool) error {
	rec := s.record
	if controllerutil.ContainsFinalizer(rec, StreamFinalizer) == want {
		return nil
	}
	patch := client.MergeFrom(rec.DeepCopy())
	if want {
		controllerutil.AddFinalizer(rec, StreamFinalizer)
	} else {
		controllerutil.RemoveFinalizer(rec, StreamFinalizer)
	}
	status := rec.Status.DeepCopy()
	if err := r.Client.Patch(ctx, rec, patch); err != nil {
		return fmt.Errorf("patching the finalizers of Record %s: %w", client.ObjectKeyFromObject(rec), err)
	}
	// The patch returns the stored status; the status phase compares what
	// it computes with what was read, and the metadata is the patch's.
	rec.Status = *status
	s.before.ObjectMeta = *rec.ObjectMeta.DeepCopy()
	return nil
}

// finalizeStream deletes the stream of a Record that carries
// StreamFinalizer, when the stream is the Record's own, and then removes
// the finalizer. A server without JetStream holds no stream to delete; an
// unreachable one is retried, holding the Record (docs/persistence.md says
// how to let go of it by hand).
func (r *RecordReconciler) finalizeStream(ctx context.Context, s *recordScope) error {
	rec := s.record
	name := streams.Name(rec.Namespace, rec.Name)
	if r.JetStream == nil {
		return errors.New("the manager has no JetStream connection to delete stream " + name)
	}
	jsCtx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	st, err := r.JetStream.Stream(jsCtx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil && classifyStreamErr(name, err).reason == recbufv1alpha1.ReasonJetStreamDisabled:
	case err != nil:
		return fmt.Errorf("reading stream %s to delete it: %w", name, err)
	case st.CachedInfo().Config.Metadata[streams.MetadataRecord] != streams.RecordKey(rec.Namespace, rec.Name):
		s.log.Info("Stream not deleted: another Record's or nobody's", "record", klog.KObj(rec), "stream", name)
	default:
		if err := r.JetStream.DeleteStream(jsCtx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("deleting stream %s: %w", name, err)
		}
		s.log.Info("Stream deleted", "record", klog.KObj(rec), "stream", name)
	}
	return r.setStreamFinalizer(ctx, s, false)
}

// streamStalled: the Record's stream cannot be had without a change by
// someone (the StreamReady reasons but NATSUnavailable and
// ReconcileError, which pass by themselves).
func streamStalled(_ *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	var se *streamError
	if in.stream == nil || !errors.As(in.stream.err, &se) || transientStreamReason(se.reason) {
		return "", "", false
	}
	return se.reason, se.message, true
}

// transientStreamReason: the manager retries, and expects to succeed.
func transientStreamReason(reason string) bool {
	return reason == recbufv1alpha1.ReasonNATSUnavailable || reason == recbufv1alpha1.ReasonReconcileError
}

// setStreamReadyCondition: True when the stream is there, False with why
// it cannot be had, Unknown while JetStream cannot be reached; absent
// without spec.persistence.
func setStreamReadyCondition(rec *recbufv1alpha1.Record, in statusInputs) {
	if in.stream == nil {
		meta.RemoveStatusCondition(&rec.Status.Conditions, recbufv1alpha1.ConditionStreamReady)
		return
	}
	var se *streamError
	switch {
	case errors.As(in.stream.err, &se) && transientStreamReason(se.reason):
		setCondition(rec, in.now, recbufv1alpha1.ConditionStreamReady, metav1.ConditionUnknown, se.reason, se.message)
	case errors.As(in.stream.err, &se):
		setCondition(rec, in.now, recbufv1alpha1.ConditionStreamReady, metav1.ConditionFalse, se.reason, se.message)
	default:
		what := "configured as the Record says"
		if rec.AdoptsStream() {
			what = "adopted: the manager does not configure or delete it"
		}
		setCondition(rec, in.now, recbufv1alpha1.ConditionStreamReady, metav1.ConditionTrue, recbufv1alpha1.ReasonStreamReady,
			fmt.Sprintf("stream %s exists, %s", in.stream.name, what))
	}
}

// setStreamStatus copies the stream's state into status.stream, at most
// once per report interval (in.streamSampled is when it last did): the
// state moves with every value, and the status is not written per value.
// While the stream cannot be read the last state stays (with the name of
// the stream now meant). Without spec.persistence there is none.
func setStreamStatus(rec *recbufv1alpha1.Record, in statusInputs) {
	if in.stream == nil {
		rec.Status.Stream = nil
		return
	}
	st := rec.Status.Stream
	if st == nil || st.Name != in.stream.name {
		st = &recbufv1alpha1.StreamStatus{Name: in.stream.name}
	} else if in.now.Sub(in.streamSampled) < reportInterval(in.reportInterval) {
		// Written less than an interval ago: the next sample is due then.
		return
	}
	if s := in.stream.state; s != nil {
		st = &recbufv1alpha1.StreamStatus{
			Name:          in.stream.name,
			Messages:      sat(s.Msgs),
			Bytes:         sat(s.Bytes),
			FirstSequence: sat(s.FirstSeq),
			LastSequence:  sat(s.LastSeq),
		}
	}
	rec.Status.Stream = st
}

// streamSamples remembers, per Record, when its status.stream was last
// written, to bound how often (setStreamStatus). Its size is bounded by
// the live Records (forget). The zero value is ready to use.
type streamSamples struct {
	mu sync.Mutex
	m  map[types.NamespacedName]time.Time
}

func (s *streamSamples) get(key types.NamespacedName) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

func (s *streamSamples) set(key types.NamespacedName, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.NamespacedName]time.Time{}
	}
	s.m[key] = t
}

func (s *streamSamples) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}
