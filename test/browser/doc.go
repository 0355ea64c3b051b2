// Package browser proves the consumer API's CORS support in a real
// browser: Debian's headless Chromium (/usr/bin/chromium), driven with
// chromedp, loads pages from an origin other than the buffer process's and
// reads a record there with EventSource and fetch, against the standalone
// buffer process (cmd/sidecar, built by the tests, with its embedded NATS
// server) fed by a real nats.go client.
//
// Without /usr/bin/chromium the tests skip, unless RECBUF_REQUIRE_BROWSER=1
// (CI sets it), when they fail. Nothing downloads a browser. The package
// holds tests only.
package browser
