// Package policy checks the chart's subject policy (a
// ValidatingAdmissionPolicy and its binding, templates/subject-policy.yaml)
// against a real kube-apiserver (envtest): the chart renders it with helm
// template, the test creates it, and Records are admitted or refused by it.
package policy
