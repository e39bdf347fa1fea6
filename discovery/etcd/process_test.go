package etcd_test
const childEnv = "COURIER_DISCOVERY_ETCD_CHILD"
func runChild() int { return 0 }
