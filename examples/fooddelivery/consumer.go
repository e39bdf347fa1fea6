package fooddelivery

import (
	"context"
	"database/sql"
	"errors"
	"net/http"

	"github.com/courier-go/courier/commands"
)

// The consumer service owns the consumers. It answers VerifyConsumer
// commands (asynchronous request/response, replies through its outbox) and
// serves GET /consumers/{id} over REST, registered as consumer-service.

var consumerSchema = []string{
	`CREATE TABLE IF NOT EXISTS fd_consumers (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL)`,
}

// Consumers every run starts with.
var seedConsumers = []ConsumerInfo{{ID: "c-ada", Name: "Ada"}, {ID: "c-bob", Name: "Bob"}}

func startConsumer(ctx context.Context, env *Env) (*node, error) {
	n, err := startNode(ctx, env, ConsumerService, consumerSchema...)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*node, error) { n.kill(); return nil, err }
	for _, c := range seedConsumers {
		if _, err := n.db.ExecContext(ctx, n.d.InsertIgnore("fd_consumers", "id", "name"), c.ID, c.Name); err != nil {
			return fail(err)
		}
	}
	h := newConsumerHandlers(n)
	if err := n.subscribe(ctx, ConsumerService, []string{ConsumerCommands}, h.cmds.HandleTx); err != nil {
		return fail(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /consumers/{id}", func(w http.ResponseWriter, r *http.Request) {
		var c ConsumerInfo
		err := n.db.QueryRowContext(r.Context(), n.d.Rebind("SELECT id, name FROM fd_consumers WHERE id = ?"), r.PathValue("id")).Scan(&c.ID, &c.Name)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			writeProblem(w, r, &apiError{http.StatusNotFound, "no consumer " + r.PathValue("id")})
		case err != nil:
			writeProblem(w, r, err)
		default:
			writeJSON(w, http.StatusOK, c)
		}
	})
	if n.api, err = n.serveAPI(ctx, mux, consumerAPI(h)); err != nil {
		return fail(err)
	}
	return n, nil
}

// newConsumerHandlers registers the consumer service's handlers; n is nil
// to describe them.
func newConsumerHandlers(n *node) handlers {
	d := n.commandDispatcher()
	commands.Handle(d, func(ctx context.Context, c commands.Command[VerifyConsumer]) (commands.Reply, error) {
		var name string
		err := c.Tx.QueryRowContext(ctx, n.d.Rebind("SELECT name FROM fd_consumers WHERE id = ?"), c.Payload.ConsumerID).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			n.trace.Printf(n.name, "VerifyConsumer %s → ConsumerNotValid (%s unknown)", c.Payload.OrderID, c.Payload.ConsumerID)
			return commands.Failure(ConsumerNotValid{Reason: "unknown consumer " + c.Payload.ConsumerID}), nil
		}
		if err != nil {
			return commands.Reply{}, commands.Retryable(err)
		}
		n.trace.Printf(n.name, "VerifyConsumer %s → ConsumerVerified (%s)", c.Payload.OrderID, name)
		return commands.Success(ConsumerVerified{Name: name}), nil
	})
	return handlers{cmds: d}
}
