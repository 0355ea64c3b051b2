// Package chart tests the Helm chart in charts/recbuf by rendering it with
// the pinned helm binary (`make helm` installs it as bin/helm; the HELM
// environment variable overrides): `helm lint`, rendered objects for
// several sets of values, values the schema must refuse, and the chart's
// agreement with what controller-gen generates into config/ (the
// ClusterRole's rules and the CRDs). It also checks that every value in
// values.yaml is documented and described by values.schema.json, and that
// the queries of the chart's Grafana dashboard and PrometheusRule use only
// metrics and labels the project exports (parsed with Prometheus's PromQL
// parser, against the collectors' own descriptions).
//
// The package holds tests only. They run helm as subprocesses and are safe
// to run in parallel.
package chart
