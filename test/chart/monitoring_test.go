package chart

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/bufferpod"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/recbuf/recbuf/controllers"
	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/sidecar/intake"
	sidecarmetrics "github.com/recbuf/recbuf/internal/sidecar/metrics"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// The checks below hold the chart's Grafana dashboard and PrometheusRule to
// the metrics the project exports: every metric a query selects, every
// label it matches, groups by, joins on or prints (legends, alert
// annotations) must be one a scraped series has. The exported metrics are
// read from the collectors themselves (Describe, and Gather for label
// values), so that renaming a metric or a label fails here, not in front of
// an operator looking at an empty panel.

// operatorTargetLabels are the labels the Prometheus Operator gives every
// series it scrapes through a ServiceMonitor endpoint (namespace, service,
// pod and container of the target, the port name as endpoint, job and
// instance). With honorLabels a series' own label wins; without, the
// target's does.
var operatorTargetLabels = []string{"namespace", "service", "pod", "container", "endpoint", "job", "instance"}

// externalMetrics are the metrics the chart's queries use that recbuf does
// not export, each with its labels and the reason it may be used.
var externalMetrics = map[string]struct {
	labels []string
	reason string
}{
	"kube_pod_container_status_restarts_total": {
		labels: []string{"namespace", "pod", "container", "uid"},
		reason: "kube-state-metrics: a process cannot count its own restarts; the buffer pod restarts panel and alert read it",
	},
}

// metricInfo is what the scraped series of one metric carry.
type metricInfo struct {
	labels map[string]bool
	// values are the values seen for a label, for the labels whose values
	// are a fixed set (reason, kind, condition); nil means not known.
	values map[string]map[string]bool
}

// catalog maps metric names to what their series carry once scraped.
type catalog map[string]*metricInfo

func (c catalog) add(name string, ls ...string) *metricInfo {
	m := c[name]
	if m == nil {
		m = &metricInfo{labels: map[string]bool{}, values: map[string]map[string]bool{}}
		c[name] = m
	}
	for _, l := range ls {
		m.labels[l] = true
	}
	return m
}

// enumeratedLabels are the labels whose values the checks compare with
// what the collectors emit.
var enumeratedLabels = map[string]bool{"reason": true, "kind": true, "condition": true}

