package apispec

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/courier-go/courier/rpc/httpx"
)

func TestOpenAPIDocument(t *testing.T) {
	doc, err := kitchenSpec().OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if doc.Format() != FormatOpenAPI || doc.Version() != "1.2.0" {
		t.Errorf("document %s %s", doc.Format(), doc.Version())
	}
	// kin-openapi's model of the document, validated as it was read.
	m := doc.OpenAPI()
	if m.OpenAPI != "3.1.0" || !m.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q", m.OpenAPI)
	}
	post := m.Paths.Value("/tickets").Post
	if post == nil || post.OperationID != "postTickets" || post.RequestBody == nil {
		t.Fatalf("POST /tickets: %+v", post)
	}
	if r := post.Responses.Value("201"); r == nil || r.Value.Content.Get("application/json") == nil {
		t.Errorf("201: %+v", r)
	}
	problem := post.Responses.Value("409")
	if problem == nil || problem.Value.Content.Get("application/problem+json") == nil {
		t.Fatalf("409: %+v", problem)
	}
	if s := problem.Value.Content.Get("application/problem+json").Schema; s.Ref != "#/components/schemas/Problem" || s.Value.Properties["status"] == nil {
		t.Errorf("problem schema %+v", s)
	}
	get := m.Paths.Value("/tickets/{id}").Get
	if get == nil || get.OperationID != "getTicketsId" || len(get.Parameters) != 2 {
		t.Fatalf("GET /tickets/{id}: %+v", get)
	}
	if p := get.Parameters.GetByInAndName("path", "id"); p == nil || !p.Required {
		t.Errorf("path parameter id: %+v", p)
	}
	if p := get.Parameters.GetByInAndName("query", "expand"); p == nil || p.Required {
		t.Errorf("query parameter expand: %+v", p)
	}
	if m.Paths.Value("/tickets/{id}/cancel").Post.Responses.Value("202") == nil {
		t.Errorf("POST /tickets/{id}/cancel has no 202")
	}
}

// ticketServer serves the kitchen spec's REST operations, one of them
// wrongly (a ticket without its state) when broken is set.
func ticketServer(broken bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tickets/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			httpx.WriteProblem(w, httpx.Problem{Status: http.StatusNotFound, Detail: "no ticket missing"})
			return
		}
		t := map[string]any{"id": r.PathValue("id"), "state": "ACCEPTED", "lines": []any{}}
		if broken {
			delete(t, "state")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(t)
	})
	mux.HandleFunc("POST /tickets", func(w http.ResponseWriter, r *http.Request) {
		var c CreateTicket
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			httpx.WriteProblem(w, httpx.Problem{Status: http.StatusBadRequest, Detail: err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(Ticket{ID: "t-" + c.OrderID, State: "ACCEPTED", Lines: c.Lines})
	})
	return mux
}

func TestValidator(t *testing.T) {
	doc, err := kitchenSpec().OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(doc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ticketServer(false))
	defer srv.Close()
	client := &http.Client{Transport: v.RoundTripper(http.DefaultTransport)}

	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/tickets/t-1?expand=lines", "", 200},
		{"GET", "/tickets/missing", "", 404},
		{"POST", "/tickets", `{"orderId":"o-1","lines":[{"item":"curry","quantity":1,"cents":1250}]}`, 201},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		if tc.body == "" {
			req.Body = nil
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.path, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}

	// A request the document does not allow fails before it is sent.
	req, _ := http.NewRequest("POST", srv.URL+"/tickets", strings.NewReader(`{"lines":[]}`))
	req.Header.Set("Content-Type", "application/json")
	if _, err := client.Do(req); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "orderId") {
		t.Errorf("request without orderId: %v", err)
	}
	if _, err := client.Get(srv.URL + "/orders"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown path: %v", err)
	}

	// A response the document does not allow fails the call.
	broken := httptest.NewServer(ticketServer(true))
	defer broken.Close()
	if _, err := client.Get(broken.URL + "/tickets/t-1"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "state") {
		t.Errorf("response without state: %v", err)
	}

	// ValidateResponse on its own: a status the operation does not declare.
	r := httptest.NewRequest("GET", "/tickets/t-1", nil)
	if err := v.ValidateResponse(context.Background(), r, http.StatusTeapot, http.Header{"Content-Type": {"application/json"}}, []byte(`{}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("status 418: %v", err)
	}
	if _, err := NewValidator(nil); err == nil {
		t.Error("NewValidator(nil) succeeded")
	}
}

func TestOpenAPIDiff(t *testing.T) {
	type v1Ticket struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Note  string `json:"note,omitempty"`
	}
	type v2Ticket struct {
		ID string `json:"id"`
		// state removed
		Note    string `json:"note,omitempty"`
		Courier string `json:"courier,omitempty"`
	}
	type v1Create struct {
		OrderID string `json:"orderId"`
		Note    string `json:"note,omitempty"`
	}
	type v2Create struct {
		OrderID string `json:"orderId"`
		Note    string `json:"note"` // now required
	}
	v1 := New("kitchen-service", "1.0.0")
	Operation[NoBody, v1Ticket](v1, "GET /tickets/{id}", Summary("Get"))
	Operation[v1Create, v1Ticket](v1, "POST /tickets", Summary("Create"))
	Operation[NoBody, v1Ticket](v1, "DELETE /tickets/{id}", Summary("Delete"))
	v2 := New("kitchen-service", "1.1.0")
	Operation[NoBody, v2Ticket](v2, "GET /tickets/{id}", Summary("Get"))
	Operation[v2Create, v2Ticket](v2, "POST /tickets", Summary("Create"))
	Operation[NoBody, v2Ticket](v2, "POST /tickets/{id}/cancel", Summary("Cancel"))
	r := diffSpecs(t, v1, v2, (*Spec).OpenAPI)
	want := map[string]bool{
		"api-removed-without-deprecation":    true,  // DELETE /tickets/{id}
		"response-required-property-removed": true,  // state
		"request-property-became-required":   true,  // note
		"endpoint-added":                     false, // POST /tickets/{id}/cancel
	}
	for rule, breaking := range want {
		found := false
		for _, c := range r.Changes {
			if c.Rule == rule {
				found = true
				if c.Breaking != breaking || c.Publishers != "" {
					t.Errorf("%s: %+v", rule, c)
				}
			}
		}
		if !found {
			t.Errorf("no %s change in %+v", rule, r.Changes)
		}
	}
	if r.Bump != BumpMajor || !strings.Contains(r.VersionError, "needs a new major version: 2.0.0") {
		t.Errorf("bump %s, version error %q", r.Bump, r.VersionError)
	}
}
