package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/streams"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
)

// persistent is spec with spec.persistence p.
func persistent(spec recbufv1alpha1.RecordSpec, p recbufv1alpha1.PersistenceSpec) recbufv1alpha1.RecordSpec {
	spec.Persistence = &p
	return spec
}

var (
	mailboxSpec = recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeMailbox}}
	latestSpec  = recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest}}
)

func TestBadPersistenceIsRefusedNamingTheField(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name string
		spec recbufv1alpha1.RecordSpec
		want string
	}{
		{"two stream replicas", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Replicas: ptr.To[int32](2)}),
			"spec.persistence.replicas: Unsupported value: 2"},
		{"an unknown storage", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Storage: "Disk"}),
			`spec.persistence.storage: Unsupported value: "Disk"`},
		{"an unknown deletion policy", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{DeletionPolicy: "Orphan"}),
			`spec.persistence.deletionPolicy: Unsupported value: "Orphan"`},
		{"a max age below a second", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{MaxAge: &metav1.Duration{Duration: time.Millisecond}}),
			"spec.persistence.maxAge must be at least 1s"},
		{"an adopted stream with replicas", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Stream: "orders", Replicas: ptr.To[int32](3)}),
			"spec.persistence.stream adopts a stream the user manages: spec.persistence.replicas, storage, maxAge and deletionPolicy are forbidden"},
		{"an adopted stream with a storage", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Stream: "orders", Storage: recbufv1alpha1.StreamStorageFile}),
			"spec.persistence.stream adopts a stream the user manages"},
		{"an adopted stream with a deletion policy", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Stream: "orders", DeletionPolicy: recbufv1alpha1.DeletionPolicyDelete}),
			"spec.persistence.stream adopts a stream the user manages"},
		{"an adopted stream whose name has a dot", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Stream: "orders.eu"}),
			"spec.persistence.stream must be a JetStream stream name"},
		{"persistence on a NATS server of the Record's own", func() recbufv1alpha1.RecordSpec {
			s := persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{})
			s.Source = &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{URL: "tls://nats.example:4222"}}
			return s
		}(), "spec.persistence forbids spec.source.nats.url and spec.source.nats.credentialsSecretRef"},
		{"persistence with NATS credentials of the Record's own", func() recbufv1alpha1.RecordSpec {
			s := persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{})
			s.Source = &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{CredentialsSecretRef: &recbufv1alpha1.SecretReference{Name: "creds"}}}
			return s
		}(), "spec.persistence forbids spec.source.nats.url and spec.source.nats.credentialsSecretRef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := k8s.Create(context.Background(), newRecord(ns, "durable", tt.spec))
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got error %v, want Invalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got message %q, want it to contain %q", err.Error(), tt.want)
			}
		})
	}
}

func TestGoodPersistenceIsAccepted(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name string
		spec recbufv1alpha1.RecordSpec
	}{
		{"a persistent ring with every field", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{
			Replicas: ptr.To[int32](3), Storage: recbufv1alpha1.StreamStorageMemory,
			MaxAge: &metav1.Duration{Duration: time.Hour}, DeletionPolicy: recbufv1alpha1.DeletionPolicyRetain})},
		{"a persistent Mailbox of three replicas", func() recbufv1alpha1.RecordSpec {
			s := persistent(mailboxSpec, recbufv1alpha1.PersistenceSpec{})
			s.Replicas = ptr.To[int32](3)
			return s
		}()},
		{"an adopted stream alone", persistent(latestSpec, recbufv1alpha1.PersistenceSpec{Stream: "orders-EU_1"})},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := k8s.Create(context.Background(), newRecord(ns, fmt.Sprintf("good-%d", i), tt.spec)); err != nil {
				t.Fatalf("got error %v, want the Record accepted", err)
			}
		})
	}
}

func TestTheStreamStorageIsImmutable(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "durable", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{}))
	create(t, g, rec)
	// The manager adds its finalizer meanwhile: an update of an older
	// version is a conflict, not the answer asked for.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		g.Expect(get(rec)).To(Succeed())
		rec.Spec.Persistence.Storage = recbufv1alpha1.StreamStorageMemory
		return k8s.Update(context.Background(), rec)
	})
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v, want Invalid", err)
	g.Expect(err.Error()).To(ContainSubstring("spec.persistence.storage is immutable"))

	update(g, rec, func(rec *recbufv1alpha1.Record) { rec.Spec.Persistence.Storage = recbufv1alpha1.StreamStorageFile }) // File spelled out is the default it had
}

