package apispec

import (
	"encoding/json"
	"fmt"
	"strings"
)

// asyncView is what the compatibility rules read of an AsyncAPI 3.0
// document: its channels, operations and messages with every $ref
// followed, and the schemas, whose own $refs a schemaResolver follows.
type asyncView struct {
	version    string
	channels   map[string]*viewChannel // by pointer
	operations []*viewOperation
	messages   map[string]*viewMessage // by pointer
	schemas    *schemaResolver
	root       node
	defaultCT  string
}

type viewChannel struct {
	ptr     string
	key     string
	address string // "" for a dynamic channel
	dynamic bool
}

// id identifies the channel across two versions of a document: its
// address, or its key when it has none.
func (c *viewChannel) id() string {
	if c.dynamic {
		return "dynamic channel " + c.key
	}
	return c.address
}

type viewMessage struct {
	ptr         string
	name        string
	contentType string
	headers     *jsonSchema
	headersPtr  string
	payload     *jsonSchema
	payloadPtr  string
	opaque      string // the canonical JSON of a payload in a schema format the rules do not read
}

type viewOperation struct {
	ptr      string
	key      string
	action   string
	channel  *viewChannel
	messages []*viewMessage
	reply    *viewReply
}

type viewReply struct {
	ptr      string
	location string
	channel  *viewChannel
	messages []*viewMessage
}

