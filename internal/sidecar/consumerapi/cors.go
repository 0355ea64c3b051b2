package consumerapi

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/recbuf/recbuf/internal/wire"
)

// AnyOrigin is the entry of Config.AllowedOrigins that, alone, lets pages of every
// origin read the records: responses carry Access-Control-Allow-Origin: *.
const AnyOrigin = "*"

// MaxAllowedOrigins is the most entries of Config.AllowedOrigins, as the
// Record API caps spec.consumers.allowedOrigins.
const MaxAllowedOrigins = 32

// MaxOriginLength is the longest origin accepted: a scheme, "://", a DNS
// name of at most 253 characters and a port, with room to spare.
const MaxOriginLength = 280

// corsMaxAge is how long a browser may cache a preflight's answer. Chromium
// caps it at 2 hours, Firefox at 24; 10 minutes lets a Record's new
// spec.consumers.allowedOrigins take effect soon after its pods restart.
const corsMaxAge = 10 * time.Minute

// CORS header values, fixed: what the API's clients send and read.
const (
	// corsAllowMethods are the methods of the API: GET everywhere, POST
	// for take.
	corsAllowMethods = "GET, POST"
	// corsAllowHeaders are the request headers a page sets: a token, the
	// resume position (an EventSource sends Last-Event-ID by itself when
	// it reconnects), and Content-Type for a take a page posts with a body.
	corsAllowHeaders = "Authorization, Last-Event-ID, Content-Type"
)

// corsExposeHeaders are the response headers a page may read beyond the
// CORS-safelisted ones: the instance and type of every answer, the
// sequence, time and device of latest and take, how long to wait after a
// 503, and the scheme of a 401.
var corsExposeHeaders = strings.Join([]string{
	wire.HeaderInstance, wire.HeaderType, wire.HeaderSeq, wire.HeaderTime,
	wire.HeaderDevice, wire.HeaderDeviceSeq, "Retry-After", "WWW-Authenticate",
}, ", ")

// ErrInvalidOrigin is wrapped by ParseAllowedOrigins's errors.
var ErrInvalidOrigin = errors.New("invalid allowed origin")

// originRE is an origin as a browser serializes it in the Origin header
// (RFC 6454): http or https, a lowercase host — a DNS name or an IP
// address, an IPv6 one in brackets — and a port, nothing else: no path, no
// trailing slash, no user, no wildcard. Browsers send the host lowercase
// (punycode for international names), so an origin written otherwise
// would never match and is refused rather than ignored. The Record CRD's
// rule on spec.consumers.allowedOrigins is the same expression.
var originRE = regexp.MustCompile(`^https?://([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$`)

// ParseAllowedOrigins checks a list of allowed origins, as
// Config.AllowedOrigins takes it: exact origins (https://dash.example.com,
// http://localhost:8080) or the one entry AnyOrigin, which withAuth (the
// consumers must authenticate) forbids: a page of any site could then make
// its visitors' browsers use a token they hold. It returns the list
// without duplicates.
func ParseAllowedOrigins(origins []string, withAuth bool) ([]string, error) {
	if len(origins) > MaxAllowedOrigins {
		return nil, fmt.Errorf("%w: %d origins, at most %d", ErrInvalidOrigin, len(origins), MaxAllowedOrigins)
	}
	var out []string
	seen := make(map[string]bool, len(origins))
	for _, o := range origins {
		switch {
		case o == AnyOrigin && len(origins) > 1:
			return nil, fmt.Errorf("%w: %q must be the only entry", ErrInvalidOrigin, AnyOrigin)
		case o == AnyOrigin && withAuth:
			return nil, fmt.Errorf("%w: %q is only for consumers without authentication", ErrInvalidOrigin, AnyOrigin)
		case o == AnyOrigin:
		case len(o) > MaxOriginLength:
			return nil, fmt.Errorf("%w: %s is longer than %d characters", ErrInvalidOrigin, wire.Quote(o[:MaxOriginLength]), MaxOriginLength)
		case !originRE.MatchString(o):
			return nil, fmt.Errorf("%w: %s is not scheme://host[:port] (http or https, a lowercase host, no path, no trailing slash, no wildcard)", ErrInvalidOrigin, wire.Quote(o))
		case !validPort(o):
			return nil, fmt.Errorf("%w: %s has a port outside 1-65535, or with a leading zero", ErrInvalidOrigin, wire.Quote(o))
		case strings.HasPrefix(o, "http://") && strings.HasSuffix(o, ":80"), strings.HasPrefix(o, "https://") && strings.HasSuffix(o, ":443"):
			// A browser leaves the scheme's own port out of Origin.
			return nil, fmt.Errorf("%w: %s names its scheme's default port, which a browser leaves out of Origin: drop it", ErrInvalidOrigin, wire.Quote(o))
		}
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out, nil
}

// validPort reports whether the origin's port, if it has one, is 1-65535
// without leading zeros, as a browser writes it. (An IPv6 host's colons
// are inside its brackets.)
func validPort(origin string) bool {
	hostPort := origin[strings.Index(origin, "//")+2:]
	i := strings.LastIndexByte(hostPort, ':')
	if i < 0 || strings.HasSuffix(hostPort, "]") {
		return true
	}
	port := hostPort[i+1:]
	p, err := strconv.Atoi(port)
	return err == nil && p >= 1 && p <= 65535 && port[0] != '0'
}

// cors is the CORS policy of a Server: which origins' pages may read its
// records.
type cors struct {
	any     bool
	origins map[string]bool
}

func newCORS(origins []string) *cors {
	if len(origins) == 0 {
		return nil
	}
	c := &cors{origins: make(map[string]bool, len(origins))}
	for _, o := range origins {
		if o == AnyOrigin {
			c.any = true
		}
		c.origins[o] = true
	}
	return c
}

// allowOrigin is the Access-Control-Allow-Origin of a request from origin,
// "" when that origin may not read.
func (c *cors) allowOrigin(origin string) string {
	switch {
	case origin == "":
		return ""
	case c.any:
		return AnyOrigin
	case c.origins[origin]:
		return origin
	}
	return ""
}

// handle sets the CORS headers of a request for a record path, and answers
// it when it is a preflight, reporting true. A preflight carries no
// credentials, so it is answered before, and without, authorization; and
// for any name, so that it tells nothing of which records exist. A
// preflight from an origin not allowed gets 403 without CORS headers: the
// browser then refuses the request it was asking for.
func (c *cors) handle(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	// The answer depends on Origin, whether or not this one is allowed:
	// a cache must not give one origin's answer to another.
	h.Add("Vary", "Origin")
	allow := c.allowOrigin(r.Header.Get("Origin"))
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if preflight {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	if allow == "" {
		if preflight {
			writeError(w, http.StatusForbidden, "origin "+wire.Quote(r.Header.Get("Origin"))+" is not allowed to read these records")
		}
		return preflight
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if !preflight {
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		return false
	}
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(corsMaxAge/time.Second)))
	w.WriteHeader(http.StatusNoContent)
	return true
}
