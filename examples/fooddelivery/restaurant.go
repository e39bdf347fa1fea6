package fooddelivery

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/courier-go/courier/events"
	"github.com/courier-go/courier/examples/fooddelivery/restaurantpb"
)

// The restaurant service owns restaurants and menus. It publishes
// RestaurantCreated and MenuRevised events through its outbox — the
// kitchen keeps a replica from them — and serves the gRPC method
// fooddelivery.restaurant.v1.Restaurants/GetMenu, registered as
// restaurant-service, which the order service calls to price an order. The
// gRPC service is generated from its IDL, restaurantpb/restaurant.proto.

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
	api, err := serveGRPC(ctx, env.Registry, RestaurantService, func(s *grpc.Server) {
		restaurantpb.RegisterRestaurantsServer(s, menuServer{n: n})
	}, n.grpcServerOptions()...)
	if err != nil {
		n.kill()
		return nil, err
	}
	n.api = api
	n.onStop(api.stop)
	if _, err := n.serveAPI(ctx, http.NewServeMux(), restaurantAPI()); err != nil {
		n.kill()
		return nil, err
	}
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
	if err := events.NewPublisher(n.outbox(tx)).Publish(ctx, RestaurantAggregate, r.RestaurantID,
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
	if err := events.NewPublisher(n.outbox(tx)).Publish(ctx, RestaurantAggregate, restaurantID, MenuRevised{Menu: menu}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revise menu of %s: %w", restaurantID, err)
	}
	n.trace.Printf(n.name, "MenuRevised %s → outbox", restaurantID)
	return nil
}

// menuServer implements the gRPC service.
type menuServer struct {
	restaurantpb.UnimplementedRestaurantsServer
	n *node
}

func (s menuServer) GetMenu(ctx context.Context, req *restaurantpb.GetMenuRequest) (*restaurantpb.Menu, error) {
	id := req.GetRestaurantId()
	var name, menu string
	err := s.n.db.QueryRowContext(ctx, s.n.d.Rebind("SELECT name, menu FROM fd_restaurants WHERE id = ?"), id).Scan(&name, &menu)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, status.Errorf(codes.NotFound, "no restaurant %s", id)
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading restaurant %s: %v", id, err)
	}
	var items []MenuItem
	if err := json.Unmarshal([]byte(menu), &items); err != nil {
		return nil, status.Errorf(codes.Internal, "menu of %s: %v", id, err)
	}
	return menuMessage(MenuResponse{RestaurantID: id, Name: name, Menu: items}), nil
}

// menuMessage and menuFromMessage convert between the service's menus and
// the gRPC API's messages.
func menuMessage(m MenuResponse) *restaurantpb.Menu {
	out := &restaurantpb.Menu{RestaurantId: m.RestaurantID, Name: m.Name, Items: make([]*restaurantpb.MenuItem, 0, len(m.Menu))}
	for _, it := range m.Menu {
		out.Items = append(out.Items, &restaurantpb.MenuItem{Id: it.ID, Name: it.Name, Price: int64(it.Price)})
	}
	return out
}

func menuFromMessage(m *restaurantpb.Menu) MenuResponse {
	out := MenuResponse{RestaurantID: m.GetRestaurantId(), Name: m.GetName(), Menu: make([]MenuItem, 0, len(m.GetItems()))}
	for _, it := range m.GetItems() {
		out.Menu = append(out.Menu, MenuItem{ID: it.GetId(), Name: it.GetName(), Price: int(it.GetPrice())})
	}
	return out
}