// readAsyncAPI reads an AsyncAPI document's tree.
func readAsyncAPI(root node) (*asyncView, error) {
	v := &asyncView{
		channels: map[string]*viewChannel{},
		messages: map[string]*viewMessage{},
		root:     root,
	}
	v.schemas = &schemaResolver{root: root, cache: map[string]*jsonSchema{}}
	var err error
	if v.version, err = infoVersion(root); err != nil {
		return nil, err
	}
	if v.defaultCT, err = root.str("defaultContentType"); err != nil {
		return nil, err
	}
	if chans, ok := root.child("channels"); ok {
		keys, err := chans.keys()
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			c, _ := chans.child(k)
			if _, err := v.channel(c); err != nil {
				return nil, err
			}
		}
	}
	if ops, ok := root.child("operations"); ok {
		keys, err := ops.keys()
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			o, _ := ops.child(k)
			op, err := v.operation(k, o)
			if err != nil {
				return nil, err
			}
			v.operations = append(v.operations, op)
		}
	}
	for _, ptr := range sortedKeys(v.messages) {
		m := v.messages[ptr]
		for _, s := range []struct {
			schema *jsonSchema
			ptr    string
		}{{m.headers, m.headersPtr}, {m.payload, m.payloadPtr}} {
			if err := v.schemas.check(s.schema, s.ptr); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// infoVersion returns the document's info.version, which must be set.
func infoVersion(root node) (string, error) {
	in, ok := root.child("info")
	if !ok {
		return "", root.errorf("no info object")
	}
	if _, err := in.object(); err != nil {
		return "", err
	}
	version, err := in.str("version")
	if err != nil {
		return "", err
	}
	if version == "" {
		return "", in.errorf("no version: every document carries its API version in info.version")
	}
	return version, nil
}

// deref follows n's $ref, and the target's, to a node that has none.
func deref(root, n node) (node, error) {
	for hops := 0; ; hops++ {
		m, ok := n.v.(map[string]any)
		if !ok {
			return n, nil
		}
		ref, ok := m["$ref"]
		if !ok {
			return n, nil
		}
		s, ok := ref.(string)
		if !ok {
			c, _ := n.child("$ref")
			return node{}, c.errorf("want a string, have %s", kindOf(ref))
		}
		if hops == 32 {
			return node{}, &DocumentError{File: n.file, Pointer: n.ptr, Err: fmt.Errorf("%w: %q: a chain of more than 32 references (a cycle?)", ErrUnresolvedRef, s)}
		}
		next, err := lookup(root, n, s)
		if err != nil {
			return node{}, err
		}
		n = next
	}
}

func (v *asyncView) channel(n node) (*viewChannel, error) {
	n, err := deref(v.root, n)
	if err != nil {
		return nil, err
	}
	if c, ok := v.channels[n.ptr]; ok {
		return c, nil
	}
	if _, err := n.object(); err != nil {
		return nil, err
	}
	c := &viewChannel{ptr: n.ptr, key: unescapePointer(n.ptr[strings.LastIndex(n.ptr, "/")+1:])}
	if a, ok := n.child("address"); !ok || a.v == nil {
		c.dynamic = true
	} else if c.address, err = n.str("address"); err != nil {
		return nil, err
	}
	v.channels[n.ptr] = c
	if _, err := v.channelMessages(n); err != nil {
		return nil, err
	}
	return c, nil
}

// channelMessages reads the messages of the channel at n.
func (v *asyncView) channelMessages(n node) ([]*viewMessage, error) {
	msgs, ok := n.child("messages")
	if !ok {
		return nil, nil
	}
	keys, err := msgs.keys()
	if err != nil {
		return nil, err
	}
	out := make([]*viewMessage, 0, len(keys))
	for _, k := range keys {
		c, _ := msgs.child(k)
		m, err := v.message(c)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (v *asyncView) message(n node) (*viewMessage, error) {
	n, err := deref(v.root, n)
	if err != nil {
		return nil, err
	}
	if m, ok := v.messages[n.ptr]; ok {
		return m, nil
	}
	if _, err := n.object(); err != nil {
		return nil, err
	}
	m := &viewMessage{ptr: n.ptr}
	if m.name, err = n.str("name"); err != nil {
		return nil, err
	}
	if m.name == "" {
		m.name = unescapePointer(n.ptr[strings.LastIndex(n.ptr, "/")+1:])
	}
	if m.contentType, err = n.str("contentType"); err != nil {
		return nil, err
	}
	if m.contentType == "" {
		m.contentType = v.defaultCT
	}
	if h, ok := n.child("headers"); ok {
		if m.headers, m.headersPtr, err = v.schemaAt(h); err != nil {
			return nil, err
		}
	}
	if p, ok := n.child("payload"); ok {
		if m.payload, m.payloadPtr, m.opaque, err = v.payload(p); err != nil {
			return nil, err
		}
	}
	v.messages[n.ptr] = m
	return m, nil
}

// payload reads a message's payload: a schema, or a multi-format schema
// object whose schema the rules read when it is JSON Schema or AsyncAPI
// Schema, and compare as a whole otherwise.
func (v *asyncView) payload(n node) (*jsonSchema, string, string, error) {
	n, err := deref(v.root, n)
	if err != nil {
		return nil, "", "", err
	}
	if m, ok := n.v.(map[string]any); ok {
		if _, multi := m["schemaFormat"]; multi {
			format, err := n.str("schemaFormat")
			if err != nil {
				return nil, "", "", err
			}
			inner, ok := n.child("schema")
			if !ok {
				return nil, "", "", n.errorf("a multi-format schema without a schema")
			}
			if !strings.Contains(format, "schema+json") && !strings.Contains(format, "schema+yaml") && !strings.Contains(format, "vnd.aai.asyncapi") {
				data, err := json.Marshal(inner.v)
				if err != nil {
					return nil, "", "", inner.errorf("%v", err)
				}
				return nil, "", format + " " + string(data), nil
			}
			s, ptr, err := v.schemaAt(inner)
			return s, ptr, "", err
		}
	}
	s, ptr, err := v.schemaAt(n)
	return s, ptr, "", err
}

func (v *asyncView) schemaAt(n node) (*jsonSchema, string, error) {
	n, err := deref(v.root, n)
	if err != nil {
		return nil, "", err
	}
	s, err := v.schemas.decode(n)
	return s, n.ptr, err
}

func (v *asyncView) operation(key string, n node) (*viewOperation, error) {
	n, err := deref(v.root, n)
	if err != nil {
		return nil, err
	}
	if _, err := n.object(); err != nil {
		return nil, err
	}
	op := &viewOperation{ptr: n.ptr, key: key}
	if op.action, err = n.str("action"); err != nil {
		return nil, err
	}
	if op.action != actionSend && op.action != actionReceive {
		c, _ := n.child("action")
		return nil, c.errorf("action %q: want send or receive", op.action)
	}
	c, ok := n.child("channel")
	if !ok {
		return nil, n.errorf("an operation without a channel")
	}
	if op.channel, err = v.channel(c); err != nil {
		return nil, err
	}
	if op.messages, err = v.messageList(n, op.channel); err != nil {
		return nil, err
	}
	if r, ok := n.child("reply"); ok {
		if op.reply, err = v.reply(r); err != nil {
			return nil, err
		}
	}
	return op, nil
}

// messageList reads the messages of an operation or a reply: those
// listed, or else every message of its channel.
func (v *asyncView) messageList(n node, ch *viewChannel) ([]*viewMessage, error) {
	list, ok := n.child("messages")
	if !ok && ch == nil {
		return nil, nil
	}
	if !ok {
		chNode, err := lookup(v.root, n, "#"+ch.ptr)
		if err != nil {
			return nil, err
		}
		return v.channelMessages(chNode)
	}
	items, err := list.list()
	if err != nil {
		return nil, err
	}
	out := make([]*viewMessage, 0, len(items))
	for _, it := range items {
		m, err := v.message(it)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (v *asyncView) reply(n node) (*viewReply, error) {
	n, err := deref(v.root, n)
	if err != nil {
		return nil, err
	}
	if _, err := n.object(); err != nil {
		return nil, err
	}
	r := &viewReply{ptr: n.ptr}
	if a, ok := n.child("address"); ok {
		if a, err = deref(v.root, a); err != nil {
			return nil, err
		}
		if _, err := a.object(); err != nil {
			return nil, err
		}
		if r.location, err = a.str("location"); err != nil {
			return nil, err
		}
	}
	if c, ok := n.child("channel"); ok {
		if r.channel, err = v.channel(c); err != nil {
			return nil, err
		}
	}
	if r.messages, err = v.messageList(n, r.channel); err != nil {
		return nil, err
	}
	return r, nil
}

// schemaResolver decodes the schemas of a document and follows their
// $refs, each target decoded once.
type schemaResolver struct {
	root  node
	cache map[string]*jsonSchema // by pointer
}

func (r *schemaResolver) decode(n node) (*jsonSchema, error) {
	if s, ok := r.cache[n.ptr]; ok {
		return s, nil
	}
	s, err := decodeSchema(n)
	if err != nil {
		return nil, err
	}
	r.cache[n.ptr] = s
	return s, nil
}

// resolve follows s's $ref (s is at ptr) to the schema it names and that
// schema's pointer; a schema without one is returned as it is.
func (r *schemaResolver) resolve(s *jsonSchema, ptr string) (*jsonSchema, string, error) {
	for hops := 0; s != nil && s.Ref != ""; hops++ {
		if hops == 32 {
			return nil, "", &DocumentError{File: r.root.file, Pointer: ptr, Err: fmt.Errorf("%w: %q: a chain of more than 32 references (a cycle?)", ErrUnresolvedRef, s.Ref)}
		}
		from := node{file: r.root.file, ptr: ptr}
		n, err := lookup(r.root, from, s.Ref)
		if err != nil {
			return nil, "", err
		}
		if s, err = r.decode(n); err != nil {
			return nil, "", err
		}
		ptr = n.ptr
	}
	return s, ptr, nil
}

// check resolves every $ref under s, which is at ptr, so that a document
// with one that points nowhere fails when it is read.
func (r *schemaResolver) check(s *jsonSchema, ptr string) error {
	seen := map[string]bool{}
	var visit func(s *jsonSchema, ptr string) error
	visit = func(s *jsonSchema, ptr string) error {
		if s == nil || seen[ptr] {
			return nil
		}
		seen[ptr] = true
		var err error
		s.walk(ptr, func(e *jsonSchema, at string) {
			if err != nil || e.Ref == "" {
				return
			}
			target, tptr, rerr := r.resolve(e, at)
			if rerr != nil {
				err = rerr
				return
			}
			err = visit(target, tptr)
		})
		return err
	}
	return visit(s, ptr)
}
