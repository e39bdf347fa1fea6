package codec_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/courier-go/courier/codec"
)

// Two versions of one event type, as two services built at different
// times would have them.
type orderCreatedV1 struct {
	OrderID string `json:"orderId"`
	Total   int64  `json:"total"`
}

type orderCreatedV2 struct {
	OrderID    string   `json:"orderId"`
	Total      int64    `json:"total"`
	Currency   string   `json:"currency"`
	LineItems  []string `json:"lineItems"`
	Restaurant *struct {
		ID string `json:"id"`
	} `json:"restaurant"`
}

func TestJSONIsATolerantReader(t *testing.T) {
	var set codec.Set
	newer := orderCreatedV2{OrderID: "o-1", Total: 42, Currency: "EUR", LineItems: []string{"pizza"}}
	data, ct, err := set.Encode(newer)
	if err != nil || ct != codec.ContentTypeJSON {
		t.Fatalf("Encode = %q, %v", ct, err)
	}
	var old orderCreatedV1
	if err := set.Decode(ct, data, &old); err != nil {
		t.Fatalf("an old reader refused a newer payload: %v", err)
	}
	if old != (orderCreatedV1{OrderID: "o-1", Total: 42}) {
		t.Fatalf("old reader got %+v", old)
	}
	data, _, _ = set.Encode(orderCreatedV1{OrderID: "o-2", Total: 7})
	var got orderCreatedV2
	if err := set.Decode(ct, data, &got); err != nil {
		t.Fatalf("a new reader refused an older payload: %v", err)
	}
	if got.OrderID != "o-2" || got.Total != 7 || got.Currency != "" || got.LineItems != nil || got.Restaurant != nil {
		t.Fatalf("new reader got %+v; missing fields must keep their zero values", got)
	}
}

// orderDescriptor builds version 1 or 2 of a protobuf message at run time,
// as protoc would for two versions of one .proto file.
func orderDescriptor(t *testing.T, version int) protoreflect.MessageDescriptor {
	t.Helper()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	i64 := descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	fields := []*descriptorpb.FieldDescriptorProto{
		{Name: proto.String("order_id"), Number: proto.Int32(1), Type: str, Label: opt, JsonName: proto.String("orderId")},
		{Name: proto.String("total"), Number: proto.Int32(2), Type: i64, Label: opt, JsonName: proto.String("total")},
	}
	if version == 2 {
		fields = append(fields, &descriptorpb.FieldDescriptorProto{Name: proto.String("currency"), Number: proto.Int32(3), Type: str, Label: opt, JsonName: proto.String("currency")})
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("order.proto"),
		Package:     proto.String("courier.test"),
		Syntax:      proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("OrderCreated"), Field: fields}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().Get(0)
}

func TestProtobufIsATolerantReader(t *testing.T) {
	var set codec.Set
	v1, v2 := orderDescriptor(t, 1), orderDescriptor(t, 2)
	newer := dynamicpb.NewMessage(v2)
	newer.Set(v2.Fields().ByName("order_id"), protoreflect.ValueOfString("o-1"))
	newer.Set(v2.Fields().ByName("total"), protoreflect.ValueOfInt64(42))
	newer.Set(v2.Fields().ByName("currency"), protoreflect.ValueOfString("EUR"))
	data, ct, err := set.Encode(newer)
	if err != nil || ct != codec.ContentTypeProtobuf {
		t.Fatalf("Encode = %q, %v", ct, err)
	}
	old := dynamicpb.NewMessage(v1)
	if err := set.Decode(ct, data, old); err != nil {
		t.Fatalf("an old reader refused a newer payload: %v", err)
	}
	if old.Get(v1.Fields().ByName("order_id")).String() != "o-1" || old.Get(v1.Fields().ByName("total")).Int() != 42 {
		t.Fatalf("old reader got %v", old)
	}
	olderData, _, _ := set.Encode(old)
	got := dynamicpb.NewMessage(v2)
	if err := set.Decode(ct, olderData, got); err != nil {
		t.Fatalf("a new reader refused an older payload: %v", err)
	}
	if got.Get(v2.Fields().ByName("currency")).String() != "EUR" {
		// Unknown fields survive a round trip through the old reader.
		t.Fatalf("currency lost through an old reader: %v", got)
	}
	fresh, _, _ := set.Encode(func() proto.Message {
		m := dynamicpb.NewMessage(v1)
		m.Set(v1.Fields().ByName("order_id"), protoreflect.ValueOfString("o-2"))
		return m
	}())
	got = dynamicpb.NewMessage(v2)
	if err := set.Decode(ct, fresh, got); err != nil || got.Get(v2.Fields().ByName("currency")).String() != "" || got.Get(v2.Fields().ByName("total")).Int() != 0 {
		t.Fatalf("new reader of an old payload: %v %v", got, err)
	}
}

func TestChoosingCodecs(t *testing.T) {
	var set codec.Set
	if set.For(wrapperspb.String("x")) != codec.Protobuf || set.For(orderCreatedV1{}) != codec.JSON {
		t.Fatal("default choice by value is wrong")
	}
	custom := set.Use(orderCreatedV1{}, codec.Protobuf)
	if custom.For(orderCreatedV1{}) != codec.Protobuf || set.For(orderCreatedV1{}) != codec.JSON {
		t.Fatal("Use changed the wrong set")
	}
	for ct, want := range map[string]codec.Codec{"": codec.JSON, "application/json; charset=utf-8": codec.JSON, "application/x-protobuf": codec.Protobuf} {
		if got, err := set.ByContentType(ct); err != nil || got != want {
			t.Errorf("ByContentType(%q) = %v, %v", ct, got, err)
		}
	}
	if _, err := set.ByContentType("text/csv"); !errors.Is(err, codec.ErrUnknownContentType) {
		t.Fatalf("unknown content type: %v", err)
	}
	if err := set.Decode(codec.ContentTypeJSON, []byte("{"), &orderCreatedV1{}); err == nil {
		t.Fatal("malformed JSON decoded")
	}
	if _, err := codec.Protobuf.Marshal(orderCreatedV1{}); !errors.Is(err, codec.ErrNotProto) {
		t.Fatalf("protobuf codec on a struct: %v", err)
	}
}
