package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokerurl"
	"github.com/courier-go/courier/broker/deadletter"
	"github.com/courier-go/courier/internal/connurl"
)

// deadLetterCommand is `courier deadletter`.
type deadLetterCommand struct {
	// openBroker, when set, opens the broker instead of brokerurl.Open.
	openBroker func(ctx context.Context, url string) (broker.Broker, error)
}

const deadLetterUsage = `usage: courier deadletter list|show|replay|purge -broker URL (-subscriber ID | -channel C) [flags]

Reads and acts on the dead letters a subscriber id's dead-letter channel
keeps (ID` + broker.DeadLetterSuffix + ` unless -channel names another), on every broker:

  list     the letters, oldest first: id, original channel, attempts,
           time and reason (-json for one JSON object a line, with
           headers and payload)
  show     one letter (-id), with its headers and payload
  replay   sends the selected letters back to the channel each came from,
           each with a new message id and a replay_of header naming the
           letter, then removes them from the dead-letter channel
  purge    removes the selected letters for good; needs -yes

Select letters with -id (repeatable, or comma-separated), -reason (a
substring of the reason), -from (the original channel), or -all; list
shows every letter when none is given. Exit status: 0 done, 2 usage
error, 1 failure.

flags:
`

// idList is a flag that collects ids, repeated or comma-separated.
type idList []string

func (l *idList) String() string { return strings.Join(*l, ",") }

func (l *idList) Set(v string) error {
	for id := range strings.SplitSeq(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			*l = append(*l, id)
		}
	}
	return nil
}

