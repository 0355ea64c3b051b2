package chart

import (
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// checkRuleFile is what `promtool check rules FILE` does, in process:
// rulefmt's strict parse and validation (unknown fields, durations, PromQL,
// label names, annotation templates) and promtool's duplicate-rule lint.
// Building promtool itself takes longer than CI has (docs/observability.md).
func checkRuleFile(content []byte) []error {
	groups, errs := rulefmt.Parse(content, false, model.UTF8Validation,
		parser.NewParser(parser.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(errs) > 0 {
		return errs
	}
	type key struct{ name, labels string }
	seen := map[key]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			ls := labels.FromMap(g.Labels)
			for k, v := range r.Labels {
				ls = labels.NewBuilder(ls).Set(k, v).Labels()
			}
			k := key{name, ls.String()}
			if seen[k] {
				errs = append(errs, &duplicateRuleError{name: name, labels: k.labels})
			}
			seen[k] = true
		}
	}
	return errs
}

type duplicateRuleError struct{ name, labels string }

func (e *duplicateRuleError) Error() string {
	return "duplicate rule " + e.name + " with labels " + e.labels + ": might cause inconsistency while recording expressions"
}

// ruleFile is the rendered PrometheusRule's spec as a Prometheus rule file.
func ruleFile(t *testing.T, objs objects) []byte {
	t.Helper()
	rule := objs.find("PrometheusRule", "recbuf")
	if rule == nil {
		t.Fatalf("no PrometheusRule recbuf among %v", objs.names())
	}
	out, err := yaml.Marshal(rule.Object["spec"])
	if err != nil {
		t.Fatalf("marshal the PrometheusRule's spec: %v", err)
	}
	return out
}

func TestTheAlertsPassPromtoolsRuleChecks(t *testing.T) {
	t.Parallel()
	file := ruleFile(t, mustTemplate(t, monitoringValues...))
	for _, err := range checkRuleFile(file) {
		t.Error(err)
	}
}

// TestThePromtoolRuleChecksFail shows that the checks above can fail.
func TestThePromtoolRuleChecksFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
	}{
		{"an expression that does not parse is reported", `
groups:
- name: g
  rules:
  - alert: A
    expr: rate(x[5m]
`},
		{"a bad duration is reported", `
groups:
- name: g
  rules:
  - alert: A
    expr: up == 0
    for: five minutes
`},
		{"an annotation template that does not parse is reported", `
groups:
- name: g
  rules:
  - alert: A
    expr: up == 0
    annotations: {summary: "{{ $labels.job "}
`},
		{"an unknown field is reported", `
groups:
- name: g
  rules:
  - alert: A
    expr: up == 0
    severity: page
`},
		{"two groups of one name are reported", `
groups:
- name: g
  rules: [{alert: A, expr: up == 0}]
- name: g
  rules: [{alert: B, expr: up == 0}]
`},
		{"two alerts of one name and labels are reported", `
groups:
- name: g
  rules:
  - {alert: A, expr: up == 0, labels: {severity: warning}}
  - {alert: A, expr: up == 1, labels: {severity: warning}}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if errs := checkRuleFile([]byte(tt.file)); len(errs) == 0 {
				t.Errorf("no error for:%s", tt.file)
			}
		})
	}
}