// descRE takes the name and variable labels out of a *prometheus.Desc's
// String, the only way client_golang shows them.
var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}\}$`)

// describe adds the metrics of collectors, with extra labels on each:
// names and label names from Describe (so a labelled vector with no
// series yet counts), label values from Gather on a fresh registry.
func (c catalog) describe(t *testing.T, extra []string, collectors ...prometheus.Collector) {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, col := range collectors {
			col.Describe(ch)
		}
		close(ch)
	}()
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read descriptor %s", d)
		}
		ls := slices.Clone(extra)
		for _, cl := range strings.Split(m[2], ",") {
			if name, _, ok := strings.Cut(cl, "="); ok {
				ls = append(ls, name)
			}
		}
		for _, vl := range strings.Split(m[3], ",") {
			if vl = strings.TrimSuffix(strings.TrimPrefix(vl, "c("), ")"); vl != "" {
				ls = append(ls, vl)
			}
		}
		c.add(m[1], ls...)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors...)
	c.gather(t, reg, extra)
}

// gather adds what g's series carry: names, labels and, for the
// enumerated labels, their values.
func (c catalog) gather(t *testing.T, g prometheus.Gatherer, extra []string) {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		name := f.GetName()
		info := c.add(name, extra...)
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				info.labels[l.GetName()] = true
				if enumeratedLabels[l.GetName()] {
					if info.values[l.GetName()] == nil {
						info.values[l.GetName()] = map[string]bool{}
					}
					info.values[l.GetName()][l.GetValue()] = true
				}
			}
		}
	}
}

// exportedMetrics is the catalog of what a Prometheus scraping through the
// chart's ServiceMonitors sees: the buffer processes' metrics with the
// target labels of the buffers' ServiceMonitor (read from objs), the
// manager's with the operator's target labels, and the external ones.
func exportedMetrics(t *testing.T, objs objects) catalog {
	t.Helper()
	c := catalog{}

	bufferTargets := append(slices.Clone(operatorTargetLabels), bufferRelabeledLabels(t, objs)...)
	// Every function set, so that every metric has series.
	col := sidecarmetrics.NewCollector(sidecarmetrics.Conn{
		Connected:      func() bool { return true },
		Reconnects:     func() uint64 { return 0 },
		ReportInterval: func() time.Duration { return time.Second },
	}, sidecarmetrics.Record{
		Namespace: "ns", Name: "r",
		Counters:  func() report.Counters { return report.Counters{} },
		Buffer:    func() buffer.Stats { return buffer.Stats{} },
		Intake:    func() intake.Stats { return intake.Stats{} },
		Consumers: func() consumerapi.Stats { return consumerapi.Stats{} },
	})
	c.describe(t, bufferTargets, col)
	c.gather(t, sidecarmetrics.NewRegistry(col), bufferTargets)

	managerCollectors := append(controllers.Metrics(), statusagg.Metrics()...)
	c.describe(t, operatorTargetLabels, managerCollectors...)

	for name, ext := range externalMetrics {
		if c[name] != nil {
			t.Fatalf("%s is in externalMetrics but recbuf exports it", name)
		}
		c.add(name, ext.labels...)
	}
	return c
}

// bufferRelabeledLabels returns the target labels that the buffers'
// ServiceMonitor adds by relabeling, after checking that it labels each
// series with its Record from the Service the manager made.
func bufferRelabeledLabels(t *testing.T, objs objects) []string {
	t.Helper()
	sm := objs.find("ServiceMonitor", "recbuf-buffers")
	if sm == nil {
		t.Fatalf("no ServiceMonitor recbuf-buffers among %v", objs.names())
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("buffers' ServiceMonitor endpoints %v: want one", eps)
	}
	ep := eps[0].(map[string]any)
	if ep["honorLabels"] == true {
		t.Errorf("buffers' ServiceMonitor honors the pods' labels: a pod could label its series as another Record's")
	}
	// Service discovery's name for a Service label: invalid characters as _.
	instance := "__meta_kubernetes_service_label_" + regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(controllers.LabelInstance, "_")
	var added []string
	relabelings, _ := ep["relabelings"].([]any)
	for _, r := range relabelings {
		r := r.(map[string]any)
		target, _ := r["targetLabel"].(string)
		if target == "" || strings.HasPrefix(target, "__") {
			continue
		}
		if target == "record" {
			src, _ := r["sourceLabels"].([]any)
			if len(src) != 1 || src[0] != instance {
				t.Errorf("record is relabeled from %v, want [%s] (the Service's %s)", src, instance, controllers.LabelInstance)
			}
		}
		added = append(added, target)
	}
	if !slices.Contains(added, "record") {
		t.Errorf("buffers' ServiceMonitor relabelings %v set no record label", relabelings)
	}
	return added
}

// promqlParser parses the chart's queries as Prometheus does.
var promqlParser = parser.NewParser(parser.Options{})

// grafanaVariables replaces Grafana's placeholders with what PromQL
// accepts: range variables with a duration, the dashboard's variables with
// a regular expression that matches anything.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"${namespace}", ".*", "$namespace", ".*", "${record}", ".*", "$record", ".*",
)

// checker checks queries against a catalog and collects what is wrong.
type checker struct {
	catalog catalog
	errs    []string
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// query checks one PromQL expression and returns the labels its result
// carries; where names the query in errors.
func (c *checker) query(where, expr string) map[string]bool {
	e, err := promqlParser.ParseExpr(expr)
	if err != nil {
		c.errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	return c.labelsOf(where, e)
}

// labelsOf returns the labels of the series e evaluates to, checking every
// selector, matcher and label list in it on the way.
func (c *checker) labelsOf(where string, e parser.Expr) map[string]bool {
	switch e := e.(type) {
	case *parser.VectorSelector:
		return c.selector(where, e)
	case *parser.MatrixSelector:
		return c.labelsOf(where, e.VectorSelector)
	case *parser.SubqueryExpr:
		return c.labelsOf(where, e.Expr)
	case *parser.ParenExpr:
		return c.labelsOf(where, e.Expr)
	case *parser.UnaryExpr:
		return c.labelsOf(where, e.Expr)
	case *parser.StepInvariantExpr:
		return c.labelsOf(where, e.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return map[string]bool{}
	case *parser.AggregateExpr:
		if e.Param != nil {
			c.labelsOf(where, e.Param)
		}
		inner := c.labelsOf(where, e.Expr)
		c.want(where, "aggregation "+e.Op.String(), e.Grouping, inner)
		if e.Without {
			out := maps.Clone(inner)
			for _, l := range e.Grouping {
				delete(out, l)
			}
			return out
		}
		out := map[string]bool{}
		for _, l := range e.Grouping {
			out[l] = true
		}
		return out
	case *parser.Call:
		return c.call(where, e)
	case *parser.BinaryExpr:
		lhs, rhs := c.labelsOf(where, e.LHS), c.labelsOf(where, e.RHS)
		if vm := e.VectorMatching; vm != nil && e.LHS.Type() == parser.ValueTypeVector && e.RHS.Type() == parser.ValueTypeVector {
			if vm.On {
				c.want(where, "on()", vm.MatchingLabels, lhs)
				c.want(where, "on()", vm.MatchingLabels, rhs)
			}
			if vm.Card == parser.CardManyToOne {
				c.want(where, "group_left()", vm.Include, rhs)
			}
			if vm.Card == parser.CardOneToMany {
				c.want(where, "group_right()", vm.Include, lhs)
				return rhs
			}
		}
		if e.LHS.Type() != parser.ValueTypeVector {
			return rhs
		}
		return lhs
	default:
		c.errorf("%s: the check knows no %T (%s): teach it", where, e, e)
		return nil
	}
}

// call checks a function call; label_replace and label_join add their
// destination label.
func (c *checker) call(where string, e *parser.Call) map[string]bool {
	var out map[string]bool
	for _, a := range e.Args {
		ls := c.labelsOf(where, a)
		if a.Type() == parser.ValueTypeVector || a.Type() == parser.ValueTypeMatrix {
			out = ls
		}
	}
	if out == nil {
		out = map[string]bool{}
	}
	str := func(i int) string {
		if s, ok := e.Args[i].(*parser.StringLiteral); ok {
			return s.Val
		}
		return ""
	}
	switch e.Func.Name {
	case "label_replace":
		c.want(where, "label_replace", []string{str(3)}, out)
		out = maps.Clone(out)
		out[str(1)] = true
	case "label_join":
		var src []string
		for i := 3; i < len(e.Args); i++ {
			src = append(src, str(i))
		}
		c.want(where, "label_join", src, out)
		out = maps.Clone(out)
		out[str(1)] = true
	}
	return out
}

// selector checks a selector's metric and matchers against the catalog.
func (c *checker) selector(where string, vs *parser.VectorSelector) map[string]bool {
	name := vs.Name
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			name = m.Value
		}
	}
	info := c.catalog[name]
	if info == nil {
		c.errorf("%s: metric %s is not exported", where, name)
		return nil
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			continue
		}
		if !info.labels[m.Name] {
			c.errorf("%s: %s has no label %s (it has %v)", where, name, m.Name, sortedKeys(info.labels))
			continue
		}
		known := info.values[m.Name]
		if known == nil {
			continue
		}
		for _, v := range literalValues(m) {
			if !known[v] {
				c.errorf("%s: %s{%s} is never %q (it is one of %v)", where, name, m.Name, v, sortedKeys(known))
			}
		}
	}
	return maps.Clone(info.labels)
}

// literalValues returns the values a matcher names: its value for = and
// !=, each alternative of a regular expression that is only an
// alternation of plain words; none otherwise.
func literalValues(m *labels.Matcher) []string {
	switch m.Type {
	case labels.MatchEqual, labels.MatchNotEqual:
		return []string{m.Value}
	default:
		if regexp.MustCompile(`^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$`).MatchString(m.Value) {
			return strings.Split(m.Value, "|")
		}
		return nil
	}
}

// want reports the labels of ls that have is lacks.
func (c *checker) want(where, what string, ls []string, have map[string]bool) {
	for _, l := range ls {
		if have != nil && !have[l] {
			c.errorf("%s: %s uses label %s, which the series there lack (they have %v)", where, what, l, sortedKeys(have))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// legendRE finds the labels a Grafana legend prints ({{label}}); alertRE
// those an alert annotation prints ({{ $labels.label }}).
var (
	legendRE = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
	alertRE  = regexp.MustCompile(`\$labels\.([A-Za-z_][A-Za-z0-9_]*)`)
)

func submatches(re *regexp.Regexp, s string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// labelValuesRE is Grafana's label_values(query, label) variable query.
var labelValuesRE = regexp.MustCompile(`^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)

