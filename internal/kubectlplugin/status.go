package kubectlplugin

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// status prints a Record's status for a person: what it is, whether it
// is Ready and why not, its conditions, its counters with rates and its
// pods.
//
// Rates come from two reads of the status: the counters are sums the
// manager patches from the buffer pods' reports, so the command waits, up
// to --rate-window, for a newer lastReportTime, and divides each
// counter's growth by the time between the two reports (the manager's
// clock). Without a new report within the window, rates are "-".
func status(ctx context.Context, inv *invocation) error {
	k, err := connect(inv.kube)
	if err != nil {
		return err
	}
	first, err := k.record(ctx, inv.record)
	if err != nil {
		return err
	}
	second := first
	if inv.rateWindow > 0 && first.Status.LastReportTime != nil {
		if second, err = nextReport(ctx, k, first, inv.rateWindow); err != nil {
			return err
		}
	}
	r := rates(first, second)
	return writeStatus(inv.stdout, second, r, rateNote(first, second, r, inv.rateWindow), time.Now())
}

// rateNote says what the rates are over, or why there are none.
func rateNote(a, b *recbufv1.Record, r map[string]float64, window time.Duration) string {
	switch {
	case r != nil:
		return "per second between two reports " + b.Status.LastReportTime.Sub(a.Status.LastReportTime.Time).Round(100*time.Millisecond).String() + " apart"
	case window <= 0:
		return "not asked for (--rate-window=0)"
	case a.Status.LastReportTime == nil:
		return "none: no report yet"
	}
	return "none: no new report within " + window.String() + " (an idle Record's counters do not change, and so its status does not either)"
}

// nextReport polls rec until its lastReportTime moves or window passes,
// and returns the latest read.
func nextReport(ctx context.Context, k *kube, rec *recbufv1.Record, window time.Duration) (*recbufv1.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	latest := rec
	for {
		select {
		case <-ctx.Done():
			return latest, nil
		case <-tick.C:
		}
		r, err := k.record(ctx, rec.Name)
		if ctx.Err() != nil {
			return latest, nil
		}
		if err != nil {
			return nil, err
		}
		latest = r
		if t := r.Status.LastReportTime; t != nil && t.After(rec.Status.LastReportTime.Time) {
			return latest, nil
		}
	}
}

// counter is one row of the counters table.
type counter struct {
	name  string
	value func(*recbufv1.RecordCounters) int64
	// gauge: a level, not a total; it has no rate.
	gauge bool
}

var counters = []counter{
	{name: "produced", value: func(c *recbufv1.RecordCounters) int64 { return c.Produced }},
	{name: "delivered", value: func(c *recbufv1.RecordCounters) int64 { return c.Delivered }},
	{name: "subscribers", value: func(c *recbufv1.RecordCounters) int64 { return c.Subscribers }, gauge: true},
	{name: "lagEvents", value: func(c *recbufv1.RecordCounters) int64 { return c.LagEvents }},
	{name: "laggedValues", value: func(c *recbufv1.RecordCounters) int64 { return c.LaggedValues }},
	{name: "skipped", value: func(c *recbufv1.RecordCounters) int64 { return c.Skipped }},
	{name: "overwrites", value: func(c *recbufv1.RecordCounters) int64 { return c.Overwrites }},
	{name: "evicted", value: func(c *recbufv1.RecordCounters) int64 { return c.Evicted }},
	{name: "dropped", value: func(c *recbufv1.RecordCounters) int64 { return c.Dropped }},
}

// rates returns each counter's growth per second between two reads of a
// Record, by name; nil when the reads do not span two reports (or a
// restart made a counter shrink, which says nothing about a rate).
func rates(a, b *recbufv1.Record) map[string]float64 {
	ta, tb := a.Status.LastReportTime, b.Status.LastReportTime
	if ta == nil || tb == nil || !tb.After(ta.Time) {
		return nil
	}
	dt := tb.Sub(ta.Time).Seconds()
	out := map[string]float64{}
	for _, c := range counters {
		if c.gauge {
			continue
		}
		if d := c.value(&b.Status.RecordCounters) - c.value(&a.Status.RecordCounters); d >= 0 {
			out[c.name] = float64(d) / dt
		}
	}
	return out
}

// writeStatus writes rec's status as of now.
func writeStatus(w io.Writer, rec *recbufv1.Record, rate map[string]float64, note string, now time.Time) error {
	st := &rec.Status
	ready := "Ready"
	if why := readiness(rec); why != "" {
		ready = "not Ready: " + why
	}
	kind := string(rec.Spec.Buffer.Type)
	if c := rec.Spec.Buffer.Capacity; c != nil {
		kind += ", capacity " + strconv.Itoa(int(*c))
	}
	if mb := rec.Spec.Buffer.MaxBytes; mb != nil {
		kind += ", maxBytes " + mb.String()
	}
	var b strings.Builder
	printf(&b, "Record %s/%s (%s): %s\n", rec.Namespace, rec.Name, kind, ready)
	printf(&b, "Endpoint:     %s\n", orDash(st.Endpoint))
	printf(&b, "Subject:      %s\n", orDash(st.Subject))
	printf(&b, "Generation:   %d (status observed %d)\n", rec.Generation, st.ObservedGeneration)
	printf(&b, "Last report:  %s, from %d pods\n", ago(st.LastReportTime, now), st.ReportingPods)
	printf(&b, "Last message: %s\n", ago(st.LastMessageTime, now))
	printf(&b, "Rates:        %s\n", note)

	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	printf(tw, "CONDITION\tSTATUS\tREASON\tSINCE\tMESSAGE"+"\n")
	for _, c := range st.Conditions {
		printf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, age(c.LastTransitionTime, now), oneLine(c.Message))
	}
	if len(st.Conditions) == 0 {
		printf(tw, "-\t-\t-\t-\tno conditions yet: is the recbuf manager running?"+"\n")
	}
	_ = tw.Flush()

	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	printf(tw, "COUNTER\tVALUE\tRATE"+"\n")
	for _, c := range counters {
		r := "-"
		if v, ok := rate[c.name]; ok {
			r = strconv.FormatFloat(v, 'f', 1, 64) + "/s"
		} else if c.gauge {
			r = "(now)"
		}
		printf(tw, "%s\t%d\t%s\n", c.name, c.value(&st.RecordCounters), r)
	}
	_ = tw.Flush()

	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	printf(tw, "POD\tCONNECTED\tPRODUCED\tSUBSCRIBERS\tDROPPED"+"\n")
	for _, p := range st.Pods {
		printf(tw, "%s\t%t\t%d\t%d\t%d\n", p.Name, p.Connected, p.Produced, p.Subscribers, p.Dropped)
	}
	if len(st.Pods) == 0 {
		printf(tw, "-\t-\t-\t-\t-"+"\n")
	}
	_ = tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}

// printf writes to a strings.Builder, or a tabwriter into one, which
// cannot fail.
func printf(w io.Writer, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ago is how long before now t was, "never" when unset.
func ago(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	return age(*t, now) + " ago (" + t.UTC().Format(time.RFC3339) + ")"
}

// age is a short duration since t, as kubectl shows ages.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t.Time)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
