//go:build tools

// Package tools names what scripts/local-k8s builds from the Go module proxy, so that
// `go mod tidy` keeps every module they need in go.mod and go.sum (scripts/k8s-modules/<version>).
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
