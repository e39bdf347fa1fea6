package embedded_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/internal/testcert"
)

// TestTLSNeedsAListenerAndACertificate checks that WithTLS refuses a
// configuration without a certificate, and a server without a network
// listener; with both, the server's URL is the TLS one. brokerurl's
// TestNATSOverTLS connects to such a server.
func TestTLSNeedsAListenerAndACertificate(t *testing.T) {
	if _, err := embedded.Start(t.Context(), t.TempDir(), embedded.WithListenPort(0), embedded.WithTLS(&tls.Config{})); err == nil {
		t.Error("a TLS configuration without a certificate was accepted")
	}
	ca := testcert.NewCA(t)
	if _, err := embedded.Start(t.Context(), t.TempDir(), embedded.WithTLS(ca.ServerConfig(t))); err == nil ||
		!strings.Contains(err.Error(), "WithListenPort") {
		t.Errorf("TLS without a listener: %v", err)
	}
	srv, err := embedded.Start(t.Context(), t.TempDir(), embedded.WithListenPort(0), embedded.WithTLS(ca.ServerConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	if !strings.HasPrefix(srv.ClientURL(), "tls://") {
		t.Errorf("ClientURL = %s, want tls://", srv.ClientURL())
	}
}
