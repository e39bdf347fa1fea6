package apispec

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", kitchenSpec().Handler()))
	broken := New("broken", "1.0.0")
	Publishes[chan int](broken, "x")
	mux.Handle("/broken/", http.StripPrefix("/broken", broken.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
		starts       string
	}{
		{"GET", "/api/asyncapi.json", 200, "application/json", "{\n  \"asyncapi\": \"3.0.0\""},
		{"GET", "/api/asyncapi.yaml", 200, "application/yaml", "asyncapi: 3.0.0\n"},
		{"GET", "/api/openapi.json", 200, "application/json", "{"},
		{"GET", "/api/openapi.yaml", 200, "application/yaml", "openapi: 3.1.0\n"},
		{"HEAD", "/api/openapi.yaml", 200, "application/yaml", ""},
		{"GET", "/api/other.json", 404, "application/problem+json", `{"title":"Not Found"`},
		{"POST", "/api/asyncapi.json", 405, "application/problem+json", ""},
		{"GET", "/broken/asyncapi.json", 500, "application/problem+json", ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.contentType || !strings.HasPrefix(string(body), tc.starts) {
			t.Errorf("%s %s: %d %s %.60q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}