func TestStreamReadyAndStalledFollowTheStreamPhase(t *testing.T) {
	durable := newRecord("ns", "durable", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{}))
	adopted := newRecord("ns", "durable", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Stream: "orders"}))
	seen := func(err error) *streamObservation {
		return &streamObservation{name: "recbuf_ns_durable", state: &jetstream.StreamState{Msgs: 3}, err: err}
	}
	failed := func(reason string) *streamObservation {
		return &streamObservation{name: "recbuf_ns_durable", err: &streamError{reason: reason, message: reason + " message"}}
	}
	tests := []struct {
		name        string
		rec         *recbufv1alpha1.Record
		stream      *streamObservation
		want        wantCond
		wantStalled string
	}{
		{"a stream that is there is ready", durable, seen(nil),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonStreamReady, "stream recbuf_ns_durable exists, configured as the Record says"}, recbufv1alpha1.ReasonProgressing},
		{"an adopted stream that is there is ready, and said to be the user's", adopted, &streamObservation{name: "orders"},
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonStreamReady, "stream orders exists, adopted: the manager does not configure or delete it"}, recbufv1alpha1.ReasonProgressing},
		{"a server without JetStream stalls the Record", durable, failed(recbufv1alpha1.ReasonJetStreamDisabled),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonJetStreamDisabled, "JetStreamDisabled message"}, recbufv1alpha1.ReasonJetStreamDisabled},
		{"a stream that is not ours stalls the Record", durable, failed(recbufv1alpha1.ReasonStreamConflict),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonStreamConflict, ""}, recbufv1alpha1.ReasonStreamConflict},
		{"a missing adopted stream stalls the Record", adopted, failed(recbufv1alpha1.ReasonStreamNotFound),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonStreamNotFound, ""}, recbufv1alpha1.ReasonStreamNotFound},
		{"account limits stall the Record", durable, failed(recbufv1alpha1.ReasonAccountLimits),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonAccountLimits, ""}, recbufv1alpha1.ReasonAccountLimits},
		{"an unreachable JetStream is unknown and does not stall the Record", durable, failed(recbufv1alpha1.ReasonNATSUnavailable),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonNATSUnavailable, ""}, recbufv1alpha1.ReasonProgressing},
		{"a finalizer that could not be written is unknown and does not stall the Record", durable, failed(recbufv1alpha1.ReasonReconcileError),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonReconcileError, ""}, recbufv1alpha1.ReasonProgressing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec.DeepCopy()
			computeStatus(rec, inputs(func(in *statusInputs) { in.stream = tt.stream }))
			checkCondition(t, rec, recbufv1alpha1.ConditionStreamReady, tt.want)
			if got := condition(t, rec, recbufv1alpha1.ConditionStalled).Reason; got != tt.wantStalled {
				t.Errorf("got Stalled reason %s, want %s", got, tt.wantStalled)
			}
			if tt.want.status == metav1.ConditionFalse {
				if got := condition(t, rec, recbufv1alpha1.ConditionReady).Reason; got != tt.want.reason {
					t.Errorf("got Ready reason %s, want %s", got, tt.want.reason)
				}
			}
		})
	}
}

func TestARecordWithoutPersistenceHasNoStreamCondition(t *testing.T) {
	rec := newRecord("ns", "ring", ringSpec(8))
	rec.Status.Stream = &recbufv1alpha1.StreamStatus{Name: "recbuf_ns_ring", Messages: 3}
	meta.SetStatusCondition(&rec.Status.Conditions, metav1.Condition{Type: recbufv1alpha1.ConditionStreamReady, Status: metav1.ConditionTrue, Reason: "StreamReady"})
	computeStatus(rec, inputs())
	if c := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStreamReady); c != nil {
		t.Errorf("got a StreamReady condition %+v, want none", *c)
	}
	if rec.Status.Stream != nil {
		t.Errorf("got status.stream %+v, want none", *rec.Status.Stream)
	}
}

func TestStreamErrorsAreClassifiedByWhatTheyMean(t *testing.T) {
	apiErr := func(code jetstream.ErrorCode) error {
		return &jetstream.APIError{Code: 400, ErrorCode: code, Description: "refused"}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"JetStream not enabled on the server", jetstream.ErrJetStreamNotEnabled, recbufv1alpha1.ReasonJetStreamDisabled},
		{"JetStream not enabled for the account", jetstream.ErrJetStreamNotEnabledForAccount, recbufv1alpha1.ReasonJetStreamDisabled},
		{"insufficient storage", apiErr(10047), recbufv1alpha1.ReasonAccountLimits},
		{"the most streams reached", apiErr(10027), recbufv1alpha1.ReasonAccountLimits},
		{"subjects overlapping another stream's", apiErr(10065), recbufv1alpha1.ReasonStreamConflict},
		{"replicas on a server that is not clustered", apiErr(10074), recbufv1alpha1.ReasonStreamRefused},
		{"a timeout", context.DeadlineExceeded, recbufv1alpha1.ReasonNATSUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classifyStreamErr("s", fmt.Errorf("wrapped: %w", tt.err))
			if got.reason != tt.want {
				t.Errorf("got reason %s (%s), want %s", got.reason, got.message, tt.want)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("the classified error does not wrap %v", tt.err)
			}
		})
	}
}

