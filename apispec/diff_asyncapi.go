package apispec

import (
	"fmt"
	"sort"
)

// interaction is one thing a service does with messages: sends or receives
// messages of one type on a channel, or answers (replies to) a command
// with them.
type interaction struct {
	action  string // send, receive
	channel *viewChannel
	msg     *viewMessage
	ptr     string
	// commands are, for a reply, the messages of the operations it
	// answers.
	commands []string
}

// interactions lists what a document's operations do, by a key that
// matches them across versions, and the operations' replies by the
// operation's action, channel and the reply's message name.
func (v *asyncView) interactions() (ops, replies map[string]interaction, replyAddr map[string]string) {
	ops, replies, replyAddr = map[string]interaction{}, map[string]interaction{}, map[string]string{}
	for _, op := range v.operations {
		for _, m := range op.messages {
			k := op.action + " " + op.channel.id() + " " + m.name
			if _, ok := ops[k]; !ok {
				ops[k] = interaction{action: op.action, channel: op.channel, msg: m, ptr: op.ptr}
			}
		}
		if op.reply == nil {
			continue
		}
		for _, m := range op.messages {
			replyAddr[op.action+" "+op.channel.id()+" "+m.name] = op.reply.location
		}
		for _, m := range op.reply.messages {
			k := op.action + " " + op.channel.id() + " " + m.name
			in, ok := replies[k]
			if !ok {
				in = interaction{action: op.action, channel: op.channel, msg: m, ptr: op.reply.ptr}
			}
			for _, c := range op.messages {
				in.commands = append(in.commands, c.name)
			}
			replies[k] = in
		}
	}
	return ops, replies, replyAddr
}

// messageSides says, for each message name, which sides depend on the
// document: consumers of what the service sends or answers with,
// publishers of what it receives or is answered with.
func messageSides(ops, replies map[string]interaction, into map[string]sides) {
	for _, in := range ops {
		s := into[in.msg.name]
		if in.action == actionSend {
			s.consumers = true
		} else {
			s.publishers = true
		}
		into[in.msg.name] = s
	}
	for _, in := range replies {
		s := into[in.msg.name]
		if in.action == actionReceive { // the service answers
			s.consumers = true
		} else {
			s.publishers = true
		}
		into[in.msg.name] = s
	}
}

// effectOf is the effect on the other side of losing what an operation
// of action did: what the service sent, consumers miss; what it received,
// publishers can no longer send.
func effectOf(action string) [2]Effect {
	if action == actionSend {
		return widened // consumers break
	}
	return narrowed // publishers break
}

