// Package apispec describes a service's API in machine-readable contracts
// and checks that a new version of a contract does not break the old one's
// consumers: AsyncAPI 3.0 documents for its messaging, OpenAPI 3.1
// documents for its REST operations, and .proto files, which stay the
// source of truth for gRPC.
//
// # Declaring an API
//
// A Spec collects what a service sends and receives and the REST
// operations it serves; the documents are built from the Go types:
//
//	s := apispec.New("kitchen-service", "1.2.0")
//	apispec.Publishes[TicketCreated](s, "Ticket")                 // events of aggregate Ticket
//	apispec.Consumes[OrderApproved](s, "Order")                   // events it handles
//	apispec.Handles[CreateTicket](s, "kitchen",                   // commands it handles
//		apispec.Replies[TicketAccepted](), apispec.Fails[TicketRefused]())
//	apispec.Sends[NotifyCourier](s, "delivery")                   // a one-way command
//	apispec.Operation[CreateTicket, Ticket](s, "POST /tickets",
//		apispec.Status(http.StatusCreated), apispec.Problems(400, 409))
//	asyncDoc, err := s.AsyncAPI()                                 // doc.JSON(), doc.YAML()
//	restDoc, err := s.OpenAPI()
//	mux.Handle("/api/", http.StripPrefix("/api", s.Handler()))  // serves both
//
// A message is named as Courier names it on the wire: the type header
// (event-type, command_type, reply_type) carries the name its EventType,
// CommandType or ReplyType method returns, or its Go type's name. Its
// AsyncAPI message lists Courier's headers (ID, DESTINATION, DATE,
// PARTITION_ID, content-type and those of its kind, the type header fixed
// to its name) and its payload's JSON Schema. The schema of a Go type comes
// from github.com/invopop/jsonschema, configured for encoding/json and for
// tolerant readers: names from the json tags, a field without omitempty
// (or omitzero) required, since the writer always sends it, and properties
// not listed allowed, since readers ignore them; jsonschema struct tags
// add keywords (`jsonschema:"enum=A,enum=B"`). A protobuf message is
// described from its descriptor as protojson writes it, each property
// with its field number (x-protobuf-number), and sent as
// application/x-protobuf. A command with replies gets a reply on the
// channel its command_reply_to header names, which lists its Replies, its
// Fails and courier.HandlerFailure. One message type declared with two
// Go types is an error.
//
// A dispatcher that lists its handlers (HandlerRegistry) describes what a
// service receives without the handlers being declared twice:
// s.Receives(apispec.Event, "", eventsDispatcher).
//
// A REST operation's pattern is a net/http ServeMux pattern; its request
// and response bodies are JSON of the Go types (NoBody for none) and its
// errors RFC 9457 problems (application/problem+json, as
// httpx.WriteProblem writes them). A Validator checks requests and
// responses against the document with kin-openapi's openapi3filter, for
// tests; its RoundTripper checks every call a test client makes.
//
// The generated documents pass the AsyncAPI project's parser
// (@asyncapi/parser) and Redocly's linter (@redocly/cli, with the
// recommended rules less security and license), which the package's tests
// run when they are installed (scripts/services/apitools.sh).
//
// # Compatibility
//
// Diff compares two versions of a document (read by Parse or Load, or
// generated) and classifies every change for the two sides of a message:
// its consumers (readers) and its publishers (writers). A change is
// breaking when it breaks the side that depends on the document: the
// consumers of what the service sends or answers with, the publishers of
// what it receives. For OpenAPI and protobuf the side is the clients.
// Check compares a directory of documents with a committed baseline of the
// same paths; the courier api command runs both.
//
// OpenAPI documents are compared by oasdiff's checks, every one at every
// level: its errors and warnings are breaking, its information compatible.
// The other rules are Courier's own; each has a test:
//
//	rule                           format    consumers   publishers  the change
//	channel-removed                asyncapi  depends     depends     a channel the service used is gone
//	channel-added                  asyncapi  compatible  compatible  a new channel
//	operation-removed              asyncapi  depends     depends     a message type no longer sent (breaks consumers) or received (publishers) on a channel
//	operation-added                asyncapi  compatible  compatible  a message type newly sent or received; consumers skip event types they do not know
//	reply-removed                  asyncapi  depends     depends     a reply type the service answered with (consumers) or accepted (publishers) is gone
//	reply-added                    asyncapi  depends     compatible  a reply type the service now answers an existing command with breaks callers; one it now accepts does not
//	reply-address-changed          asyncapi  depends     depends     the header naming the reply channel changed
//	content-type-changed           asyncapi  breaking    breaking    a message's content type changed
//	payload-changed                asyncapi  breaking    breaking    a payload in a schema format the rules do not read changed
//	property-removed               asyncapi  breaking    depends     a property is gone or renamed (publishers break only if extra properties are refused)
//	property-added                 asyncapi  compatible  compatible  an optional property is new
//	required-property-added        asyncapi  compatible  breaking    a new property is required
//	property-required              asyncapi  compatible  breaking    a property became required
//	property-optional              asyncapi  breaking    compatible  a property is no longer required
//	type-changed                   asyncapi  depends     depends     wider (integer to number, null added) breaks consumers, narrower publishers, other both
//	format-changed                 asyncapi  depends     depends     a format added breaks publishers, removed consumers, changed both
//	const-changed                  asyncapi  depends     depends     a fixed value added breaks publishers, removed consumers, changed both
//	enum-added                     asyncapi  compatible  breaking    values became limited to an enum
//	enum-removed                   asyncapi  breaking    compatible  values are no longer limited to an enum
//	enum-value-removed             asyncapi  compatible  breaking    an enum value is gone
//	enum-value-added               asyncapi  breaking    compatible  an enum value is new
//	additional-properties-refused  asyncapi  compatible  breaking    properties not listed became refused
//	additional-properties-allowed  asyncapi  compatible  compatible  properties not listed became allowed
//	composition-changed            asyncapi  breaking    breaking    the number of schemas of an allOf, anyOf or oneOf changed
//	field-number-changed           asyncapi  breaking    breaking    a protobuf-derived property's field number changed
//	field-number-reused            asyncapi  breaking    breaking    a new protobuf-derived property took a removed one's field number
//	package-changed                proto     breaking                the package changed, and with it every full name
//	message-removed                proto     breaking                a message is gone
//	message-added                  proto     compatible              a new message
//	enum-type-removed              proto     breaking                an enum is gone
//	enum-type-added                proto     compatible              a new enum
//	service-removed                proto     breaking                a service is gone
//	service-added                  proto     compatible              a new service
//	field-removed                  proto     breaking                a field is gone, its number and name not reserved
//	field-removed-reserved         proto     compatible              a field is gone, its number and name reserved
//	field-number-changed           proto     breaking                a field kept its name under another number
//	field-number-reused            proto     breaking                a field number now belongs to a field of another name and type
//	field-renamed                  proto     breaking                a field number kept its type under another name (protojson, generated code)
//	field-type-changed             proto     breaking                a field's type changed
//	field-cardinality-changed      proto     breaking                a field became repeated, a map, optional or singular
//	field-oneof-changed            proto     breaking                a field moved into, out of or between oneofs
//	field-json-name-changed        proto     breaking                a field's JSON name changed
//	reserved-field-reused          proto     breaking                a new field takes a number or name the older version reserved
//	field-added                    proto     compatible              a new field
//	enum-value-removed             proto     breaking                an enum value is gone, not reserved
//	enum-value-removed-reserved    proto     compatible              an enum value is gone, its number and name reserved
//	enum-value-renamed             proto     breaking                an enum number has another name (protojson writes names)
//	enum-value-added               proto     compatible              a new enum value
//	rpc-removed                    proto     breaking                an rpc is gone
//	rpc-added                      proto     compatible              a new rpc
//	rpc-request-changed            proto     breaking                an rpc's request type changed
//	rpc-response-changed           proto     breaking                an rpc's response type changed
//	rpc-streaming-changed          proto     breaking                an rpc's streaming changed
//	document-removed               any       breaking                a baseline document is missing from the current version
//	document-added                 any       compatible              a document new in the current version
//
// The JSON Schema rules follow $refs and apply through properties, array
// items and map values, naming the place as a path (payload.lines[].cents).
// The protobuf rules match buf's WIRE_JSON category and its rules against
// deleting messages, enums, services and rpcs; the tests run buf breaking
// on every case when it is installed, as a second opinion. Rules returns
// the table.
//
// # Versions
//
// Every document carries its API version: info.version, or for a .proto
// file a line "// api-version: 1.2.0", or else the major version of a
// package that ends in vN (which then says nothing of minor versions, and
// must agree with the comment when both are there). A Report says the
// least increase its changes require and whether the new version follows
// semantic versioning: a breaking change needs a new major version, a
// compatible change at least a new minor one; before 1.0.0, a new minor
// and a new patch version. A major version runs beside the previous one
// under its own document (orders.v2 beside orders.v1) until the older is
// retired.
//
// # The robustness principle
//
// Courier's readers are tolerant (package codec): unknown fields are
// ignored and missing fields keep their zero values, which the reader
// turns into its defaults. A writer may therefore add optional fields in a
// minor version, and old readers keep working; what needs a major version
// is what a tolerant reader cannot absorb: a field it relies on removed
// or renamed, a type changed, a field it may not receive made required.
// The rules encode exactly this; TestRobustnessPrinciple shows a version 1
// reader of a version 2 writer and the other way round.
//
// # Bad input
//
// A document that does not parse, is of an unknown format or version,
// lacks its API version, or has a $ref that points nowhere (or outside
// the document) is refused with a *DocumentError naming the file and the
// place in it as a JSON pointer (or file:line:column), wrapping
// ErrMalformed, ErrNotAPIDocument, ErrUnsupportedVersion or
// ErrUnresolvedRef. No input panics; the decoders are fuzzed.
package apispec
