//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const (
	// namespace holds the Records, the simulator and the consumers. It
	// enforces the restricted Pod Security Standard, so every pod recbuf
	// creates there proves it complies.
	namespace = "recbuf-e2e"
	// systemNamespace and release are where and as what the chart is installed.
	systemNamespace = "recbuf-system"
	release         = "recbuf"
	// natsURL is the chart's development NATS server (release recbuf).
	natsURL = "nats://recbuf-nats.recbuf-system.svc:4222"
)

var (
	cluster     = envOr("KIND_CLUSTER", "recbuf-e2e")
	kubeContext = "kind-" + cluster

	managerImage = envOr("MANAGER_IMG", "recbuf/manager:dev")
	sidecarImage = envOr("SIDECAR_IMG", "recbuf/sidecar:dev")
	edgesimImage = envOr("EDGESIM_IMG", "recbuf/edgesim:dev")
	natsImage    = envOr("NATS_IMG", "recbuf/nats:dev")

	helmBinary = envOr("HELM", filepath.Join(rootDir, "bin", "helm"))
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	_, _ = GinkgoWriter.Write([]byte("recbuf e2e on kind cluster " + cluster + "\n"))
	// Narrate every step, passed or not: CI logs then show where the
	// time goes and what was checked.
	suite, reporter := GinkgoConfiguration()
	reporter.Verbose = true
	RunSpecs(t, "recbuf e2e suite", suite, reporter)
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(2 * time.Minute)
	SetDefaultEventuallyPollingInterval(2 * time.Second)

	_, err := os.Stat(helmBinary)
	Expect(err).NotTo(HaveOccurred(), "helm not found: run `make helm` or set HELM")

	images := []string{
		"MANAGER_IMG=" + managerImage, "SIDECAR_IMG=" + sidecarImage,
		"EDGESIM_IMG=" + edgesimImage, "NATS_IMG=" + natsImage,
	}
	By("creating the kind cluster " + cluster + ", or reusing it")
	Expect(script([]string{"KIND_CLUSTER=" + cluster}, "kind.sh", "create")).To(Succeed())

	if os.Getenv("E2E_SKIP_BUILD") == "" {
		By("building the manager, sidecar, edgesim and NATS images")
		Expect(script(images, "docker-build.sh")).To(Succeed())
	}

	By("loading the images into the cluster")
	Expect(script([]string{"KIND_CLUSTER=" + cluster}, "kind.sh", "load",
		managerImage, sidecarImage, edgesimImage, natsImage)).To(Succeed())

	// The chart is installed with networkPolicy.enabled: the whole suite
	// runs with every Record's NetworkPolicy enforced.
	By("making the cluster enforce NetworkPolicy")
	Expect(script([]string{"KIND_CLUSTER=" + cluster}, "kind.sh", "network-policy")).To(Succeed())
})
