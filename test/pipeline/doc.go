// Package pipeline holds the SSE pipeline benchmark (issue 18 item 2): it
// runs the real buffer process standalone (--embedded-nats) on loopback,
// publishes to it at fixed rates and reads with a raw nats.go subscriber
// and with SSE consumers, reporting loss, latency and the process's CPU
// time per delivered event. It is behind the pipelinebench build tag, so
// that make test does not run it:
//
//	go test -tags pipelinebench -run TestPipeline -v -timeout 15m ./test/pipeline/
//
// See docs/benchmarks.md for its flags and results.
package pipeline
