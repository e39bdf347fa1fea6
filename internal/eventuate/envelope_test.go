package eventuate

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseFixtures reads the envelopes Eventuate writes (see
// testdata/README.md for the sources) as Eventuate's consumers do.
func TestParseFixtures(t *testing.T) {
	cases := []struct {
		file    string
		payload string
		headers map[string]string
	}{
		{"event.envelope",
			`{"orderDetails":{"lineItems":[{"quantity":5,"menuItemId":"1","name":"Chicken Vindaloo","price":"12.34"}],"orderTotal":"61.70","restaurantId":1,"consumerId":1511300065921},"deliveryAddress":"1 Main St\nApt \"B\"","restaurantName":"Ajanta"}`,
			map[string]string{
				"ID":                   "0000018c39a0b5e2-0242ac1200050000",
				"DESTINATION":          "net.chrisrichardson.ftgo.orderservice.domain.Order",
				"DATE":                 "Tue, 5 Dec 2023 10:15:30 GMT",
				"PARTITION_ID":         "1511300065921",
				"event-aggregate-type": "net.chrisrichardson.ftgo.orderservice.domain.Order",
				"event-aggregate-id":   "1511300065921",
				"event-type":           "net.chrisrichardson.ftgo.orderservice.api.events.OrderCreatedEvent",
			}},
		{"command.envelope",
			`{"customerId":1511300065921,"orderId":4,"orderTotal":{"amount":"61.70"}}`,
			map[string]string{
				"ID":                   "0000018c39a0b9ca-0242ac1200050000",
				"DESTINATION":          "customerService",
				"DATE":                 "Tue, 5 Dec 2023 10:15:31 GMT",
				"PARTITION_ID":         "7f6e2a5c-3b1d-4f0e-9a8b-2c4d6e8f0a1b",
				"command_type":         "io.eventuate.examples.tram.sagas.ordersandcustomers.customers.api.commands.ReserveCreditCommand",
				"command_reply_to":     "io.eventuate.examples.tram.sagas.ordersandcustomers.orders.sagas.createorder.CreateOrderSaga-reply",
				"command_resource":     "/customer/1511300065921",
				"command__destination": "customerService",
			}},
		{"text.envelope",
			"tab\there, unit separator \x1f, delete \x7f, quote \" and backslash \\, line\u2028separator, café € 😀",
			map[string]string{
				"ID":           "0000018c39a0bdb2-0242ac1200050000",
				"DESTINATION":  "courier-text",
				"DATE":         "Tue, 5 Dec 2023 10:15:32 GMT",
				"PARTITION_ID": "k-1",
				"x-note":       "line one\nline two\r\n\x00end",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			payload, headers, err := ParseEnvelope(fixture(t, tc.file))
			if err != nil {
				t.Fatalf("ParseEnvelope: %v", err)
			}
			if payload != tc.payload {
				t.Errorf("payload = %q, want %q", payload, tc.payload)
			}
			if !maps.Equal(headers, tc.headers) {
				t.Errorf("headers = %v, want %v", headers, tc.headers)
			}
		})
	}
}

// TestAppendEnvelopeWritesEventuatesBytes: the envelope of each fixture's
// message is the fixture, byte for byte: Jackson's escaping and the
// HashMap order of the headers.
func TestAppendEnvelopeWritesEventuatesBytes(t *testing.T) {
	for _, file := range []string{"event.envelope", "command.envelope", "text.envelope"} {
		t.Run(file, func(t *testing.T) {
			want := fixture(t, file)
			payload, headers, err := ParseEnvelope(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendEnvelope(nil, []byte(payload), headers)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("AppendEnvelope =\n%s\nwant\n%s", got, want)
			}
		})
	}
	t.Run("reply.envelope", func(t *testing.T) {
		want := strings.NewReplacer("${ID}", "0000018c39a0c1a0-5d3b1f2e4a6c8e00", "${DATE}", "Tue, 5 Dec 2023 10:15:33 GMT").
			Replace(string(fixture(t, "reply.envelope")))
		headers := map[string]string{
			"ID":                        "0000018c39a0c1a0-5d3b1f2e4a6c8e00",
			"DATE":                      "Tue, 5 Dec 2023 10:15:33 GMT",
			"DESTINATION":               "io.eventuate.examples.tram.sagas.ordersandcustomers.orders.sagas.createorder.CreateOrderSaga-reply",
			"PARTITION_ID":              "7f6e2a5c-3b1d-4f0e-9a8b-2c4d6e8f0a1b",
			"content-type":              "application/json",
			"reply_type":                "io.eventuate.examples.tram.sagas.ordersandcustomers.customers.api.replies.CustomerCreditReserved",
			"reply_outcome-type":        "SUCCESS",
			"reply_to_message_id":       "0000018c39a0b9ca-0242ac1200050000",
			"commandreply_type":         "io.eventuate.examples.tram.sagas.ordersandcustomers.customers.api.commands.ReserveCreditCommand",
			"commandreply_reply_to":     "io.eventuate.examples.tram.sagas.ordersandcustomers.orders.sagas.createorder.CreateOrderSaga-reply",
			"commandreply__destination": "customerService",
			"commandreply_resource":     "/customer/1511300065921",
		}
		got, err := AppendEnvelope(nil, []byte(`{"creditReservationId":7}`), headers)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("AppendEnvelope =\n%s\nwant\n%s", got, want)
		}
	})
}

