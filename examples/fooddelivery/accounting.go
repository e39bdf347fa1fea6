package fooddelivery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"

	"github.com/courier-go/courier/commands"
)

// The accounting service owns the consumers' accounts. It answers
// AuthorizeCard commands, and ReverseAuthorization for an order cancelled
// later; each authorization and reversal is recorded with the inbox row of
// the command in one transaction, so a redelivered command never charges
// or releases twice.

var accountingSchema = []string{
	`CREATE TABLE IF NOT EXISTS fd_accounts (consumer_id VARCHAR(64) NOT NULL PRIMARY KEY, credit_limit INTEGER NOT NULL, reserved INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS fd_authorizations (order_id VARCHAR(64) NOT NULL PRIMARY KEY, consumer_id VARCHAR(64) NOT NULL, amount INTEGER NOT NULL)`,
}

// Credit limits every run starts with, in cents.
var seedAccounts = map[string]int{"c-ada": 1_000_000, "c-bob": 2000}

func startAccounting(ctx context.Context, env *Env) (*node, error) {
	n, err := startNode(ctx, env, AccountingService, accountingSchema...)
	if err != nil {
		return nil, err
	}
	for id, limit := range seedAccounts {
		if _, err := n.db.ExecContext(ctx, n.d.InsertIgnore("fd_accounts", "consumer_id", "credit_limit", "reserved"), id, limit, 0); err != nil {
			n.kill()
			return nil, err
		}
	}
	h := newAccountingHandlers(n)
	if err := n.subscribe(ctx, AccountingService, []string{AccountingCommands}, h.cmds.HandleTx); err != nil {
		n.kill()
		return nil, err
	}
	if _, err := n.serveAPI(ctx, http.NewServeMux(), accountingAPI(h)); err != nil {
		n.kill()
		return nil, err
	}
	return n, nil
}

// newAccountingHandlers registers the accounting service's handlers; n is
// nil to describe them.
func newAccountingHandlers(n *node) handlers {
	d := n.commandDispatcher()
	commands.Handle(d, func(ctx context.Context, c commands.Command[AuthorizeCard]) (commands.Reply, error) {
		r, err := authorize(ctx, n, c.Tx, c.Payload)
		if err != nil {
			return commands.Reply{}, commands.Retryable(err)
		}
		return r, nil
	})
	commands.Handle(d, func(ctx context.Context, c commands.Command[ReverseAuthorization]) (commands.Reply, error) {
		r, err := reverse(ctx, n, c.Tx, c.Payload.OrderID)
		if err != nil {
			return commands.Reply{}, commands.Retryable(err)
		}
		return r, nil
	})
	return handlers{cmds: d}
}

// reverse releases what an order's authorization reserved in tx, the
// command's inbox transaction; an order without one (never authorized, or
// reversed before) has nothing to release.
func reverse(ctx context.Context, n *node, tx *sql.Tx, orderID string) (commands.Reply, error) {
	authID := "auth-" + orderID
	var consumerID string
	var amount int
	err := tx.QueryRowContext(ctx, n.d.Rebind("SELECT consumer_id, amount FROM fd_authorizations WHERE order_id = ?"), orderID).Scan(&consumerID, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		n.trace.Printf(n.name, "ReverseAuthorization %s → AuthorizationReversed (nothing reserved)", orderID)
		return commands.Success(AuthorizationReversed{AuthorizationID: authID}), nil
	}
	if err != nil {
		return commands.Reply{}, fmt.Errorf("reading authorization of %s: %w", orderID, err)
	}
	if _, err := tx.ExecContext(ctx, n.d.Rebind("UPDATE fd_accounts SET reserved = reserved - ? WHERE consumer_id = ?"), amount, consumerID); err != nil {
		return commands.Reply{}, fmt.Errorf("releasing %d for %s: %w", amount, orderID, err)
	}
	if _, err := tx.ExecContext(ctx, n.d.Rebind("DELETE FROM fd_authorizations WHERE order_id = ?"), orderID); err != nil {
		return commands.Reply{}, fmt.Errorf("removing authorization of %s: %w", orderID, err)
	}
	n.trace.Printf(n.name, "ReverseAuthorization %s → AuthorizationReversed (%s released)", orderID, cents(amount))
	return commands.Success(AuthorizationReversed{AuthorizationID: authID, Amount: amount}), nil
}

// authorize reserves the order's amount on the consumer's account in tx,
// the command's inbox transaction, unless it did before.
func authorize(ctx context.Context, n *node, tx *sql.Tx, a AuthorizeCard) (commands.Reply, error) {
	authID := "auth-" + a.OrderID
	var amount int
	err := tx.QueryRowContext(ctx, n.d.Rebind("SELECT amount FROM fd_authorizations WHERE order_id = ?"), a.OrderID).Scan(&amount)
	if err == nil {
		return commands.Success(CardAuthorized{AuthorizationID: authID}), nil // authorized before
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return commands.Reply{}, fmt.Errorf("reading authorization of %s: %w", a.OrderID, err)
	}
	var limit, reserved int
	err = tx.QueryRowContext(ctx, n.d.Rebind("SELECT credit_limit, reserved FROM fd_accounts WHERE consumer_id = ?"), a.ConsumerID).Scan(&limit, &reserved)
	if errors.Is(err, sql.ErrNoRows) {
		n.trace.Printf(n.name, "AuthorizeCard %s %s → CardDeclined (no account)", a.OrderID, cents(a.Amount))
		return commands.Failure(CardDeclined{Reason: "no account"}), nil
	}
	if err != nil {
		return commands.Reply{}, fmt.Errorf("reading account %s: %w", a.ConsumerID, err)
	}
	if reserved+a.Amount > limit {
		n.trace.Printf(n.name, "AuthorizeCard %s %s → CardDeclined (limit %s, %s reserved)", a.OrderID, cents(a.Amount), cents(limit), cents(reserved))
		return commands.Failure(CardDeclined{Reason: fmt.Sprintf("over the %s limit", cents(limit))}), nil
	}
	if _, err := tx.ExecContext(ctx, n.d.Rebind("UPDATE fd_accounts SET reserved = reserved + ? WHERE consumer_id = ?"), a.Amount, a.ConsumerID); err != nil {
		return commands.Reply{}, fmt.Errorf("reserving %d for %s: %w", a.Amount, a.OrderID, err)
	}
	if _, err := tx.ExecContext(ctx, n.d.Rebind("INSERT INTO fd_authorizations (order_id, consumer_id, amount) VALUES (?, ?, ?)"),
		a.OrderID, a.ConsumerID, a.Amount); err != nil {
		return commands.Reply{}, fmt.Errorf("recording authorization of %s: %w", a.OrderID, err)
	}
	n.trace.Printf(n.name, "AuthorizeCard %s %s → CardAuthorized", a.OrderID, cents(a.Amount))
	return commands.Success(CardAuthorized{AuthorizationID: authID}), nil
}

// cents formats an amount of cents as dollars.
func cents(c int) string { return fmt.Sprintf("$%d.%02d", c/100, c%100) }