// startStreamManager starts a manager of the test's own whose default NATS
// server, and JetStream, is srv's; it returns a JetStream client of srv
// for the test to look with.
func startStreamManager(t *testing.T, g Gomega, srv *natstest.Server) jetstream.JetStream {
	t.Helper()
	return startStreamManagerWith(t, g, srv, testConfig)
}

// startStreamManagerWith is startStreamManager with cfg for the manager's
// configuration (its NATS URL and allowed servers are srv's).
func startStreamManagerWith(t *testing.T, g Gomega, srv *natstest.Server, cfg Config) jetstream.JetStream {
	t.Helper()
	cfg.NATSURL = srv.URL()
	cfg.AllowedNATSServers = []string{srv.URL()}
	managerJS, err := jetstream.New(srv.Connect())
	g.Expect(err).NotTo(HaveOccurred())
	startManagerWith(t, g, cfg, func(r *RecordReconciler) { r.JetStream = managerJS })
	js, err := jetstream.New(srv.Connect())
	g.Expect(err).NotTo(HaveOccurred())
	return js
}

// createOwned creates rec for the test's own manager, and deletes it when
// the test ends, while that manager still runs (cleanups run last first),
// so that no finalizer of it is left for the next test's manager.
func createOwned(t *testing.T, g Gomega, rec *recbufv1alpha1.Record) {
	t.Helper()
	if rec.Labels == nil {
		rec.Labels = map[string]string{}
	}
	rec.Labels[labelOwnManager] = "true"
	create(t, g, rec)
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), rec)
		g.Eventually(func() bool { return apierrors.IsNotFound(get(rec)) }, timeout, poll).Should(BeTrue(), "Record %s deleted", rec.Name)
	})
}

// streamInfo reads the stream name, failing the Gomega g on error.
func streamInfo(g Gomega, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	st, err := js.Stream(context.Background(), name)
	g.Expect(err).NotTo(HaveOccurred(), "stream %s", name)
	return st.CachedInfo()
}

// streamCondition waits for rec's StreamReady condition to have reason, and
// Stalled to have stalled.
func waitStreamReason(g Gomega, rec *recbufv1alpha1.Record, reason, stalled string) {
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		c := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStreamReady)
		g.Expect(c).NotTo(BeNil(), "a StreamReady condition")
		g.Expect(c.Reason).To(Equal(reason), "StreamReady: %s", c.Message)
		st := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStalled)
		g.Expect(st).NotTo(BeNil())
		g.Expect(st.Reason).To(Equal(stalled))
	}, timeout, poll).Should(Succeed())
}

func TestThePersistentRecordsStreamFollowsItsBuffer(t *testing.T) {
	g := NewWithT(t)
	js := startStreamManager(t, g, natstest.Start(t, natstest.WithJetStream(t)))
	ns := newNamespace(t)
	ring := withMaxBytes(ringSpec(8), "4Mi")
	tests := []struct {
		name                string
		spec                recbufv1alpha1.RecordSpec
		maxMsgs, maxBytes   int64
		storage             jetstream.StorageType
		maxAge              time.Duration
		wantRollingMailbox  bool
		wantMaxMessageBytes int32
	}{
		{name: "a ring holds its capacity and byte budget", spec: persistent(ring, recbufv1alpha1.PersistenceSpec{}),
			maxMsgs: 8, maxBytes: 4 << 20, storage: jetstream.FileStorage, wantMaxMessageBytes: 1 << 20},
		{name: "a SingleLatest holds one value, in memory and for a minute when asked", spec: func() recbufv1alpha1.RecordSpec {
			s := persistent(latestSpec, recbufv1alpha1.PersistenceSpec{Storage: recbufv1alpha1.StreamStorageMemory, MaxAge: &metav1.Duration{Duration: time.Minute}})
			s.MaxMessageBytes = ptr.To[int32](4096)
			return s
		}(), maxMsgs: 1, maxBytes: 4096 + 4130, storage: jetstream.MemoryStorage, maxAge: time.Minute, wantMaxMessageBytes: 4096},
		{name: "a Mailbox of two replicas holds one value and rolls out without a gap", spec: func() recbufv1alpha1.RecordSpec {
			s := persistent(mailboxSpec, recbufv1alpha1.PersistenceSpec{})
			s.Replicas = ptr.To[int32](2)
			return s
		}(), maxMsgs: 1, maxBytes: 1<<20 + 4130, storage: jetstream.FileStorage, wantRollingMailbox: true, wantMaxMessageBytes: 1 << 20},
		{name: "a ring without a byte budget holds at most the manager's default stream bytes", spec: persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{}),
			maxMsgs: 8, maxBytes: streams.DefaultRingMaxBytes, storage: jetstream.FileStorage, wantMaxMessageBytes: 1 << 20},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			rec := newRecord(ns, fmt.Sprintf("durable-%d", i), tt.spec)
			createOwned(t, g, rec)
			name := streams.Name(ns, rec.Name)
			waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
			c := streamInfo(g, js, name).Config
			g.Expect(c.Subjects).To(Equal([]string{rec.DefaultSubject()}))
			g.Expect(c.MaxMsgs).To(Equal(tt.maxMsgs), "max_msgs")
			g.Expect(c.MaxBytes).To(Equal(tt.maxBytes), "max_bytes")
			g.Expect(c.MaxMsgSize).To(Equal(tt.wantMaxMessageBytes), "max_msg_size")
			g.Expect(c.Discard).To(Equal(jetstream.DiscardOld))
			g.Expect(c.Storage).To(Equal(tt.storage))
			g.Expect(c.Replicas).To(Equal(1))
			g.Expect(c.MaxAge).To(Equal(tt.maxAge))
			g.Expect(c.Metadata).To(HaveKeyWithValue(streams.MetadataRecord, ns+"/"+rec.Name))
			g.Expect(c.Metadata).To(HaveKeyWithValue(streams.MetadataRecordUID, string(rec.UID)))
			g.Expect(rec.Status.Stream).To(Equal(&recbufv1alpha1.StreamStatus{Name: name}))

			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rec.ChildName()}}
			g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
			g.Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--jetstream-stream=" + name))
			if tt.wantRollingMailbox {
				g.Expect(d.Spec.Strategy.Type).To(Equal(appsv1.RollingUpdateDeploymentStrategyType))
			}
		})
	}
}

