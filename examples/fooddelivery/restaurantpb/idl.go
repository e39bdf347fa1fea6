// Package restaurantpb is the Go code generated from restaurant.proto, the
// restaurant service's gRPC API in the food-delivery example.
package restaurantpb

import _ "embed" // the IDL, for the API checks

// IDL is restaurant.proto, the source the package is generated from: the
// restaurant service publishes it as its gRPC contract, and courier api
// check compares it with the released version.
//
//go:embed restaurant.proto
var IDL []byte
