//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	sigsyaml "sigs.k8s.io/yaml"
)

// monitoringSpecs install the chart's Grafana dashboard and PrometheusRule
// on the running release and check what the API server made of them and of
// the ServiceMonitors: the Prometheus Operator's CRDs (generated from its
// API module) prune what their schemas do not know, so a field the chart
// misspells would silently vanish; the stored specs must equal the rendered
// ones (the server may add defaults).
func monitoringSpecs() {
	It("installs the Grafana dashboard and the alerts, and the API server keeps every field of them and of the ServiceMonitors", func() {
		By("helm upgrade with dashboards.enabled and prometheusRule.enabled")
		Expect(helm("upgrade", release, "charts/recbuf", "-n", systemNamespace, "--reuse-values",
			"--set", "dashboards.enabled=true", "--set", "prometheusRule.enabled=true", "--wait", "--timeout", "3m")).Error().NotTo(HaveOccurred())

		By("comparing the stored PrometheusRule and ServiceMonitors with what helm rendered")
		manifest, err := helm("get", "manifest", release, "-n", systemNamespace)
		Expect(err).NotTo(HaveOccurred())
		rendered := renderedSpecs(manifest)
		for _, obj := range []struct{ kind, name string }{
			{"PrometheusRule", "recbuf"}, {"ServiceMonitor", "recbuf-manager"}, {"ServiceMonitor", "recbuf-buffers"},
		} {
			want, ok := rendered[obj.kind+"/"+obj.name]
			Expect(ok).To(BeTrue(), "helm rendered %s/%s", obj.kind, obj.name)
			var stored struct {
				Spec map[string]any `json:"spec"`
			}
			Expect(getJSON(&stored, strings.ToLower(obj.kind), obj.name, "-n", systemNamespace)).To(Succeed())
			Expect(missingFields("spec", want, stored.Spec)).To(BeEmpty(), "fields of %s/%s the API server did not keep", obj.kind, obj.name)
		}

		By("reading the dashboard's ConfigMap as Grafana's sidecar would: by its label")
		out, err := kubectl("get", "configmaps", "-n", systemNamespace, "-l", "grafana_dashboard=1",
			"-o", `jsonpath={.items[*].data.recbuf-records\.json}`)
		Expect(err).NotTo(HaveOccurred())
		var dashboard struct {
			UID    string `json:"uid"`
			Panels []any  `json:"panels"`
		}
		Expect(json.Unmarshal([]byte(out), &dashboard)).To(Succeed(), "the dashboard is JSON")
		Expect(dashboard.UID).To(Equal("recbuf-records"))
		Expect(dashboard.Panels).NotTo(BeEmpty())

		By("scraping the manager's recbuf_record_reports_stale, which the stale-reports alert reads")
		Eventually(verifyManagerMetrics(
			fmt.Sprintf(`recbuf_record_reports_stale{name=%q,namespace=%q} 0`, ringRecord, namespace))).Should(Succeed())
	})
}

// renderedSpecs returns the spec of every object of a helm manifest, by
// "Kind/name", as JSON would decode it (so that it compares with what
// kubectl reads).
func renderedSpecs(manifest string) map[string]map[string]any {
	specs := map[string]map[string]any{}
	for _, doc := range strings.Split(manifest, "\n---") {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec map[string]any `json:"spec"`
		}
		Expect(sigsyaml.Unmarshal([]byte(doc), &obj)).To(Succeed())
		if obj.Kind != "" {
			specs[obj.Kind+"/"+obj.Metadata.Name] = obj.Spec
		}
	}
	return specs
}

// missingFields lists the paths of want whose values got lacks or holds
// otherwise: what the API server pruned or changed. Fields only got has
// (defaults) are not listed.
func missingFields(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{path}
		}
		var missing []string
		for k, v := range w {
			missing = append(missing, missingFields(path+"."+k, v, g[k])...)
		}
		return missing
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{path}
		}
		var missing []string
		for i := range w {
			missing = append(missing, missingFields(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return missing
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return []string{fmt.Sprintf("%s: rendered %v, stored %v", path, want, got)}
		}
		return nil
	}
}
