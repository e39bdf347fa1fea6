package registryurl_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/courier-go/courier/discovery/registryurl"
	"github.com/courier-go/courier/internal/connurl/connurltest"
)

// FuzzOpen opens registry URLs of any content with a context already
// ended, so that nothing is reached: Open must refuse or open, never
// panic, and its error must not show the URL's password.
//
//	go test -fuzz FuzzOpen ./discovery/registryurl/
func FuzzOpen(f *testing.F) {
	for _, raw := range []string{"memory://", "etcd://u:s3cret@h1:2379,h2:2379?prefix=/a/&tls=true", "etcd://h:2379?prefix=nope",
		"dns://127.0.0.1:53?domain=svc.cluster.local&interval=2s", "dns://?interval=-1s", "etcd://u:s3cret@h:bad:port", "zk://u:p@h"} {
		f.Add(raw)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err == nil && strings.Contains(u.RawQuery, "file") {
			return // files of the machine
		}
		r, err := registryurl.Open(ctx, raw)
		if err == nil {
			r.Close()
			return
		}
		connurltest.CheckHidden(t, raw, err)
	})
}