// dashboard is what the checks read of a Grafana dashboard.
type dashboard struct {
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"`
}

// checkDashboard checks every query of the dashboard JSON.
func (c *checker) checkDashboard(js string) {
	var d dashboard
	if err := json.Unmarshal([]byte(js), &d); err != nil {
		c.errorf("the dashboard is not JSON: %v", err)
		return
	}
	queries := 0
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValuesRE.FindStringSubmatch(v.Definition)
		if m == nil {
			c.errorf("variable %s: %q is not label_values(query, label)", v.Name, v.Definition)
			continue
		}
		where := "variable " + v.Name
		c.want(where, "label_values", []string{m[2]}, c.query(where, grafanaVariables.Replace(m[1])))
		queries++
	}
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			walk(p.Panels)
			if p.Type != "row" && len(p.Targets) == 0 {
				c.errorf("panel %q has no query", p.Title)
			}
			for i, tg := range p.Targets {
				where := fmt.Sprintf("panel %q query %d", p.Title, i)
				out := c.query(where, grafanaVariables.Replace(tg.Expr))
				c.want(where, "legend", submatches(legendRE, tg.LegendFormat), out)
				queries++
			}
		}
	}
	walk(d.Panels)
	if queries == 0 {
		c.errorf("the dashboard has no query")
	}
}

