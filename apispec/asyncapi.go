package apispec

// The AsyncAPI 3.0 objects Courier writes. Documents are read back through
// asyncView (asyncapi_read.go), which follows $refs and keeps what the
// compatibility rules compare.

// AsyncAPIVersion is the AsyncAPI version of the documents Courier writes.
// It reads 3.0.x and 3.1.x.
const AsyncAPIVersion = "3.0.0"

type asyncapiDoc struct {
	AsyncAPI           string                     `json:"asyncapi"`
	ID                 string                     `json:"id,omitempty"`
	Info               info                       `json:"info"`
	DefaultContentType string                     `json:"defaultContentType,omitempty"`
	Channels           map[string]*asyncChannelW  `json:"channels,omitempty"`
	Operations         map[string]*asyncOperation `json:"operations,omitempty"`
	Components         *asyncComponents           `json:"components,omitempty"`
}

type info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// asyncChannelW is a channel as written; a nil Address is a dynamic one
// (a reply channel named by the command_reply_to header).
type asyncChannelW struct {
	Address     *string              `json:"address"`
	Title       string               `json:"title,omitempty"`
	Description string               `json:"description,omitempty"`
	Messages    map[string]reference `json:"messages,omitempty"`
}

type reference struct {
	Ref string `json:"$ref"`
}

type asyncMessageW struct {
	Name          string         `json:"name"`
	Summary       string         `json:"summary,omitempty"`
	Description   string         `json:"description,omitempty"`
	ContentType   string         `json:"contentType,omitempty"`
	Headers       *jsonSchema    `json:"headers,omitempty"`
	Payload       *jsonSchema    `json:"payload,omitempty"`
	CorrelationID *correlationID `json:"correlationId,omitempty"`
	// Courier records the message's kind (event, command, reply) and its Go
	// type, for readers of the document; the rules do not read them.
	Kind   string `json:"x-courier-kind,omitempty"`
	GoType string `json:"x-go-type,omitempty"`
}

type correlationID struct {
	Description string `json:"description,omitempty"`
	Location    string `json:"location"`
}

type asyncOperation struct {
	Action      string          `json:"action"`
	Channel     reference       `json:"channel"`
	Summary     string          `json:"summary,omitempty"`
	Description string          `json:"description,omitempty"`
	Messages    []reference     `json:"messages"`
	Reply       *operationReply `json:"reply,omitempty"`
}

type operationReply struct {
	Address  *replyAddress `json:"address,omitempty"`
	Channel  *reference    `json:"channel,omitempty"`
	Messages []reference   `json:"messages,omitempty"`
}

type replyAddress struct {
	Description string `json:"description,omitempty"`
	Location    string `json:"location"`
}

type asyncComponents struct {
	Schemas  map[string]*jsonSchema    `json:"schemas,omitempty"`
	Messages map[string]*asyncMessageW `json:"messages,omitempty"`
}