func TestACapacityChangeUpdatesTheStreamInPlace(t *testing.T) {
	g := NewWithT(t)
	js := startStreamManager(t, g, natstest.Start(t, natstest.WithJetStream(t)))
	ns := newNamespace(t)
	rec := newRecord(ns, "durable", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{}))
	createOwned(t, g, rec)
	name := streams.Name(ns, rec.Name)
	waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
	for i := range 5 {
		_, err := js.Publish(context.Background(), rec.DefaultSubject(), fmt.Appendf(nil, "v%d", i))
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.Stream).NotTo(BeNil())
		g.Expect(*rec.Status.Stream).To(MatchFields(5, 1, 5))
	}, timeout, poll).Should(Succeed(), "status.stream shows the five values")

	update(g, rec, func(r *recbufv1alpha1.Record) { r.Spec.Buffer.Capacity = ptr.To[int32](16) })
	g.Eventually(func(g Gomega) {
		info := streamInfo(g, js, name)
		g.Expect(info.Config.MaxMsgs).To(Equal(int64(16)))
		g.Expect(info.State.Msgs).To(Equal(uint64(5)), "the values are kept")
	}, timeout, poll).Should(Succeed())

	update(g, rec, func(r *recbufv1alpha1.Record) { r.Spec.Buffer.Capacity = ptr.To[int32](3) })
	g.Eventually(func(g Gomega) {
		info := streamInfo(g, js, name)
		g.Expect(info.Config.MaxMsgs).To(Equal(int64(3)))
		g.Expect(info.State.Msgs).To(Equal(uint64(3)), "the newest three are kept, as a ring of three would")
		g.Expect(info.State.FirstSeq).To(Equal(uint64(3)))
	}, timeout, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(*rec.Status.Stream).To(MatchFields(3, 3, 5))
	}, timeout, poll).Should(Succeed())
}

// MatchFields matches a StreamStatus's messages, first and last sequence.
func MatchFields(messages, first, last int64) OmegaMatcher {
	return WithTransform(func(s recbufv1alpha1.StreamStatus) [3]int64 {
		return [3]int64{s.Messages, s.FirstSequence, s.LastSequence}
	}, Equal([3]int64{messages, first, last}))
}