func TestJavaOrderGrowsTheTable(t *testing.T) {
	// Orders computed apart from this code (see testdata/README.md): 12
	// names fit a table of 16 buckets, where "DATE" (0x1fe7ae) shares
	// bucket 1 with "a" and comes first, being put first; 13 need 32,
	// where "DATE", "DESTINATION" and "ID" land in 17, 23 and 27.
	twelve := []string{"ID", "DATE", "DESTINATION", "a", "b", "c", "d", "e", "f", "g", "h", "i"}
	if got, want := javaOrder(slices.Clone(twelve)), []string{"DATE", "a", "b", "c", "d", "e", "f", "DESTINATION", "g", "h", "i", "ID"}; !slices.Equal(got, want) {
		t.Errorf("12 names: %v, want %v", got, want)
	}
	thirteen := append(twelve, "j")
	if got, want := javaOrder(thirteen), []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "DATE", "DESTINATION", "ID"}; !slices.Equal(got, want) {
		t.Errorf("13 names: %v, want %v", got, want)
	}
	if h := javaStringHash("DESTINATION"); h != 0x2b19d7ee {
		t.Errorf("hash of DESTINATION = %#x, want 0x2b19d7ee", h)
	}
	// A character outside the BMP counts as its two UTF-16 code units:
	// "😀" is \ud83d\ude00, 0xd83d*31 + 0xde00.
	if h := javaStringHash("😀"); h != 0xd83d*31+0xde00 {
		t.Errorf("hash of U+1F600 = %#x", h)
	}
}

func TestParseEnvelopeRefusesWhatEventuateCannotRead(t *testing.T) {
	for _, in := range []string{
		``, `null`, `[]`, `"x"`, `{`, `not json`,
		`{"headers":{}}`,
		`{"payload":null,"headers":{}}`,
		`{"payload":1,"headers":{}}`,
		`{"payload":"p"}`,
		`{"payload":"p","headers":null}`,
		`{"payload":"p","headers":[]}`,
		`{"payload":"p","headers":{"a":1}}`,
		`{"payload":"p","headers":{"a":null}}`,
		`{"payload":"p","headers":{}} trailing`,
	} {
		if _, _, err := ParseEnvelope([]byte(in)); !errors.Is(err, ErrMalformedEnvelope) {
			t.Errorf("ParseEnvelope(%q) = %v, want ErrMalformedEnvelope", in, err)
		}
	}
	// Unknown members are ignored, as JSonMapper ignores unknown
	// properties, and the last of a repeated member counts.
	p, h, err := ParseEnvelope([]byte(`{"payload":"a","extra":[1],"payload":"b","headers":{"ID":"x"}}`))
	if err != nil || p != "b" || h["ID"] != "x" {
		t.Errorf("ParseEnvelope = %q, %v, %v", p, h, err)
	}
}

func TestAppendEnvelopeRefusesBytesThatAreNotText(t *testing.T) {
	if _, err := AppendEnvelope(nil, []byte{0xff}, nil); !errors.Is(err, ErrNotText) {
		t.Errorf("payload 0xff: %v", err)
	}
	if _, err := AppendEnvelope(nil, nil, map[string]string{"a": "\xfe"}); !errors.Is(err, ErrNotText) {
		t.Errorf("header value 0xfe: %v", err)
	}
}

func TestFormatID(t *testing.T) {
	// DatabaseIdGenerator: new Int128(databaseId, serviceId), asString.
	if got := FormatID(1701771330123, 7); got != "0000018c3979c24b-0000000000000007" {
		t.Errorf("FormatID = %q", got)
	}
}

// FuzzParseEnvelope: any bytes either fail with ErrMalformedEnvelope or
// give a message whose envelope reads back the same.
func FuzzParseEnvelope(f *testing.F) {
	for _, name := range []string{"event.envelope", "command.envelope", "text.envelope", "reply.envelope"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"payload":"\ud83d","headers":{"\u0000":""}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		payload, headers, err := ParseEnvelope(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedEnvelope) {
				t.Fatalf("error %v does not wrap ErrMalformedEnvelope", err)
			}
			return
		}
		again, err := AppendEnvelope(nil, []byte(payload), headers)
		if err != nil {
			t.Fatalf("AppendEnvelope of what ParseEnvelope read: %v", err)
		}
		p2, h2, err := ParseEnvelope(again)
		if err != nil || p2 != payload || !maps.Equal(h2, headers) {
			t.Fatalf("round trip: %q %v %v, want %q %v", p2, h2, err, payload, headers)
		}
	})
}
