// Package deliverygrpc is the gRPC adapter of the delivery service (IDL in
// deliverypb/delivery.proto): a server exposing any delivery.Estimator,
// and a client implementing delivery.Estimator through the resilience
// interceptors (rpc/grpcx). Estimate is declared idempotent, so the
// client's retries apply.
package deliverygrpc

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/courier-go/courier/examples/rpc/delivery"
	pb "github.com/courier-go/courier/examples/rpc/delivery/deliverypb"
	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/grpcx"
)

type server struct {
	pb.UnimplementedDeliveryServer
	svc delivery.Estimator
}

// Register serves svc on s.
func Register(s grpc.ServiceRegistrar, svc delivery.Estimator) {
	pb.RegisterDeliveryServer(s, &server{svc: svc})
}

func (s *server) Estimate(ctx context.Context, req *pb.EstimateRequest) (*pb.EstimateResponse, error) {
	est, err := s.svc.Estimate(ctx, delivery.EstimateRequest{RestaurantID: req.GetRestaurantId(), Address: req.GetAddress()})
	switch {
	case errors.Is(err, delivery.ErrUnknownRestaurant):
		return nil, status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return nil, status.Error(codes.DeadlineExceeded, err.Error())
	case err != nil:
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &pb.EstimateResponse{Minutes: int32(est.Minutes), Source: est.Source}, nil
}

// Client is a delivery.Estimator over gRPC. It is safe for concurrent use.
type Client struct {
	conn   *grpc.ClientConn
	client pb.DeliveryClient
}

var _ delivery.Estimator = (*Client)(nil)

// NewClient connects to target (plaintext, for the example) through chain;
// the fallback answers delivery.Fallback when the policies give up.
func NewClient(target string, chain *resilience.Chain, opts ...grpc.DialOption) (*Client, error) {
	unary, err := grpcx.UnaryClientInterceptor(chain,
		grpcx.WithIdempotentMethods(pb.Delivery_Estimate_FullMethodName),
		grpcx.WithFallback(grpcx.StaticReplies(map[string]proto.Message{
			pb.Delivery_Estimate_FullMethodName: &pb.EstimateResponse{Minutes: int32(delivery.Fallback.Minutes), Source: delivery.Fallback.Source},
		})))
	if err != nil {
		return nil, fmt.Errorf("deliverygrpc: %w", err)
	}
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(unary)}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("deliverygrpc: connect %s: %w", target, err)
	}
	return &Client{conn: conn, client: pb.NewDeliveryClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Estimate implements delivery.Estimator.
func (c *Client) Estimate(ctx context.Context, req delivery.EstimateRequest) (delivery.Estimate, error) {
	resp, err := c.client.Estimate(ctx, &pb.EstimateRequest{RestaurantId: req.RestaurantID, Address: req.Address})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return delivery.Estimate{}, fmt.Errorf("%w %q", delivery.ErrUnknownRestaurant, req.RestaurantID)
		}
		return delivery.Estimate{}, fmt.Errorf("deliverygrpc: estimate: %w", err)
	}
	return delivery.Estimate{Minutes: int(resp.GetMinutes()), Source: resp.GetSource()}, nil
}