// ruleGroups is the spec of a PrometheusRule (and a Prometheus rule file).
type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// checkRules checks every rule of a PrometheusRule's spec.
func (c *checker) checkRules(spec ruleGroups) {
	n := 0
	groups := map[string]bool{}
	for _, g := range spec.Groups {
		if g.Name == "" || groups[g.Name] {
			c.errorf("group name %q is empty or not unique (Prometheus refuses the rule file)", g.Name)
		}
		groups[g.Name] = true
		for _, r := range g.Rules {
			where := "alert " + r.Alert
			if r.Alert == "" {
				c.errorf("group %s: rule %q is no alert (the chart records nothing)", g.Name, r.Record)
				continue
			}
			out := c.query(where, r.Expr)
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					c.errorf("%s: for %q: %v", where, r.For, err)
				}
			}
			if r.Labels["severity"] == "" {
				c.errorf("%s has no severity label", where)
			}
			for _, k := range sortedKeys(r.Annotations) {
				c.want(where, "annotation "+k, submatches(alertRE, r.Annotations[k]), out)
			}
			n++
		}
	}
	if n == 0 {
		c.errorf("the PrometheusRule has no alert")
	}
}

// monitoringValues render the dashboard, the rule and the buffers'
// ServiceMonitor, whose labels the queries rely on.
var monitoringValues = []string{"dashboards.enabled=true", "prometheusRule.enabled=true", "metrics.bufferServiceMonitor.enabled=true", "metrics.serviceMonitor.enabled=true"}

// renderedMonitoring renders the chart with the dashboard and the rule and
// returns the dashboard's JSON, the rule's spec and the catalog.
func renderedMonitoring(t *testing.T) (string, ruleGroups, catalog) {
	t.Helper()
	objs := mustTemplate(t, monitoringValues...)
	cm := get[struct {
		Data map[string]string `json:"data"`
	}](t, objs, "ConfigMap", "recbuf-dashboard")
	js, ok := cm.Data["recbuf-records.json"]
	if !ok {
		t.Fatalf("dashboard ConfigMap has keys %v, want recbuf-records.json", sortedKeys(cm.Data))
	}
	rule := get[struct {
		Spec ruleGroups `json:"spec"`
	}](t, objs, "PrometheusRule", "recbuf")
	return js, rule.Spec, exportedMetrics(t, objs)
}

func TestDashboardUsesOnlyExportedMetrics(t *testing.T) {
	t.Parallel()
	js, _, cat := renderedMonitoring(t)
	c := &checker{catalog: cat}
	c.checkDashboard(js)
	for _, e := range c.errs {
		t.Error(e)
	}
}

