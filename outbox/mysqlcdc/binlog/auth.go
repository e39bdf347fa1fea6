package binlog

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // mysql_native_password is defined with SHA-1
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Authentication plugins the client speaks.
const (
	nativePassword     = "mysql_native_password"
	cachingSHA2        = "caching_sha2_password"
	cachingSHA2Fast    = 0x03 // fast authentication succeeded
	cachingSHA2Full    = 0x04 // the server asks for the clear password
	cachingSHA2PubKey  = 0x02 // the client asks for the server's RSA key
	authMoreData       = 0x01
	authSwitchRequest  = 0xfe
	nativeScrambleSize = 20
)

// scrambleNative answers mysql_native_password's challenge:
// SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
func scrambleNative(scramble []byte, password string) []byte {
	if password == "" {
		return nil
	}
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	h := sha1.New()
	h.Write(scramble[:min(len(scramble), nativeScrambleSize)])
	h.Write(h2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= h1[i]
	}
	return out
}

// scrambleSHA256 answers caching_sha2_password's fast-path challenge:
// SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble).
func scrambleSHA256(scramble []byte, password string) []byte {
	if password == "" {
		return nil
	}
	m1 := sha256.Sum256([]byte(password))
	m2 := sha256.Sum256(m1[:])
	h := sha256.New()
	h.Write(m2[:])
	h.Write(scramble[:min(len(scramble), nativeScrambleSize)])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= m1[i]
	}
	return out
}

// authResponse is the first answer to the plugin's challenge.
func authResponse(plugin string, scramble []byte, password string) ([]byte, error) {
	switch plugin {
	case nativePassword, "":
		return scrambleNative(scramble, password), nil
	case cachingSHA2:
		return scrambleSHA256(scramble, password), nil
	}
	return nil, fmt.Errorf("binlog: authentication plugin %q is not supported (use %s or %s)", plugin, nativePassword, cachingSHA2)
}

// encryptPassword encrypts password+NUL, XORed with the scramble, with the
// server's RSA public key (caching_sha2_password's full authentication
// over a connection without TLS).
func encryptPassword(pemKey, scramble []byte, password string) ([]byte, error) {
	block, _ := pem.Decode(pemKey)
	if block == nil {
		return nil, errors.New("binlog: the server's public key is not PEM")
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("binlog: the server's public key: %w", err)
	}
	key, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("binlog: the server's public key is not RSA")
	}
	plain := append([]byte(password), 0)
	s := scramble[:min(len(scramble), nativeScrambleSize)]
	for i := range plain {
		plain[i] ^= s[i%len(s)]
	}
	return rsa.EncryptOAEP(sha1.New(), rand.Reader, key, plain, nil) //nolint:gosec // the protocol's choice
}

// authenticate runs the exchange after the handshake response until the
// server accepts (OK) or refuses (ERR).
func (c *Conn) authenticate(plugin string, scramble []byte) error {
	for {
		b, err := c.pc.readPacket()
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return errors.New("binlog: empty packet during authentication")
		}
		switch b[0] {
		case okPacket:
			return nil
		case errPacket:
			return fmt.Errorf("binlog: authentication as %q: %w", c.cfg.User, parseError(b))
		case authSwitchRequest:
			r := &reader{b: b[1:]}
			plugin = r.nulString("plugin name")
			if r.err != nil {
				return r.err
			}
			scramble = bytes.TrimSuffix(r.b, []byte{0})
			resp, err := authResponse(plugin, scramble, c.cfg.Password)
			if err != nil {
				return err
			}
			if err := c.pc.writePacket(resp); err != nil {
				return err
			}
		case authMoreData:
			if plugin != cachingSHA2 || len(b) < 2 {
				return fmt.Errorf("binlog: unexpected authentication data for %q", plugin)
			}
			switch b[1] {
			case cachingSHA2Fast:
				// The OK packet follows.
			case cachingSHA2Full:
				if err := c.pc.writePacket([]byte{cachingSHA2PubKey}); err != nil {
					return err
				}
				key, err := c.pc.readPacket()
				if err != nil {
					return err
				}
				if len(key) == 0 || key[0] != authMoreData {
					return errors.New("binlog: the server did not send its public key")
				}
				enc, err := encryptPassword(key[1:], scramble, c.cfg.Password)
				if err != nil {
					return err
				}
				if err := c.pc.writePacket(enc); err != nil {
					return err
				}
			default:
				return fmt.Errorf("binlog: unexpected caching_sha2_password state %d", b[1])
			}
		default:
			return fmt.Errorf("binlog: unexpected packet 0x%02x during authentication", b[0])
		}
	}
}