func diffAsyncAPI(old, new *asyncView) ([]Change, error) {
	var changes []Change
	add := func(rule, location, source, text string, e [2]Effect) {
		changes = append(changes, Change{Rule: rule, Location: location, Source: source, Text: text,
			Breaking: e[0] == Breaking || e[1] == Breaking, Consumers: e[0], Publishers: e[1]})
	}
	oldOps, oldReplies, oldAddr := old.interactions()
	newOps, newReplies, newAddr := new.interactions()

	// Channels, by address.
	newChannels := map[string]bool{}
	for _, in := range newOps {
		newChannels[in.channel.id()] = true
	}
	oldChannels := map[string]bool{}
	removedChannels := map[string]bool{}
	for _, k := range sortedKeys(oldOps) {
		in := oldOps[k]
		id := in.channel.id()
		oldChannels[id] = true
		if newChannels[id] || removedChannels[id] {
			continue
		}
		removedChannels[id] = true
		e := [2]Effect{Compatible, Compatible}
		for _, other := range oldOps {
			if other.channel.id() == id {
				oe := effectOf(other.action)
				if oe[0] == Breaking {
					e[0] = Breaking
				}
				if oe[1] == Breaking {
					e[1] = Breaking
				}
			}
		}
		add("channel-removed", "channel "+id, in.channel.ptr, "channel removed", e)
	}
	addedChannels := map[string]bool{}
	for _, k := range sortedKeys(newOps) {
		in := newOps[k]
		if id := in.channel.id(); !oldChannels[id] && !addedChannels[id] {
			addedChannels[id] = true
			add("channel-added", "channel "+id, in.channel.ptr, "channel added", neither)
		}
	}

	// Operations: a message type sent or received on a channel.
	for _, k := range sortedKeys(oldOps) {
		in := oldOps[k]
		if _, ok := newOps[k]; ok || removedChannels[in.channel.id()] {
			continue
		}
		add("operation-removed", in.action+" "+in.channel.id()+" "+in.msg.name, in.ptr,
			fmt.Sprintf("the service no longer %ss %s on %s", in.action, in.msg.name, in.channel.id()), effectOf(in.action))
	}
	for _, k := range sortedKeys(newOps) {
		in := newOps[k]
		if _, ok := oldOps[k]; ok {
			continue
		}
		add("operation-added", in.action+" "+in.channel.id()+" "+in.msg.name, in.ptr,
			fmt.Sprintf("the service now %ss %s on %s", in.action, in.msg.name, in.channel.id()), neither)
	}

	// Replies: what the service answers a command with (receive), or
	// accepts as the answer to one it sends (send).
	for _, k := range sortedKeys(oldReplies) {
		in := oldReplies[k]
		if _, ok := newReplies[k]; ok || removedChannels[in.channel.id()] {
			continue
		}
		e := narrowed // the service no longer accepts it: the handler that sends it breaks
		text := "the service no longer accepts the reply " + in.msg.name
		if in.action == actionReceive {
			e, text = widened, "the service no longer answers with "+in.msg.name
		}
		add("reply-removed", "replies to "+in.action+" "+in.channel.id(), in.ptr, text, e)
	}
	for _, k := range sortedKeys(newReplies) {
		in := newReplies[k]
		if _, ok := oldReplies[k]; ok {
			continue
		}
		e := neither
		text := "the service now accepts the reply " + in.msg.name
		if in.action == actionReceive { // callers meet a reply type they may not decode
			e, text = widened, "the service now may answer with "+in.msg.name
			if allNew(oldOps, in) { // only commands that are new: nobody calls them yet
				e, text = neither, "the service answers the commands it now handles with "+in.msg.name
			}
		}
		add("reply-added", "replies to "+in.action+" "+in.channel.id(), in.ptr, text, e)
	}
	for _, k := range sortedKeys(oldAddr) {
		if na, ok := newAddr[k]; ok && na != oldAddr[k] {
			in := newOps[k]
			e := narrowed
			if in.action == actionReceive {
				e = widened
			}
			add("reply-address-changed", "replies to "+k, in.ptr, fmt.Sprintf("the reply channel is found at %q, was %q", na, oldAddr[k]), e)
		}
	}

	// Messages, by name: content type, headers and payload.
	roles := map[string]sides{}
	messageSides(oldOps, oldReplies, roles)
	messageSides(newOps, newReplies, roles)
	oldMsgs, newMsgs := messagesByName(oldOps, oldReplies), messagesByName(newOps, newReplies)
	for _, name := range sortedKeys(oldMsgs) {
		om, nm := oldMsgs[name], newMsgs[name]
		if nm == nil {
			continue
		}
		s := roles[name]
		loc := "message " + name
		if om.contentType != nm.contentType {
			changes = append(changes, Change{Rule: "content-type-changed", Location: loc, Source: nm.ptr,
				Text: fmt.Sprintf("content type %q became %q", om.contentType, nm.contentType), Breaking: s.consumers || s.publishers, Consumers: Breaking, Publishers: Breaking})
		}
		if om.opaque != "" || nm.opaque != "" {
			if om.opaque != nm.opaque {
				changes = append(changes, Change{Rule: "payload-changed", Location: loc + " payload", Source: nm.ptr,
					Text: "the payload's schema, in a format the rules do not read, changed", Breaking: s.consumers || s.publishers, Consumers: Breaking, Publishers: Breaking})
			}
		} else {
			d := &schemaDiffer{old: old.schemas, new: new.schemas, sides: s, location: loc + " payload", seen: map[[2]string]bool{}}
			if err := d.compare(om.payload, om.payloadPtr, nm.payload, nm.payloadPtr, ""); err != nil {
				return nil, err
			}
			changes = append(changes, d.changes...)
		}
		d := &schemaDiffer{old: old.schemas, new: new.schemas, sides: s, location: loc + " headers", seen: map[[2]string]bool{}}
		if err := d.compare(om.headers, om.headersPtr, nm.headers, nm.headersPtr, ""); err != nil {
			return nil, err
		}
		changes = append(changes, d.changes...)
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Breaking && !changes[j].Breaking })
	return changes, nil
}

// allNew reports whether every command a reply answers is new: none of
// them is an operation of old.
func allNew(old map[string]interaction, reply interaction) bool {
	for _, c := range reply.commands {
		if _, ok := old[reply.action+" "+reply.channel.id()+" "+c]; ok {
			return false
		}
	}
	return true
}

// messagesByName returns the messages the operations use, by name; of two
// messages with one name the first (by operation key) is compared.
func messagesByName(ops, replies map[string]interaction) map[string]*viewMessage {
	out := map[string]*viewMessage{}
	for _, set := range []map[string]interaction{ops, replies} {
		for _, k := range sortedKeys(set) {
			m := set[k].msg
			if _, ok := out[m.name]; !ok {
				out[m.name] = m
			}
		}
	}
	return out
}
