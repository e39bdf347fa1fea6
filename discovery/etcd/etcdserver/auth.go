package etcdserver

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/auth"
	"go.etcd.io/etcd/server/v3/etcdserver"
)

const (
	rootUser      = "root"
	defaultPrefix = "/courier/services/"
	readRole      = "courier-read"
	writeRole     = "courier-readwrite"
)

// enableAuth creates cfg's users and roles and turns authentication on,
// the first time; once it is on, it checks that the users still have
// their passwords.
func enableAuth(ctx context.Context, s *etcdserver.EtcdServer, cfg Config) error {
	if s.AuthStore().IsAuthEnabled() {
		for _, u := range cfg.Users {
			if _, err := s.AuthStore().CheckPassword(u.Name, u.Password); err != nil {
				return fmt.Errorf("etcdserver: user %q of the registry in %s: %w (users are created at the first start; change them with etcdctl)",
					u.Name, cfg.Dir, err)
			}
		}
		return nil
	}
	end := clientv3.GetPrefixRangeEnd(cfg.Prefix)
	steps := []func() error{
		func() error { _, err := s.RoleAdd(ctx, &pb.AuthRoleAddRequest{Name: rootUser}); return err },
		func() error { _, err := s.RoleAdd(ctx, &pb.AuthRoleAddRequest{Name: readRole}); return err },
		func() error { _, err := s.RoleAdd(ctx, &pb.AuthRoleAddRequest{Name: writeRole}); return err },
		func() error {
			_, err := s.RoleGrantPermission(ctx, &pb.AuthRoleGrantPermissionRequest{Name: readRole,
				Perm: &authpb.Permission{PermType: authpb.READ, Key: []byte(cfg.Prefix), RangeEnd: []byte(end)}})
			return err
		},
		func() error {
			_, err := s.RoleGrantPermission(ctx, &pb.AuthRoleGrantPermissionRequest{Name: writeRole,
				Perm: &authpb.Permission{PermType: authpb.READWRITE, Key: []byte(cfg.Prefix), RangeEnd: []byte(end)}})
			return err
		},
	}
	for _, u := range cfg.Users {
		role := writeRole
		switch {
		case u.Name == rootUser:
			role = rootUser
		case u.ReadOnly:
			role = readRole
		}
		steps = append(steps,
			func() error {
				_, err := s.UserAdd(ctx, &pb.AuthUserAddRequest{Name: u.Name, Password: u.Password})
				return err
			},
			func() error {
				_, err := s.UserGrantRole(ctx, &pb.AuthUserGrantRoleRequest{User: u.Name, Role: role})
				return err
			})
	}
	steps = append(steps, func() error { _, err := s.AuthEnable(ctx, &pb.AuthEnableRequest{}); return err })
	for _, step := range steps {
		// A start that stopped half way left some behind.
		if err := step(); err != nil && !errors.Is(err, auth.ErrRoleAlreadyExist) && !errors.Is(err, auth.ErrUserAlreadyExist) {
			return fmt.Errorf("etcdserver: turning authentication on: %w", err)
		}
	}
	return nil
}