func TestTheStreamGoesWithTheRecordUnlessRetained(t *testing.T) {
	g := NewWithT(t)
	js := startStreamManager(t, g, natstest.Start(t, natstest.WithJetStream(t)))
	ns := newNamespace(t)
	tests := []struct {
		name          string
		policy        recbufv1alpha1.DeletionPolicy
		end           func(g Gomega, rec *recbufv1alpha1.Record)
		wantFinalizer bool
		wantStream    bool
	}{
		{"deleting a Record deletes its stream", "", func(g Gomega, rec *recbufv1alpha1.Record) {
			g.Expect(k8s.Delete(context.Background(), rec)).To(Succeed())
		}, true, false},
		{"deleting a Record whose stream is retained leaves its stream", recbufv1alpha1.DeletionPolicyRetain, func(g Gomega, rec *recbufv1alpha1.Record) {
			g.Expect(k8s.Delete(context.Background(), rec)).To(Succeed())
		}, false, true},
		{"removing the persistence of a Record deletes its stream", recbufv1alpha1.DeletionPolicyDelete, func(g Gomega, rec *recbufv1alpha1.Record) {
			update(g, rec, func(r *recbufv1alpha1.Record) { r.Spec.Persistence = nil })
		}, true, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			rec := newRecord(ns, fmt.Sprintf("durable-%d", i), persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{DeletionPolicy: tt.policy}))
			createOwned(t, g, rec)
			name := streams.Name(ns, rec.Name)
			waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
			g.Expect(controllerutil.ContainsFinalizer(rec, StreamFinalizer)).To(Equal(tt.wantFinalizer), "finalizers %v", rec.Finalizers)
			_, err := js.Publish(context.Background(), rec.DefaultSubject(), []byte("kept?"))
			g.Expect(err).NotTo(HaveOccurred())

			tt.end(g, rec)
			g.Eventually(func(g Gomega) {
				err := get(rec)
				if apierrors.IsNotFound(err) {
					return
				}
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(rec.Finalizers).NotTo(ContainElement(StreamFinalizer))
			}, timeout, poll).Should(Succeed(), "the finalizer is gone")
			_, err = js.Stream(context.Background(), name)
			if tt.wantStream {
				g.Expect(err).NotTo(HaveOccurred(), "the stream is retained")
				g.Expect(streamInfo(g, js, name).State.Msgs).To(Equal(uint64(1)), "with its value")
			} else {
				g.Expect(err).To(MatchError(jetstream.ErrStreamNotFound), "the stream is deleted")
			}
		})
	}
}

func TestAStreamThatIsNotOursIsLeftAloneAndStallsTheRecord(t *testing.T) {
	g := NewWithT(t)
	js := startStreamManager(t, g, natstest.Start(t, natstest.WithJetStream(t)))
	ns := newNamespace(t)
	name := streams.Name(ns, "durable")
	foreign := jetstream.StreamConfig{Name: name, Subjects: []string{"elsewhere"}, MaxMsgs: 100}
	_, err := js.CreateStream(context.Background(), foreign)
	g.Expect(err).NotTo(HaveOccurred())

	rec := newRecord(ns, "durable", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{}))
	createOwned(t, g, rec)
	waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamConflict, recbufv1alpha1.ReasonStreamConflict)
	g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStreamReady).Message).To(ContainSubstring("a stream named " + name + " exists that this Record does not manage"))
	g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionReady).Reason).To(Equal(recbufv1alpha1.ReasonStreamConflict))

	g.Expect(k8s.Delete(context.Background(), rec)).To(Succeed())
	g.Eventually(func() bool { return apierrors.IsNotFound(get(rec)) }, timeout, poll).Should(BeTrue(), "the Record goes")
	c := streamInfo(g, js, name).Config
	g.Expect(c.Subjects).To(Equal([]string{"elsewhere"}), "the foreign stream is neither changed nor deleted")
	g.Expect(c.MaxMsgs).To(Equal(int64(100)))
}

func TestAServerWithoutJetStreamStallsAPersistentRecord(t *testing.T) {
	g := NewWithT(t)
	startStreamManager(t, g, natstest.Start(t))
	ns := newNamespace(t)
	rec := newRecord(ns, "durable", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{}))
	createOwned(t, g, rec)
	waitStreamReason(g, rec, recbufv1alpha1.ReasonJetStreamDisabled, recbufv1alpha1.ReasonJetStreamDisabled)
	g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionReady).Reason).To(Equal(recbufv1alpha1.ReasonJetStreamDisabled))
	// Deleting it is not held up by a stream that cannot exist (createOwned's
	// cleanup waits for the Record to go).
}

