/*
Copyright 2026 The recbuf Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package v1alpha1 is the recbuf.dev/v1alpha1 API: the Record resource,
// which declares how one record published on NATS is buffered and served.
//
// Admission validation lives in the types' kubebuilder markers (OpenAPI
// bounds and CEL rules), so that `kubectl apply` of a wrong Record fails
// with a message naming the field; there is no webhook. The condition types
// and reasons the controller writes are declared in conditions.go.
//
// The types are plain data: they carry no locks, and the usual Kubernetes
// rule applies — deep-copy an object before mutating one that a cache or
// another goroutine may read.
//
// +kubebuilder:object:generate=true
// +groupName=recbuf.dev
package v1alpha1
