package connurl

import (
	"crypto/tls"
	"fmt"
	"net/url"

	"github.com/courier-go/courier/internal/tlsconfig"
)

// TLSParams are the parameters with which a connection URL asks for TLS,
// where its scheme can use it (the names are RabbitMQ's URI parameters):
//
//	tls=true                  TLS, verifying the server with the system's roots
//	cacertfile=F              verify the server with the CA certificates in F (PEM)
//	certfile=F&keyfile=K      present the client certificate in F, its key in K (PEM)
//	server_name_indication=H  verify the server's certificate for H, not the host
//
// Any of the files asks for TLS; tls=false with one is refused.
var TLSParams = []string{"tls", "cacertfile", "certfile", "keyfile", "server_name_indication"}

// TLS returns the client TLS configuration that q's TLS parameters ask
// for, or nil if they ask for none. It reads the files.
func TLS(q url.Values) (*tls.Config, error) {
	on := false
	switch v := q.Get("tls"); v {
	case "":
	case "true":
		on = true
	case "false":
	default:
		return nil, fmt.Errorf("parameter tls=%q: want true or false", v)
	}
	for _, p := range TLSParams[1:] {
		if q.Get(p) == "" {
			continue
		}
		if q.Get("tls") == "false" {
			return nil, fmt.Errorf("parameter %s is for TLS, which tls=false turns off", p)
		}
		on = true
	}
	if !on {
		return nil, nil
	}
	c, err := tlsconfig.Client(q.Get("cacertfile"), q.Get("certfile"), q.Get("keyfile"), q.Get("server_name_indication"))
	if err != nil {
		return nil, fmt.Errorf("TLS parameters: %w", err)
	}
	return c, nil
}