func TestAlertsUseOnlyExportedMetrics(t *testing.T) {
	t.Parallel()
	_, rules, cat := renderedMonitoring(t)
	c := &checker{catalog: cat}
	c.checkRules(rules)
	for _, e := range c.errs {
		t.Error(e)
	}
}

// TestTheMetricChecksFail shows that the checks above can fail: each case
// breaks a query the way a rename would, and must be reported.
func TestTheMetricChecksFail(t *testing.T) {
	t.Parallel()
	js, _, cat := renderedMonitoring(t)
	tests := []struct {
		name, expr, legend string
		want               string
	}{
		{"a renamed metric is reported", `sum by (namespace, record) (rate(recbuf_buffer_produced_values_total[5m]))`, "", "metric recbuf_buffer_produced_values_total is not exported"},
		{"a matcher on a label the metric lacks is reported", `recbuf_buffer_produced_total{name="x"}`, "", "recbuf_buffer_produced_total has no label name"},
		{"a grouping label the series lack is reported", `sum by (namespace, rekord) (recbuf_buffer_produced_total)`, "", "uses label rekord"},
		{"a reason the intake never counts is reported", `recbuf_intake_dropped_total{reason="oversize"}`, "", `is never "oversize"`},
		{"one wrong alternative of a regular expression is reported", `recbuf_reports_rejected_total{reason=~"unsigned|forged"}`, "", `is never "forged"`},
		{"a legend printing a label the aggregation dropped is reported", `sum by (namespace) (recbuf_buffer_produced_total)`, "{{record}}", "legend uses label record"},
		{"a manager metric is not given the buffers' record label", `recbuf_record_ready_status{record="x"}`, "", "recbuf_record_ready_status has no label record"},
		{"a query that does not parse is reported", `sum by (namespace (recbuf_buffer_produced_total)`, "", "does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal([]byte(js), &d); err != nil {
				t.Fatal(err)
			}
			d["panels"] = []any{map[string]any{"type": "timeseries", "title": "broken", "targets": []any{
				map[string]any{"expr": tt.expr, "legendFormat": tt.legend}}}}
			mutated, _ := json.Marshal(d)
			c := &checker{catalog: cat}
			c.checkDashboard(string(mutated))
			if !slices.ContainsFunc(c.errs, func(e string) bool { return strings.Contains(e, tt.want) }) {
				t.Errorf("got errors %q, want one with %q", c.errs, tt.want)
			}
		})
	}

	t.Run("the shipped dashboard with one metric renamed is reported", func(t *testing.T) {
		c := &checker{catalog: cat}
		c.checkDashboard(strings.ReplaceAll(js, "recbuf_buffer_produced_total", "recbuf_buffer_pushed_total"))
		if !slices.ContainsFunc(c.errs, func(e string) bool { return strings.Contains(e, "recbuf_buffer_pushed_total is not exported") }) {
			t.Errorf("got errors %q, want the renamed metric reported", c.errs)
		}
	})
	t.Run("the catalog holds the metrics of the buffers, the controller and the report collector, described with their labels", func(t *testing.T) {
		if cat["recbuf_buffer_produced_total"] == nil || cat["recbuf_record_ready_status"] == nil || cat["recbuf_reports_rejected_total"] == nil {
			t.Fatalf("catalog %v lacks the buffer's, the controller's or the collector's metrics", sortedKeys(cat))
		}
		if !cat["recbuf_record_ready_status"].labels["condition"] {
			t.Errorf("recbuf_record_ready_status labels %v: want condition, described though no Record was observed", sortedKeys(cat["recbuf_record_ready_status"].labels))
		}
	})
}

// alertsOf returns the rendered PrometheusRule's alerts by name.
func alertsOf(t *testing.T, objs objects) map[string]map[string]any {
	t.Helper()
	rule := objs.find("PrometheusRule", "recbuf")
	if rule == nil {
		t.Fatalf("no PrometheusRule recbuf among %v", objs.names())
	}
	alerts := map[string]map[string]any{}
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			r := r.(map[string]any)
			alerts[r["alert"].(string)] = r
		}
	}
	return alerts
}

func TestMonitoringValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		set   []string
		check func(t *testing.T, objs objects)
	}{
		{
			name: "dashboards.namespace puts the dashboard in Grafana's namespace with the sidecar's label and annotations",
			set:  []string{"dashboards.enabled=true", "dashboards.namespace=monitoring", "dashboards.annotations.grafana_folder=recbuf"},
			check: func(t *testing.T, objs objects) {
				cm := objs.find("ConfigMap", "recbuf-dashboard")
				if cm == nil {
					t.Fatalf("no ConfigMap recbuf-dashboard among %v", objs.names())
				}
				if cm.GetNamespace() != "monitoring" || cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "recbuf" {
					t.Errorf("got namespace %q, labels %v, annotations %v; want monitoring, grafana_dashboard=1, grafana_folder=recbuf",
						cm.GetNamespace(), cm.GetLabels(), cm.GetAnnotations())
				}
				if objs.find("PrometheusRule", "recbuf") != nil {
					t.Errorf("got a PrometheusRule, want only the dashboard")
				}
			},
		},
		{
			name: "prometheusRule.alertLabels are on every alert and may override severity",
			set:  []string{"prometheusRule.enabled=true", "prometheusRule.alertLabels.team=edge", "prometheusRule.alertLabels.severity=critical", "prometheusRule.labels.release=prometheus"},
			check: func(t *testing.T, objs objects) {
				if got := objs.find("PrometheusRule", "recbuf").GetLabels()["release"]; got != "prometheus" {
					t.Errorf("PrometheusRule label release: got %q, want prometheus", got)
				}
				for name, a := range alertsOf(t, objs) {
					ls, _ := a["labels"].(map[string]any)
					if ls["team"] != "edge" || ls["severity"] != "critical" {
						t.Errorf("alert %s labels %v: want team=edge, severity=critical", name, ls)
					}
				}
			},
		},
		{
			name: "the thresholds reach the alerts",
			set: []string{"prometheusRule.enabled=true", "prometheusRule.notReadyFor=10m", "prometheusRule.lagRate=2.5", "prometheusRule.lagFor=1h",
				"prometheusRule.dropRate=0.1", "prometheusRule.restartWindow=30m", "prometheusRule.reportsStaleFor=2m", "prometheusRule.natsDisconnectedFor=1m"},
			check: func(t *testing.T, objs objects) {
				alerts := alertsOf(t, objs)
				for _, w := range []struct{ alert, field, want string }{
					{"RecbufRecordNotReady", "for", "10m"},
					{"RecbufRecordReportsStale", "for", "2m"},
					{"RecbufBufferNATSDisconnected", "for", "1m"},
					{"RecbufConsumersLagging", "for", "1h"},
					{"RecbufConsumersLagging", "expr", "> 2.5"},
					{"RecbufMessagesDropped", "expr", "> 0.1"},
					{"RecbufBufferPodRestarted", "expr", "[30m]"},
				} {
					a := alerts[w.alert]
					if a == nil {
						t.Errorf("no alert %s among %v", w.alert, sortedKeys(alerts))
						continue
					}
					if got, _ := a[w.field].(string); !strings.Contains(got, w.want) {
						t.Errorf("alert %s %s: got %q, want %q in it", w.alert, w.field, got, w.want)
					}
				}
			},
		},
		{
			name: "the restart alert selects the buffer container by its name",
			set:  []string{"prometheusRule.enabled=true"},
			check: func(t *testing.T, objs objects) {
				expr, _ := alertsOf(t, objs)["RecbufBufferPodRestarted"]["expr"].(string)
				if !strings.Contains(expr, fmt.Sprintf("container=%q", bufferpod.ContainerName)) {
					t.Errorf("expr %q does not select container %q", expr, bufferpod.ContainerName)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, mustTemplate(t, tt.set...))
		})
	}
}

func TestMonitoringValuesRefused(t *testing.T) {
	t.Parallel()
	for _, set := range []string{"prometheusRule.notReadyFor=5 minutes", "prometheusRule.lagRate=-1", "prometheusRule.thresholds.x=1", "dashboards.label.x=y"} {
		if _, err := template(t, set); err == nil {
			t.Errorf("helm template --set %s: rendered, want the schema to refuse it", set)
		}
	}
}