func (c *deadLetterCommand) run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("deadletter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, deadLetterUsage); fs.PrintDefaults() }
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fs.Usage()
			return flag.ErrHelp
		}
		fs.Usage()
		return usageError{errors.New("deadletter: give an action: list, show, replay or purge")}
	}
	action := args[0]
	if !slices.Contains([]string{"list", "show", "replay", "purge"}, action) {
		fs.Usage()
		return usageError{fmt.Errorf("deadletter: unknown action %q: use list, show, replay or purge", action)}
	}
	var (
		brokerURL  = fs.String("broker", "", "broker URL: "+brokerurl.Schemes+" (env COURIER_BROKER)")
		subscriber = fs.String("subscriber", "", "subscriber id whose dead letters to read (env COURIER_SUBSCRIBER)")
		channel    = fs.String("channel", "", "dead-letter channel, if not the subscriber id's default")
		reason     = fs.String("reason", "", "select the letters whose reason contains this text")
		from       = fs.String("from", "", "select the letters consumed from this channel")
		all        = fs.Bool("all", false, "select every letter (replay, purge)")
		yes        = fs.Bool("yes", false, "confirm a purge: the letters are gone for good")
		asJSON     = fs.Bool("json", false, "list: one JSON object a line, with headers and payload")
		timeout    = fs.Duration("timeout", time.Minute, "bound on the whole command, connection included")
		ids        idList
	)
	fs.Var(&ids, "id", "select the letter with this id (repeatable, or comma-separated)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	// No error shows the broker URL's password or token.
	secrets := connurl.NewRedactor(*brokerURL)
	defer func() { err = secrets.Error(err) }()
	if *brokerURL == "" {
		fs.Usage()
		return usageError{errors.New("deadletter: -broker is required")}
	}
	dlc := *channel
	if dlc == "" {
		if *subscriber == "" {
			fs.Usage()
			return usageError{errors.New("deadletter: -subscriber or -channel is required")}
		}
		dlc = deadletter.Channel(*subscriber)
	}
	filter := deadletter.Filter{IDs: ids, Reason: *reason, Channel: *from, All: *all}
	switch {
	case action == "show" && len(ids) != 1:
		return usageError{errors.New("deadletter show: give exactly one -id")}
	case (action == "replay" || action == "purge") && len(ids) == 0 && *reason == "" && *from == "" && !*all:
		return usageError{fmt.Errorf("deadletter %s: select letters with -id, -reason, -from or -all", action)}
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	open := brokerurl.Open
	if c.openBroker != nil {
		open = c.openBroker
	}
	b, err := open(ctx, *brokerURL)
	if err != nil {
		return fmt.Errorf("deadletter: broker: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, b.Close(cctx))
	}()
	db, ok := b.(deadletter.Broker)
	if !ok {
		return fmt.Errorf("deadletter: %w", deadletter.ErrUnsupported)
	}

	switch action {
	case "list":
		letters, err := deadletter.List(ctx, db, dlc, filter)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeLettersJSON(stdout, letters)
		}
		writeLetters(stdout, letters)
		fmt.Fprintf(stderr, "%d dead letters in %q\n", len(letters), dlc)
		return nil
	case "show":
		l, err := deadletter.Show(ctx, db, dlc, ids[0])
		if err != nil {
			return err
		}
		writeLetter(stdout, l)
		return nil
	case "replay":
		res, err := deadletter.Replay(ctx, db, dlc, filter)
		for _, r := range res.Replayed {
			fmt.Fprintf(stdout, "replayed %s to %q as %s\n", r.ID, r.Channel, r.NewID)
		}
		for _, s := range res.Skipped {
			fmt.Fprintf(stdout, "skipped %s: %s\n", s.ID, s.Why)
		}
		fmt.Fprintf(stderr, "%d replayed, %d removed from %q, %d skipped\n", len(res.Replayed), res.Removed, dlc, len(res.Skipped))
		if err == nil && res.Removed < len(res.Replayed) {
			fmt.Fprintf(stderr, "%d replayed letters stay in %q: this broker could not remove them (see its adapter's documentation); purge them to keep them from being replayed twice\n",
				len(res.Replayed)-res.Removed, dlc)
		}
		return err
	}
	// purge
	if !*yes {
		letters, err := deadletter.List(ctx, db, dlc, filter)
		if err != nil {
			return err
		}
		return usageError{fmt.Errorf("deadletter purge: would remove %d dead letters from %q for good; add -yes to do it", len(letters), dlc)}
	}
	n, err := deadletter.Purge(ctx, db, dlc, filter)
	fmt.Fprintf(stderr, "%d dead letters removed from %q\n", n, dlc)
	return err
}

// writeLetters prints a table of letters.
func writeLetters(w io.Writer, letters []deadletter.Letter) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCHANNEL\tATTEMPTS\tTIME\tREASON")
	for _, l := range letters {
		at := "-"
		if !l.Time.IsZero() {
			at = l.Time.UTC().Format(time.RFC3339)
		}
		reason := l.Reason
		if len(reason) > 120 {
			reason = strings.ToValidUTF8(reason[:120], "") + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", l.ID, orDash(l.Channel), l.Attempts, at, reason)
	}
	tw.Flush()
}

// letterJSON is a letter as list -json prints it.
type letterJSON struct {
	ID           string            `json:"id"`
	Channel      string            `json:"channel"`
	SubscriberID string            `json:"subscriber_id"`
	Reason       string            `json:"reason"`
	Attempts     int               `json:"attempts"`
	Time         *time.Time        `json:"time,omitempty"`
	Envelope     string            `json:"envelope"`
	Headers      map[string]string `json:"headers"`
	// Payload is the payload as text if it is UTF-8; PayloadBase64
	// otherwise.
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 *string `json:"payload_base64,omitempty"`
}

func writeLettersJSON(w io.Writer, letters []deadletter.Letter) error {
	enc := json.NewEncoder(w)
	for _, l := range letters {
		j := letterJSON{ID: l.ID, Channel: l.Channel, SubscriberID: l.SubscriberID, Reason: l.Reason, Attempts: l.Attempts,
			Envelope: l.Envelope, Headers: l.Message.Headers}
		if !l.Time.IsZero() {
			j.Time = &l.Time
		}
		if utf8.Valid(l.Message.Payload) {
			s := string(l.Message.Payload)
			j.Payload = &s
		} else {
			s := base64.StdEncoding.EncodeToString(l.Message.Payload)
			j.PayloadBase64 = &s
		}
		if err := enc.Encode(j); err != nil {
			return fmt.Errorf("deadletter: write: %w", err)
		}
	}
	return nil
}

// writeLetter prints one letter in full.
func writeLetter(w io.Writer, l deadletter.Letter) {
	fmt.Fprintf(w, "id:          %s\nchannel:     %s\nsubscriber:  %s\nattempts:    %d\n", l.ID, orDash(l.Channel), orDash(l.SubscriberID), l.Attempts)
	if !l.Time.IsZero() {
		fmt.Fprintf(w, "time:        %s\n", l.Time.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(w, "envelope:    %s\nreason:      %s\nheaders:\n", l.Envelope, l.Reason)
	keys := make([]string, 0, len(l.Message.Headers))
	for k := range l.Message.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, l.Message.Headers[k])
	}
	if utf8.Valid(l.Message.Payload) {
		fmt.Fprintf(w, "payload (%d bytes):\n%s\n", len(l.Message.Payload), l.Message.Payload)
	} else {
		fmt.Fprintf(w, "payload (%d bytes, base64):\n%s\n", len(l.Message.Payload), base64.StdEncoding.EncodeToString(l.Message.Payload))
	}
}
