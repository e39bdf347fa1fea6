package apispec

// Rule describes one compatibility rule of Courier's own: the AsyncAPI and
// JSON Schema rules, the protobuf rules and the document rules. OpenAPI
// changes are classified by oasdiff's rules instead.
type Rule struct {
	ID     string `json:"id"`
	Format Format `json:"format,omitempty"` // empty for the rules of every format
	// Consumers and Publishers are the rule's effect on the readers and
	// the writers of a message (for protobuf, Consumers is its effect on
	// clients); "depends" when the change itself tells.
	Consumers  string `json:"consumers"`
	Publishers string `json:"publishers,omitempty"`
	Text       string `json:"text"`
}

const depends = "depends"

// Rules returns Courier's compatibility rules, the table of the package
// documentation.
func Rules() []Rule {
	b, c := string(Breaking), string(Compatible)
	a, p := FormatAsyncAPI, FormatProto
	return []Rule{
		{"channel-removed", a, depends, depends, "a channel the service used is gone: breaks the consumers of what it sent there and the publishers of what it received"},
		{"channel-added", a, c, c, "a new channel"},
		{"operation-removed", a, depends, depends, "the service no longer sends a message type on a channel (breaks consumers) or no longer receives it (breaks publishers)"},
		{"operation-added", a, c, c, "a message type newly sent or received on a channel; consumers skip event types they do not know"},
		{"reply-removed", a, depends, depends, "a command's reply type is gone: breaks the callers when the service answered with it, the answering service when the service accepted it"},
		{"reply-added", a, depends, c, "a new reply type: breaks the callers when the service now answers a command it handled before with it (a Call cannot decode it), compatible when it answers only new commands with it or now accepts it"},
		{"reply-address-changed", a, depends, depends, "the header that names the reply channel changed"},
		{"content-type-changed", a, b, b, "a message's content type changed"},
		{"payload-changed", a, b, b, "a payload schema in a format the rules do not read (Avro, protobuf text) changed"},
		{"property-removed", a, b, depends, "a property is gone or renamed: consumers may read it; publishers may keep sending it (breaks them only when additional properties are refused)"},
		{"property-added", a, c, c, "an optional property is new: tolerant readers ignore it"},
		{"required-property-added", a, c, b, "a new property is required: publishers do not send it"},
		{"property-required", a, c, b, "a property became required"},
		{"property-optional", a, b, c, "a property is no longer required: consumers may rely on it"},
		{"type-changed", a, depends, depends, "a type changed: a wider type (integer to number, a type added) breaks consumers, a narrower one publishers, another both"},
		{"format-changed", a, depends, depends, "a format was added (breaks publishers), removed (breaks consumers) or changed (both)"},
		{"const-changed", a, depends, depends, "a fixed value was added (publishers), removed (consumers) or changed (both)"},
		{"enum-added", a, c, b, "values became limited to an enum"},
		{"enum-removed", a, b, c, "values are no longer limited to an enum"},
		{"enum-value-removed", a, c, b, "an enum value is gone: publishers may send it"},
		{"enum-value-added", a, b, c, "an enum value is new: consumers may not handle it"},
		{"additional-properties-refused", a, c, b, "properties not listed became refused (additionalProperties: false)"},
		{"additional-properties-allowed", a, c, c, "properties not listed became allowed"},
		{"composition-changed", a, b, b, "the number of schemas of an allOf, anyOf or oneOf changed"},
		{"field-number-changed", a, b, b, "a protobuf-derived property's field number changed"},
		{"field-number-reused", a, b, b, "a new protobuf-derived property took the field number of a removed one"},
		{"package-changed", p, b, "", "the package changed, and with it every full name"},
		{"message-removed", p, b, "", "a message is gone"},
		{"message-added", p, c, "", "a new message"},
		{"enum-type-removed", p, b, "", "an enum is gone"},
		{"enum-type-added", p, c, "", "a new enum"},
		{"service-removed", p, b, "", "a service is gone"},
		{"service-added", p, c, "", "a new service"},
		{"field-removed", p, b, "", "a field is gone and its number and name are not reserved"},
		{"field-removed-reserved", p, c, "", "a field is gone and its number and name are reserved"},
		{"field-number-changed", p, b, "", "a field kept its name under another number"},
		{"field-number-reused", p, b, "", "a field number now belongs to a field of another name and type"},
		{"field-renamed", p, b, "", "a field number kept its type under another name (protojson and generated code change)"},
		{"field-type-changed", p, b, "", "a field's type changed"},
		{"field-cardinality-changed", p, b, "", "a field became repeated, a map, optional or singular"},
		{"field-oneof-changed", p, b, "", "a field moved into, out of or between oneofs"},
		{"field-json-name-changed", p, b, "", "a field's JSON name changed"},
		{"reserved-field-reused", p, b, "", "a new field takes a number or name the older version reserved"},
		{"field-added", p, c, "", "a new field"},
		{"enum-value-removed", p, b, "", "an enum value is gone and not reserved"},
		{"enum-value-removed-reserved", p, c, "", "an enum value is gone, its number and name reserved"},
		{"enum-value-renamed", p, b, "", "an enum number has another name (protojson writes names)"},
		{"enum-value-added", p, c, "", "a new enum value"},
		{"rpc-removed", p, b, "", "an rpc is gone"},
		{"rpc-added", p, c, "", "a new rpc"},
		{"rpc-request-changed", p, b, "", "an rpc's request type changed"},
		{"rpc-response-changed", p, b, "", "an rpc's response type changed"},
		{"rpc-streaming-changed", p, b, "", "an rpc's streaming changed"},
		{"document-removed", "", b, "", "a document of the baseline is missing from the current version"},
		{"document-added", "", c, "", "a document new in the current version"},
	}
}
