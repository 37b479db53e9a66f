package argo_test

import (
	"os"
	"testing"

	"github.com/seakeeper-ci/seakeeper/internal/kubetest"
)

// TestMain lets the real-API tests (kube_*_test.go) share one kube-apiserver
// and etcd, started on first use by kubetest.StartShared: the tests over
// the fake clientset never start it.
func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