func TestAnAdoptedStreamIsReadOnceItExistsAndNeverDeleted(t *testing.T) {
	g := NewWithT(t)
	js := startStreamManager(t, g, natstest.Start(t, natstest.WithJetStream(t)))
	ns := newNamespace(t)
	spec := persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Stream: "ORDERS"})
	spec.Source = &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{Subject: "orders.>"}}
	rec := newRecord(ns, "orders", spec)
	createOwned(t, g, rec)
	waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamNotFound, recbufv1alpha1.ReasonStreamNotFound)
	g.Expect(rec.Finalizers).NotTo(ContainElement(StreamFinalizer), "an adopted stream is not deleted with the Record")
	g.Expect(apierrors.IsNotFound(get(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rec.ChildName()}}))).To(BeTrue(),
		"no buffer pod waits for a stream not yet checked")

	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.eu.>", "orders.us"}, MaxMsgs: 1000})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = js.Publish(context.Background(), "orders.us", []byte("one"))
	g.Expect(err).NotTo(HaveOccurred())
	waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.Stream).NotTo(BeNil())
		g.Expect(rec.Status.Stream.Name).To(Equal("ORDERS"))
		g.Expect(*rec.Status.Stream).To(MatchFields(1, 1, 1))
	}, timeout, poll).Should(Succeed())
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rec.ChildName()}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
	g.Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--jetstream-stream=ORDERS"))

	g.Expect(k8s.Delete(context.Background(), rec)).To(Succeed())
	g.Eventually(func() bool { return apierrors.IsNotFound(get(rec)) }, timeout, poll).Should(BeTrue())
	c := streamInfo(g, js, "ORDERS").Config
	g.Expect(c.MaxMsgs).To(Equal(int64(1000)), "the adopted stream is as the user made it")
	g.Expect(c.Metadata).NotTo(HaveKey(streams.MetadataRecord))
}

func TestAnAdoptedStreamBeyondTheRecordsSubjectGetsNoPods(t *testing.T) {
	g := NewWithT(t)
	js := startStreamManager(t, g, natstest.Start(t, natstest.WithJetStream(t)))
	ns := newNamespace(t)
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "EVERYTHING", Subjects: []string{"records.>"}})
	g.Expect(err).NotTo(HaveOccurred())
	rec := newRecord(ns, "sneaky", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Stream: "EVERYTHING"}))
	createOwned(t, g, rec)
	waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamNotAllowed, recbufv1alpha1.ReasonStreamNotAllowed)
	g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStreamReady).Message).To(
		ContainSubstring("has subject records.>, not within, so its buffer pods could read values outside the Record's subject records." + ns + ".sneaky"))
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rec.ChildName()}}
	g.Consistently(func() bool { return apierrors.IsNotFound(get(d)) }, time.Second, poll).Should(BeTrue(), "no buffer pod reads the stream")
}

