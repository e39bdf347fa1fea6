package apispec

import (
	"fmt"
	"slices"
	"testing"
)

// payloadDoc is a minimal AsyncAPI document: one channel, one operation of
// action on it, one message M with the payload schema given as JSON.
func payloadDoc(version, action, payload string) string {
	return fmt.Sprintf(`{
  "asyncapi": "3.0.0",
  "info": {"title": "t", "version": %q},
  "channels": {"c": {"address": "c", "messages": {"m": {"$ref": "#/components/messages/m"}}}},
  "operations": {"op": {"action": %q, "channel": {"$ref": "#/channels/c"}, "messages": [{"$ref": "#/channels/c/messages/m"}]}},
  "components": {"messages": {"m": {"name": "M", "contentType": "application/json", "payload": %s}},
    "schemas": {"Line": {"type": "object", "properties": {"sku": {"type": "string"}}}}}
}`, version, action, payload)
}

// schemaRuleCase is one test of a JSON Schema rule: the payload before and
// after, and what the change must be for the message's consumers and
// publishers; the service sends the message (its consumers depend on the
// document) unless receive is set.
type schemaRuleCase struct {
	rule                  string
	old, new              string
	receive               bool
	consumers, publishers Effect
	also                  []string // other rules the change triggers
}

var schemaRuleCases = []schemaRuleCase{
	{rule: "property-removed", old: `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}}}`, new: `{"type":"object","properties":{"a":{"type":"string"}}}`, consumers: Breaking, publishers: Compatible},
	{rule: "property-removed", old: `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}}}`, new: `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`, receive: true, consumers: Breaking, publishers: Breaking, also: []string{"additional-properties-refused"}},
	{rule: "property-added", old: `{"type":"object","properties":{"a":{"type":"string"}}}`, new: `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}}}`, consumers: Compatible, publishers: Compatible},
	{rule: "required-property-added", old: `{"type":"object","properties":{"a":{"type":"string"}}}`, new: `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"required":["b"]}`, receive: true, consumers: Compatible, publishers: Breaking},
	{rule: "property-required", old: `{"type":"object","properties":{"a":{"type":"string"}}}`, new: `{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`, receive: true, consumers: Compatible, publishers: Breaking},
	{rule: "property-optional", old: `{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`, new: `{"type":"object","properties":{"a":{"type":"string"}}}`, consumers: Breaking, publishers: Compatible},
	{rule: "type-changed", old: `{"type":"object","properties":{"a":{"type":"string"}}}`, new: `{"type":"object","properties":{"a":{"type":"integer"}}}`, consumers: Breaking, publishers: Breaking},
	{rule: "type-changed", old: `{"type":"object","properties":{"a":{"type":"integer"}}}`, new: `{"type":"object","properties":{"a":{"type":"number"}}}`, consumers: Breaking, publishers: Compatible},
	{rule: "type-changed", old: `{"type":"object","properties":{"a":{"type":["string","null"]}}}`, new: `{"type":"object","properties":{"a":{"type":"string"}}}`, receive: true, consumers: Compatible, publishers: Breaking},
	{rule: "format-changed", old: `{"type":"string"}`, new: `{"type":"string","format":"date-time"}`, receive: true, consumers: Compatible, publishers: Breaking},
	{rule: "format-changed", old: `{"type":"string","format":"uuid"}`, new: `{"type":"string","format":"date-time"}`, consumers: Breaking, publishers: Breaking},
	{rule: "const-changed", old: `{"type":"string","const":"a"}`, new: `{"type":"string","const":"b"}`, consumers: Breaking, publishers: Breaking},
	{rule: "enum-added", old: `{"type":"string"}`, new: `{"type":"string","enum":["A","B"]}`, receive: true, consumers: Compatible, publishers: Breaking},
	{rule: "enum-removed", old: `{"type":"string","enum":["A","B"]}`, new: `{"type":"string"}`, consumers: Breaking, publishers: Compatible},
	{rule: "enum-value-removed", old: `{"type":"string","enum":["A","B"]}`, new: `{"type":"string","enum":["A"]}`, receive: true, consumers: Compatible, publishers: Breaking},
	{rule: "enum-value-removed", old: `{"type":"string","enum":["A","B"]}`, new: `{"type":"string","enum":["A"]}`, consumers: Compatible, publishers: Breaking},
	{rule: "enum-value-added", old: `{"type":"string","enum":["A"]}`, new: `{"type":"string","enum":["A","B"]}`, consumers: Breaking, publishers: Compatible},
	{rule: "additional-properties-refused", old: `{"type":"object"}`, new: `{"type":"object","additionalProperties":false}`, receive: true, consumers: Compatible, publishers: Breaking},
	{rule: "additional-properties-allowed", old: `{"type":"object","additionalProperties":false}`, new: `{"type":"object"}`, consumers: Compatible, publishers: Compatible},
	{rule: "composition-changed", old: `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, new: `{"oneOf":[{"type":"string"}]}`, consumers: Breaking, publishers: Breaking},
	{rule: "field-number-changed", old: `{"type":"object","properties":{"a":{"type":"string","x-protobuf-number":1}}}`, new: `{"type":"object","properties":{"a":{"type":"string","x-protobuf-number":2}}}`, consumers: Breaking, publishers: Breaking},
	{rule: "field-number-reused", old: `{"type":"object","properties":{"a":{"type":"string","x-protobuf-number":1}}}`, new: `{"type":"object","properties":{"b":{"type":"integer","x-protobuf-number":1}}}`, consumers: Breaking, publishers: Breaking, also: []string{"property-removed", "property-added"}},
	// The rules reach properties through $refs, arrays and maps.
	{rule: "property-removed", old: `{"type":"object","properties":{"lines":{"type":"array","items":{"$ref":"#/components/schemas/Line"}}}}`, new: `{"type":"object","properties":{"lines":{"type":"array","items":{"type":"object"}}}}`, consumers: Breaking, publishers: Compatible},
	{rule: "type-changed", old: `{"type":"object","additionalProperties":{"type":"integer"}}`, new: `{"type":"object","additionalProperties":{"type":"string"}}`, consumers: Breaking, publishers: Breaking},
}

func TestSchemaRules(t *testing.T) {
	for _, tc := range schemaRuleCases {
		action := actionSend
		if tc.receive {
			action = actionReceive
		}
		t.Run(tc.rule+"/"+action, func(t *testing.T) {
			old := mustParse(t, "old.json", payloadDoc("1.0.0", action, tc.old))
			new := mustParse(t, "new.json", payloadDoc("1.1.0", action, tc.new))
			r, err := Diff(old, new)
			if err != nil {
				t.Fatal(err)
			}
			c := findChange(t, r, tc.rule)
			if c.Consumers != tc.consumers || c.Publishers != tc.publishers {
				t.Errorf("%s: consumers %s, publishers %s; want %s, %s", tc.rule, c.Consumers, c.Publishers, tc.consumers, tc.publishers)
			}
			dependent := tc.publishers
			if action == actionSend {
				dependent = tc.consumers
			}
			if c.Breaking != (dependent == Breaking) {
				t.Errorf("%s: Breaking %v for a message the service %ss", tc.rule, c.Breaking, action)
			}
			want := append([]string{tc.rule}, tc.also...)
			for _, got := range r.Changes {
				if !slices.Contains(want, got.Rule) {
					t.Errorf("unexpected change %+v", got)
				}
			}
		})
	}
}

// diffSpecs compares the documents build makes of two specs.
func diffSpecs(t testing.TB, old, new *Spec, build func(*Spec) (*Document, error)) *Report {
	t.Helper()
	o, err := build(old)
	if err != nil {
		t.Fatal(err)
	}
	n, err := build(new)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Diff(o, n)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustParse(t testing.TB, name, text string) *Document {
	t.Helper()
	d, err := Parse(name, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func findChange(t *testing.T, r *Report, rule string) Change {
	t.Helper()
	for _, c := range r.Changes {
		if c.Rule == rule {
			return c
		}
	}
	t.Fatalf("no %s change in %+v", rule, r.Changes)
	return Change{}
}

// The operation rules, on documents generated from declarations.

type evA struct {
	ID string `json:"id"`
}

func (evA) EventType() string { return "test.A" }

type evB struct {
	ID string `json:"id"`
}

func (evB) EventType() string { return "test.B" }

type cmdC struct {
	ID string `json:"id"`
}

func (cmdC) CommandType() string { return "test.C" }

type replyOK struct{}

func (replyOK) ReplyType() string { return "test.OK" }

type replyNo struct{}

func (replyNo) ReplyType() string { return "test.No" }

type cmdD struct{}

func (cmdD) CommandType() string { return "test.D" }

type replyD struct{}

func (replyD) ReplyType() string { return "test.DDone" }

type operationRuleCase struct {
	rule                  string
	old, new              func(*Spec)
	breaking              bool
	consumers, publishers Effect
}

var operationRuleCases = []operationRuleCase{
	{rule: "channel-removed",
		old: func(s *Spec) { Publishes[evA](s, "X"); Publishes[evB](s, "Y") },
		new: func(s *Spec) { Publishes[evB](s, "Y") }, breaking: true, consumers: Breaking, publishers: Compatible},
	{rule: "channel-removed",
		old: func(s *Spec) { Handles[cmdC](s, "commands"); Publishes[evB](s, "Y") },
		new: func(s *Spec) { Publishes[evB](s, "Y") }, breaking: true, consumers: Compatible, publishers: Breaking},
	{rule: "channel-added",
		old: func(s *Spec) { Publishes[evB](s, "Y") },
		new: func(s *Spec) { Publishes[evB](s, "Y"); Consumes[evA](s, "Z") }, consumers: Compatible, publishers: Compatible},
	{rule: "operation-removed",
		old: func(s *Spec) { Publishes[evA](s, "X"); Publishes[evB](s, "X") },
		new: func(s *Spec) { Publishes[evB](s, "X") }, breaking: true, consumers: Breaking, publishers: Compatible},
	{rule: "operation-removed",
		old: func(s *Spec) { Consumes[evA](s, "X"); Consumes[evB](s, "X") },
		new: func(s *Spec) { Consumes[evB](s, "X") }, breaking: true, consumers: Compatible, publishers: Breaking},
	{rule: "operation-added",
		old: func(s *Spec) { Publishes[evB](s, "X") },
		new: func(s *Spec) { Publishes[evA](s, "X"); Publishes[evB](s, "X") }, consumers: Compatible, publishers: Compatible},
	{rule: "reply-removed",
		old: func(s *Spec) { Handles[cmdC](s, "commands", Replies[replyOK](), Fails[replyNo]()) },
		new: func(s *Spec) { Handles[cmdC](s, "commands", Replies[replyOK]()) }, breaking: true, consumers: Breaking, publishers: Compatible},
	{rule: "reply-removed",
		old: func(s *Spec) { Sends[cmdC](s, "commands", Replies[replyOK](), Fails[replyNo]()) },
		new: func(s *Spec) { Sends[cmdC](s, "commands", Replies[replyOK]()) }, breaking: true, consumers: Compatible, publishers: Breaking},
	{rule: "reply-added",
		old: func(s *Spec) { Handles[cmdC](s, "commands", Replies[replyOK]()) },
		new: func(s *Spec) { Handles[cmdC](s, "commands", Replies[replyOK](), Fails[replyNo]()) }, breaking: true, consumers: Breaking, publishers: Compatible},
	{rule: "reply-added", // the reply of a command the service did not handle before
		old: func(s *Spec) { Handles[cmdC](s, "commands", Replies[replyOK]()) },
		new: func(s *Spec) {
			Handles[cmdC](s, "commands", Replies[replyOK]())
			Handles[cmdD](s, "commands", Replies[replyD]())
		}, consumers: Compatible, publishers: Compatible},
	{rule: "reply-added",
		old: func(s *Spec) { Sends[cmdC](s, "commands", Replies[replyOK]()) },
		new: func(s *Spec) { Sends[cmdC](s, "commands", Replies[replyOK](), Fails[replyNo]()) }, consumers: Compatible, publishers: Compatible},
	{rule: "content-type-changed",
		old: func(s *Spec) { Publishes[evA](s, "X") },
		new: func(s *Spec) { Publishes[evA](s, "X", ContentType("application/avro")) }, breaking: true, consumers: Breaking, publishers: Breaking},
}

func TestOperationRules(t *testing.T) {
	for _, tc := range operationRuleCases {
		t.Run(tc.rule, func(t *testing.T) {
			os, ns := New("svc", "1.0.0"), New("svc", "2.0.0")
			tc.old(os)
			tc.new(ns)
			c := findChange(t, diffSpecs(t, os, ns, (*Spec).AsyncAPI), tc.rule)
			if c.Breaking != tc.breaking || c.Consumers != tc.consumers || c.Publishers != tc.publishers {
				t.Errorf("got %+v; want breaking %v, consumers %s, publishers %s", c, tc.breaking, tc.consumers, tc.publishers)
			}
		})
	}
}

// The rules that need documents no declaration writes.
func TestHandWrittenRules(t *testing.T) {
	replyDoc := func(version, location string) string {
		return fmt.Sprintf(`{"asyncapi":"3.0.0","info":{"title":"t","version":%q},
  "channels":{"c":{"address":"c","messages":{"m":{"name":"C","payload":{"type":"object"}}}},
    "r":{"address":null,"messages":{"ok":{"name":"OK","payload":{"type":"object"}}}}},
  "operations":{"op":{"action":"receive","channel":{"$ref":"#/channels/c"},
    "reply":{"address":{"location":%q},"channel":{"$ref":"#/channels/r"}}}}}`, version, location)
	}
	old := mustParse(t, "old.json", replyDoc("1.0.0", "$message.header#/command_reply_to"))
	new := mustParse(t, "new.json", replyDoc("2.0.0", "$message.header#/reply_to"))
	r, err := Diff(old, new)
	if err != nil {
		t.Fatal(err)
	}
	if c := findChange(t, r, "reply-address-changed"); !c.Breaking || c.Consumers != Breaking {
		t.Errorf("reply-address-changed: %+v", c)
	}

	avro := func(version, schema string) string {
		return fmt.Sprintf(`{"asyncapi":"3.0.0","info":{"title":"t","version":%q},
  "channels":{"c":{"address":"c","messages":{"m":{"name":"M","payload":{"schemaFormat":"application/vnd.apache.avro;version=1.9.0","schema":%s}}}}},
  "operations":{"op":{"action":"send","channel":{"$ref":"#/channels/c"}}}}`, version, schema)
	}
	old = mustParse(t, "old.json", avro("1.0.0", `{"type":"record","name":"M","fields":[{"name":"a","type":"string"}]}`))
	new = mustParse(t, "new.json", avro("2.0.0", `{"type":"record","name":"M","fields":[]}`))
	if r, err = Diff(old, new); err != nil {
		t.Fatal(err)
	}
	if c := findChange(t, r, "payload-changed"); !c.Breaking {
		t.Errorf("payload-changed: %+v", c)
	}
}
