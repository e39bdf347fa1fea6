package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/courier-go/courier/internal/tlsconfig"
)

// serverTLSFlags are the TLS of a server a command runs: its certificate,
// and the CA of the client certificates it requires.
type serverTLSFlags struct {
	cert, key, clientCA string
}

func (f *serverTLSFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cert, "tls-cert", "", "TLS certificate file (PEM; with -tls-key: serve TLS only)")
	fs.StringVar(&f.key, "tls-key", "", "TLS key file (PEM)")
	fs.StringVar(&f.clientCA, "tls-client-ca", "", "CA file (PEM): require client certificates it signed (needs -tls-cert)")
}

// endpointFlags secure an HTTP endpoint a command serves: TLS, client
// certificates, and a bearer token or basic authentication.
type endpointFlags struct {
	serverTLSFlags
	tokenFile, basicFile string
}

func (f *endpointFlags) register(fs *flag.FlagSet) {
	f.serverTLSFlags.register(fs)
	fs.StringVar(&f.tokenFile, "auth-token-file", "", "file holding a token: require 'Authorization: Bearer <token>'")
	fs.StringVar(&f.basicFile, "auth-basic-file", "", "file of user:password lines: require HTTP basic authentication as one of them")
}

// listen listens on addr, with TLS if the flags ask for it.
func (f *serverTLSFlags) listen(addr string) (net.Listener, error) {
	tc, err := f.tlsConfig()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		return tls.NewListener(l, tc), nil
	}
	return l, nil
}

// check checks that the flags go together and name readable files.
func (f *serverTLSFlags) check() error {
	_, err := f.tlsConfig()
	return err
}

// tlsConfig returns the server TLS configuration the flags ask for, nil
// for none.
func (f *serverTLSFlags) tlsConfig() (*tls.Config, error) {
	switch {
	case f.cert == "" && f.key == "" && f.clientCA == "":
		return nil, nil
	case f.cert == "" || f.key == "":
		return nil, errors.New("give both -tls-cert and -tls-key (and -tls-client-ca only with them)")
	}
	tc, err := tlsconfig.Server(f.cert, f.key, f.clientCA)
	if err != nil {
		return nil, err
	}
	tc.NextProtos = []string{"h2", "http/1.1"}
	return tc, nil
}

// tls reports whether the endpoint serves TLS.
func (f *serverTLSFlags) tls() bool { return f.cert != "" }

// guard wraps h with the authentication the flags ask for: a request
// without the token or the credentials gets 401.
func (f *endpointFlags) guard(h http.Handler) (http.Handler, error) {
	if f.tokenFile != "" && f.basicFile != "" {
		return nil, errors.New("give -auth-token-file or -auth-basic-file, not both")
	}
	switch {
	case f.tokenFile != "":
		token, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("-auth-token-file: %w", err)
		}
		if token = bytes.TrimSpace(token); len(token) == 0 {
			return nil, fmt.Errorf("-auth-token-file %s is empty", f.tokenFile)
		}
		want := sha256.Sum256(token)
		return authenticate(h, `Bearer realm="courier"`, func(r *http.Request) bool {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(got))
			return ok && subtle.ConstantTimeCompare(sum[:], want[:]) == 1
		}), nil
	case f.basicFile != "":
		data, err := os.ReadFile(f.basicFile)
		if err != nil {
			return nil, fmt.Errorf("-auth-basic-file: %w", err)
		}
		users, err := parseBasicUsers(data)
		if err != nil {
			return nil, fmt.Errorf("-auth-basic-file %s: %w", f.basicFile, err)
		}
		return authenticate(h, `Basic realm="courier", charset="UTF-8"`, func(r *http.Request) bool {
			user, pass, ok := r.BasicAuth()
			want, known := users[user]
			sum := sha256.Sum256([]byte(pass))
			// Unknown users cost the same comparison as known ones.
			return subtle.ConstantTimeCompare(sum[:], want[:]) == 1 && ok && known
		}), nil
	}
	return h, nil
}

// authenticate answers 401 with the challenge to requests ok refuses.
func authenticate(h http.Handler, challenge string, ok func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ok(r) {
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// parseBasicUsers reads user:password lines (blank lines and lines
// starting with # are skipped) into the SHA-256 of each user's password.
func parseBasicUsers(data []byte) (map[string][sha256.Size]byte, error) {
	users := map[string][sha256.Size]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		if !ok || user == "" || pass == "" {
			return nil, fmt.Errorf("line %d: want user:password", n)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q given twice", n, user)
		}
		users[user] = sha256.Sum256([]byte(pass))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, errors.New("no user")
	}
	return users, nil
}

// serve runs srv on l until ctx ends, then shuts it down within grace; it
// sends l's address on ready (if not nil) once serving has begun. Errors
// are prefixed with the command's name.
func serve(ctx context.Context, command string, srv *http.Server, l net.Listener, ready chan<- string, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	if ready != nil {
		ready <- l.Addr().String()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("%s: %w", command, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("%s: shutdown: %w", command, err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", command, err)
	}
	return nil
}
