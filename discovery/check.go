package discovery

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/courier-go/courier/internal/connurl"
)

// HTTPCheck returns a Check that GETs url and wants a 2xx status. The
// URL may hold credentials (http://user:pass@host/healthz): its errors
// never show them.
func HTTPCheck(client *http.Client, url string) Check {
	if client == nil {
		client = http.DefaultClient
	}
	redactor := connurl.NewRedactor(url)
	shown := redactor.String(url)
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("health check %s: %w", shown, redactor.Error(err))
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("health check: %w", redactor.Error(err))
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) //nolint:errcheck // draining for reuse only
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("health check %s: status %s", shown, resp.Status)
		}
		return nil
	}
}

// TCPCheck returns a Check that connects to addr.
func TCPCheck(addr string) Check {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("health check: %w", err)
		}
		return c.Close()
	}
}