func TestAnAdoptedStreamMustHoldOnlyTheRecordsSubject(t *testing.T) {
	tests := []struct {
		name    string
		config  jetstream.StreamConfig
		subject string
		want    string
	}{
		{"the same subject", jetstream.StreamConfig{Subjects: []string{"a.b"}}, "a.b", ""},
		{"literal subjects under the Record's full wildcard", jetstream.StreamConfig{Subjects: []string{"a.b", "a.c.d"}}, "a.>", ""},
		{"a token wildcard under the Record's token wildcard", jetstream.StreamConfig{Subjects: []string{"a.*.t"}}, "a.*.t", ""},
		{"a full wildcard under the Record's full wildcard", jetstream.StreamConfig{Subjects: []string{"a.b.>"}}, "a.>", ""},
		{"a subject beside the Record's", jetstream.StreamConfig{Subjects: []string{"a.b", "x.y"}}, "a.b", "has subject x.y, not within"},
		{"a full wildcard over the Record's token wildcard", jetstream.StreamConfig{Subjects: []string{"a.>"}}, "a.*", "has subject a.>, not within"},
		{"a token wildcard over the Record's literal", jetstream.StreamConfig{Subjects: []string{"a.*"}}, "a.b", "has subject a.*, not within"},
		{"a parent of the Record's full wildcard", jetstream.StreamConfig{Subjects: []string{"a"}}, "a.>", "has subject a, not within"},
		{"a longer subject than the Record's literal", jetstream.StreamConfig{Subjects: []string{"a.b.c"}}, "a.b", "has subject a.b.c, not within"},
		{"a mirror", jetstream.StreamConfig{Mirror: &jetstream.StreamSource{Name: "OTHER"}}, "a.>", "mirrors or sources other streams"},
		{"sources", jetstream.StreamConfig{Subjects: []string{"a.b"}, Sources: []*jetstream.StreamSource{{Name: "OTHER"}}}, "a.>", "mirrors or sources other streams"},
		{"no subjects", jetstream.StreamConfig{}, "a.>", "has no subjects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := adoptedStreamScope(tt.config, tt.subject); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTheStreamStateIsWrittenAtMostOncePerReportInterval(t *testing.T) {
	const interval = 5 * time.Second
	old := recbufv1alpha1.StreamStatus{Name: "recbuf_ns_durable", Messages: 3, FirstSequence: 1, LastSequence: 3}
	moved := &streamObservation{name: "recbuf_ns_durable", state: &jetstream.StreamState{Msgs: 4, FirstSeq: 1, LastSeq: 4}}
	tests := []struct {
		name    string
		before  *recbufv1alpha1.StreamStatus
		stream  *streamObservation
		sampled time.Duration // before now
		want    *recbufv1alpha1.StreamStatus
	}{
		{"a state written a second ago stays", &old, moved, time.Second, &old},
		{"a state written an interval ago is replaced", &old, moved, interval,
			&recbufv1alpha1.StreamStatus{Name: "recbuf_ns_durable", Messages: 4, FirstSequence: 1, LastSequence: 4}},
		{"a first state is written at once", nil, moved, time.Second,
			&recbufv1alpha1.StreamStatus{Name: "recbuf_ns_durable", Messages: 4, FirstSequence: 1, LastSequence: 4}},
		{"another stream's state is replaced at once", &recbufv1alpha1.StreamStatus{Name: "ORDERS", Messages: 9}, moved, time.Second,
			&recbufv1alpha1.StreamStatus{Name: "recbuf_ns_durable", Messages: 4, FirstSequence: 1, LastSequence: 4}},
		{"a stream that cannot be read keeps its last state", &old, &streamObservation{name: "recbuf_ns_durable", err: errors.New("down")}, interval, &old},
		{"no persistence, no state", &old, nil, interval, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecord("ns", "durable", ringSpec(8))
			if tt.before != nil {
				rec.Status.Stream = ptr.To(*tt.before)
			}
			setStreamStatus(rec, inputs(func(in *statusInputs) {
				in.stream, in.reportInterval, in.streamSampled = tt.stream, interval, t0.Add(-tt.sampled)
			}))
			if got := rec.Status.Stream; !equalStream(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func equalStream(a, b *recbufv1alpha1.StreamStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func TestJetStreamRefusalsSayWhy(t *testing.T) {
	g := NewWithT(t)
	// A server with 1 MiB of file store, not clustered.
	srv := natstest.Start(t, natstest.WithJetStream(t), natstest.WithOptions(func(o *server.Options) { o.JetStreamMaxStore = 1 << 20 }))
	cfg := testConfig
	cfg.StreamMaxBytes = 512 << 10 // a ring without a byte budget fits
	startStreamManagerWith(t, g, srv, cfg)
	ns := newNamespace(t)
	tests := []struct {
		name   string
		spec   recbufv1alpha1.RecordSpec
		reason string
	}{
		{"a byte budget beyond the server's storage is the account's limits", persistent(withMaxBytes(ringSpec(8), "64Mi"), recbufv1alpha1.PersistenceSpec{}),
			recbufv1alpha1.ReasonAccountLimits},
		{"three replicas on a server that is not clustered is refused", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Replicas: ptr.To[int32](3)}),
			recbufv1alpha1.ReasonStreamRefused},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			rec := newRecord(ns, fmt.Sprintf("durable-%d", i), tt.spec)
			createOwned(t, g, rec)
			waitStreamReason(g, rec, tt.reason, tt.reason)
			t.Logf("StreamReady: %s", meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStreamReady).Message)
		})
	}
}

func TestARetainedStreamIsTakenBackByARecordOfTheSameName(t *testing.T) {
	g := NewWithT(t)
	js := startStreamManager(t, g, natstest.Start(t, natstest.WithJetStream(t)))
	ns := newNamespace(t)
	spec := persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{DeletionPolicy: recbufv1alpha1.DeletionPolicyRetain})
	first := newRecord(ns, "durable", spec)
	createOwned(t, g, first)
	waitStreamReason(g, first, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
	_, err := js.Publish(context.Background(), first.DefaultSubject(), []byte("kept"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k8s.Delete(context.Background(), first)).To(Succeed())
	g.Eventually(func() bool { return apierrors.IsNotFound(get(first)) }, timeout, poll).Should(BeTrue())

	second := newRecord(ns, "durable", spec)
	createOwned(t, g, second)
	g.Expect(second.UID).NotTo(Equal(first.UID))
	waitStreamReason(g, second, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
	g.Eventually(func(g Gomega) {
		g.Expect(get(second)).To(Succeed())
		g.Expect(second.Status.Stream).NotTo(BeNil())
		g.Expect(*second.Status.Stream).To(MatchFields(1, 1, 1), "the value kept")
	}, timeout, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(streamInfo(g, js, streams.Name(ns, "durable")).Config.Metadata).To(HaveKeyWithValue(streams.MetadataRecordUID, string(second.UID)))
	}, timeout, poll).Should(Succeed())
}

func TestAnAdoptedStreamMarkedAsAnotherRecordsIsRefused(t *testing.T) {
	g := NewWithT(t)
	js := startStreamManager(t, g, natstest.Start(t, natstest.WithJetStream(t)))
	ns := newNamespace(t)
	// A stream the manager made for another Record, whose subject is the
	// adopting Record's: its values are the other Record's.
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "THEIRS", Subjects: []string{"records." + ns + ".mine"},
		Metadata: map[string]string{streams.MetadataRecord: streams.RecordKey(ns, "theirs")},
	})
	g.Expect(err).NotTo(HaveOccurred())
	rec := newRecord(ns, "mine", persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Stream: "THEIRS"}))
	createOwned(t, g, rec)
	waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamNotAllowed, recbufv1alpha1.ReasonStreamNotAllowed)
	g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStreamReady).Message).To(
		ContainSubstring("stream THEIRS named by spec.persistence.stream belongs to Record " + ns + "/theirs"))
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rec.ChildName()}}
	g.Consistently(func() bool { return apierrors.IsNotFound(get(d)) }, time.Second, poll).Should(BeTrue(), "no buffer pod reads the stream")
}

