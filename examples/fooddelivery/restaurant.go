package fooddelivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/courier-go/courier/events"
)

// The restaurant service owns restaurants and menus. It publishes
// RestaurantCreated and MenuRevised events through its outbox — the
// kitchen keeps a replica from them — and serves the gRPC method
// fooddelivery.Restaurants/GetMenu, registered as restaurant-service, which
// the order service calls to price an order.

var restaurantSchema = []string{
	`CREATE TABLE IF NOT EXISTS fd_restaurants (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, menu TEXT NOT NULL)`,
}

// Restaurants every run starts with; prices in cents.
var seedRestaurants = []MenuResponse{
	{RestaurantID: "r-ajanta", Name: "Ajanta", Menu: []MenuItem{{ID: "samosa", Name: "Samosa", Price: 450}, {ID: "curry", Name: "Chicken curry", Price: 1250}}},
	{RestaurantID: "r-bella", Name: "Bella Napoli", Menu: []MenuItem{{ID: "pizza", Name: "Pizza margherita", Price: 1100}}},
}

func startRestaurant(ctx context.Context, env *Env) (*node, error) {
	n, err := startNode(ctx, env, RestaurantService, restaurantSchema...)
	if err != nil {
		return nil, err
	}
	for _, r := range seedRestaurants {
		if err := createRestaurant(ctx, n, r); err != nil {
			n.kill()
			return nil, err
		}
	}
	api, err := serveGRPC(ctx, env.Registry, RestaurantService, &restaurantsDesc, menuServer{n})
	if err != nil {
		n.kill()
		return nil, err
	}
	n.api = api
	n.onStop(api.stop)
	return n, nil
}

// createRestaurant stores r and publishes RestaurantCreated in the same
// transaction, unless r exists already.
func createRestaurant(ctx context.Context, n *node, r MenuResponse) error {
	menu, err := json.Marshal(r.Menu)
	if err != nil {
		return err
	}
	tx, err := n.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create restaurant %s: %w", r.RestaurantID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := tx.ExecContext(ctx, n.d.InsertIgnore("fd_restaurants", "id", "name", "menu"), r.RestaurantID, r.Name, string(menu))
	if err != nil {
		return fmt.Errorf("create restaurant %s: %w", r.RestaurantID, err)
	}
	if k, err := res.RowsAffected(); err != nil || k == 0 {
		return err // exists already
	}
	if err := events.NewPublisher(n.w.Producer(tx)).Publish(ctx, RestaurantAggregate, r.RestaurantID,
		RestaurantCreated{Name: r.Name, Menu: r.Menu}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create restaurant %s: %w", r.RestaurantID, err)
	}
	n.trace.Printf(n.name, "RestaurantCreated %s %q → outbox", r.RestaurantID, r.Name)
	return nil
}

// reviseMenu replaces a menu and publishes MenuRevised in one transaction.
func reviseMenu(ctx context.Context, n *node, restaurantID string, menu []MenuItem) error {
	body, err := json.Marshal(menu)
	if err != nil {
		return err
	}
	tx, err := n.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revise menu of %s: %w", restaurantID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, n.d.Rebind("UPDATE fd_restaurants SET menu = ? WHERE id = ?"), string(body), restaurantID); err != nil {
		return fmt.Errorf("revise menu of %s: %w", restaurantID, err)
	}
	if err := events.NewPublisher(n.w.Producer(tx)).Publish(ctx, RestaurantAggregate, restaurantID, MenuRevised{Menu: menu}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revise menu of %s: %w", restaurantID, err)
	}
	n.trace.Printf(n.name, "MenuRevised %s → outbox", restaurantID)
	return nil
}

// menuServer implements the gRPC service.
type menuServer struct{ n *node }

func (s menuServer) GetMenu(ctx context.Context, req *MenuRequest) (*MenuResponse, error) {
	var name, menu string
	err := s.n.db.QueryRowContext(ctx, s.n.d.Rebind("SELECT name, menu FROM fd_restaurants WHERE id = ?"), req.RestaurantID).Scan(&name, &menu)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, status.Errorf(codes.NotFound, "no restaurant %s", req.RestaurantID)
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading restaurant %s: %v", req.RestaurantID, err)
	}
	resp := &MenuResponse{RestaurantID: req.RestaurantID, Name: name}
	if err := json.Unmarshal([]byte(menu), &resp.Menu); err != nil {
		return nil, status.Errorf(codes.Internal, "menu of %s: %v", req.RestaurantID, err)
	}
	return resp, nil
}

// getMenuMethod is the full gRPC method name.
const getMenuMethod = "/fooddelivery.Restaurants/GetMenu"

// restaurantsDesc describes the gRPC service, as generated code would.
var restaurantsDesc = grpc.ServiceDesc{
	ServiceName: "fooddelivery.Restaurants",
	HandlerType: (*interface {
		GetMenu(context.Context, *MenuRequest) (*MenuResponse, error)
	})(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "GetMenu",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(MenuRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) {
				return srv.(menuServer).GetMenu(ctx, req.(*MenuRequest))
			}
			if interceptor == nil {
				return call(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: getMenuMethod}, call)
		},
	}},
}