func TestTheBufferPodsStopWhenALaterCheckRefusesTheAdoptedStream(t *testing.T) {
	g := NewWithT(t)
	js := startStreamManager(t, g, natstest.Start(t, natstest.WithJetStream(t)))
	ns := newNamespace(t)
	cfg := jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.us"}}
	_, err := js.CreateStream(context.Background(), cfg)
	g.Expect(err).NotTo(HaveOccurred())
	spec := persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{Stream: "ORDERS"})
	spec.Source = &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{Subject: "orders.>"}}
	spec.Replicas = ptr.To[int32](2)
	rec := newRecord(ns, "orders", spec)
	createOwned(t, g, rec)
	waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rec.ChildName()}}
	g.Eventually(func(g Gomega) {
		g.Expect(get(d)).To(Succeed())
		g.Expect(d.Spec.Replicas).To(Equal(ptr.To[int32](2)))
	}, timeout, poll).Should(Succeed())

	// The stream's owner widens it beyond the Record's subject.
	cfg.Subjects = append(cfg.Subjects, "payments.>")
	_, err = js.UpdateStream(context.Background(), cfg)
	g.Expect(err).NotTo(HaveOccurred())
	waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamNotAllowed, recbufv1alpha1.ReasonStreamNotAllowed)
	g.Eventually(func(g Gomega) {
		g.Expect(get(d)).To(Succeed())
		g.Expect(d.Spec.Replicas).To(Equal(ptr.To[int32](0)), "the running pods stop reading the stream")
	}, timeout, poll).Should(Succeed())

	// Put right, the Record runs its pods again.
	cfg.Subjects = []string{"orders.us"}
	_, err = js.UpdateStream(context.Background(), cfg)
	g.Expect(err).NotTo(HaveOccurred())
	waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
	g.Eventually(func(g Gomega) {
		g.Expect(get(d)).To(Succeed())
		g.Expect(d.Spec.Replicas).To(Equal(ptr.To[int32](2)))
	}, timeout, poll).Should(Succeed())
}

func TestATenantWhoseStreamIsFullLeavesTheOthersTheirRoom(t *testing.T) {
	g := NewWithT(t)
	// A store of 4 MiB, which tenant A's values alone would fill.
	srv := natstest.Start(t, natstest.WithJetStream(t), natstest.WithOptions(func(o *server.Options) { o.JetStreamMaxStore = 4 << 20 }))
	cfg := testConfig
	cfg.StreamMaxBytes = 1 << 20
	js := startStreamManagerWith(t, g, srv, cfg)
	nsA, nsB := newNamespace(t), newNamespace(t)
	big := persistent(ringSpec(64), recbufv1alpha1.PersistenceSpec{})
	big.MaxMessageBytes = ptr.To[int32](256 << 10)
	a := newRecord(nsA, "flood", big)
	b := newRecord(nsB, "commands", persistent(mailboxSpec, recbufv1alpha1.PersistenceSpec{}))
	b.Spec.MaxMessageBytes = ptr.To[int32](64 << 10)
	createOwned(t, g, a)
	createOwned(t, g, b)
	waitStreamReason(g, a, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
	waitStreamReason(g, b, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)

	value := make([]byte, 200<<10)
	for i := range 24 { // 4.7 MiB: more than the whole store
		_, err := js.Publish(context.Background(), a.DefaultSubject(), value)
		g.Expect(err).NotTo(HaveOccurred(), "tenant A's publish %d: its stream discards its own oldest values", i)
	}
	g.Expect(streamInfo(g, js, streams.Name(nsA, a.Name)).State.Bytes).To(BeNumerically("<=", 1<<20), "tenant A's stream keeps within its max_bytes")
	_, err := js.Publish(context.Background(), b.DefaultSubject(), []byte("open the valve"))
	g.Expect(err).NotTo(HaveOccurred(), "tenant B's durable Record still stores")
	g.Expect(streamInfo(g, js, streams.Name(nsB, b.Name)).State.Msgs).To(Equal(uint64(1)))
}
