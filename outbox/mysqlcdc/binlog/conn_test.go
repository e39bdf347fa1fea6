package binlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeServer accepts one connection and runs serve on its packets.
func fakeServer(t *testing.T, serve func(pc *packetConn) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- serve(newPacketConn(c))
	}()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("fake server: %v", err)
		}
	})
	return ln.Addr().String()
}

var testScramble = []byte("abcdefghij0123456789")

// greeting is a HandshakeV10 offering plugin.
func greeting(plugin string) []byte {
	caps := uint32(capProtocol41 | capSecureConn | capPluginAuth | capPluginAuthLenc | capLongPassword)
	b := append([]byte{10}, "10.11.19-MariaDB-log\x00"...)
	b = binary.LittleEndian.AppendUint32(b, 77)
	b = append(append(b, testScramble[:8]...), 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps))
	b = append(b, 45, 2, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps>>16))
	b = append(b, 21)
	b = append(b, make([]byte, 10)...)
	b = append(append(b, testScramble[8:]...), 0)
	return append(append(b, plugin...), 0)
}

// readResponse decodes a HandshakeResponse41: user, auth data, plugin.
func readResponse(pc *packetConn) (user string, auth []byte, plugin string, err error) {
	b, err := pc.readPacket()
	if err != nil {
		return "", nil, "", err
	}
	r := &reader{b: b}
	caps := r.u32("caps")
	r.bytes(4+1+23, "fixed")
	user = r.nulString("user")
	auth = r.bytes(int(r.lenenc("auth")), "auth")
	if caps&capPluginAuth != 0 {
		plugin = r.nulString("plugin")
	}
	return user, auth, plugin, r.err
}

func ok(pc *packetConn) error { return pc.writePacket([]byte{okPacket, 0, 0, 2, 0, 0, 0}) }

func dialFake(addr, password string) (*Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Dial(ctx, Config{Addr: addr, User: "courier", Password: password})
}

func TestNativePassword(t *testing.T) {
	addr := fakeServer(t, func(pc *packetConn) error {
		pc.writePacket(greeting(nativePassword))
		user, auth, plugin, err := readResponse(pc)
		if err != nil {
			return err
		}
		// The server checks SHA1(scramble + stored) XOR auth == SHA1(password).
		h1 := sha1.Sum([]byte("secret"))
		stored := sha1.Sum(h1[:])
		x := sha1.Sum(append(bytes.Clone(testScramble), stored[:]...))
		for i := range x {
			x[i] ^= auth[i]
		}
		if user != "courier" || plugin != nativePassword || x != h1 {
			return pc.writePacket(append([]byte{errPacket, 0x15, 0x04, '#'}, "28000Access denied"...))
		}
		return ok(pc)
	})
	c, err := dialFake(addr, "secret")
	if err != nil {
		t.Fatal(err)
	}
	if !c.MariaDB() || c.ConnectionID() != 77 {
		t.Fatalf("version %q id %d", c.ServerVersion(), c.ConnectionID())
	}
	c.Close()
}

func TestWrongPasswordIsAServerError(t *testing.T) {
	addr := fakeServer(t, func(pc *packetConn) error {
		pc.writePacket(greeting(nativePassword))
		if _, _, _, err := readResponse(pc); err != nil {
			return err
		}
		return pc.writePacket(append([]byte{errPacket, 0x15, 0x04, '#'}, "28000Access denied for user"...))
	})
	_, err := dialFake(addr, "wrong")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != 1045 || se.SQLState != "28000" || !strings.Contains(err.Error(), "Access denied") {
		t.Fatalf("err = %v", err)
	}
}

func TestCachingSHA2FastAndFullAuthentication(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, full := range []bool{false, true} {
		addr := fakeServer(t, func(pc *packetConn) error {
			// Offer native first, then switch to caching_sha2_password.
			pc.writePacket(greeting(nativePassword))
			if _, _, _, err := readResponse(pc); err != nil {
				return err
			}
			pc.writePacket(append(append([]byte{authSwitchRequest}, cachingSHA2+"\x00"...), append(bytes.Clone(testScramble), 0)...))
			auth, err := pc.readPacket()
			if err != nil {
				return err
			}
			if !bytes.Equal(auth, scrambleSHA256(testScramble, "pw")) {
				return errors.New("wrong sha256 scramble")
			}
			if !full {
				pc.writePacket([]byte{authMoreData, cachingSHA2Fast})
				return ok(pc)
			}
			pc.writePacket([]byte{authMoreData, cachingSHA2Full})
			if req, err := pc.readPacket(); err != nil || !bytes.Equal(req, []byte{cachingSHA2PubKey}) {
				return errors.New("no public key request")
			}
			pc.writePacket(append([]byte{authMoreData}, pemKey...))
			enc, err := pc.readPacket()
			if err != nil {
				return err
			}
			plain, err := rsa.DecryptOAEP(sha1.New(), nil, key, enc, nil)
			if err != nil {
				return err
			}
			for i := range plain {
				plain[i] ^= testScramble[i%20]
			}
			if string(plain) != "pw\x00" {
				return errors.New("wrong clear password")
			}
			return ok(pc)
		})
		c, err := dialFake(addr, "pw")
		if err != nil {
			t.Fatalf("full=%v: %v", full, err)
		}
		c.Close()
	}
}

func TestDialHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(2 * time.Second) // never greets
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Dial(ctx, Config{Addr: ln.Addr().String(), User: "u"}); err == nil || time.Since(start) > time.Second {
		t.Fatalf("Dial = %v after %v", err, time.Since(start))
	}
}

func TestLongPacketsAreJoined(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	payload := bytes.Repeat([]byte{7}, maxPayload+10)
	go newPacketConn(a).writePacket(payload)
	got, err := newPacketConn(b).readPacket()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
}

// dumpServer greets, accepts every command until COM_BINLOG_DUMP, then
// sends events and leaves the connection open and silent until the client
// goes.
func dumpServer(t *testing.T, events ...[]byte) string {
	return fakeServer(t, func(pc *packetConn) error {
		pc.writePacket(greeting(nativePassword))
		if _, _, _, err := readResponse(pc); err != nil {
			return err
		}
		ok(pc)
		for {
			pc.seq = 0
			cmd, err := pc.readPacket()
			if err != nil {
				return err
			}
			if cmd[0] != comBinlogDump {
				ok(pc)
				continue
			}
			for _, ev := range events {
				if err := pc.writePacket(append([]byte{okPacket}, ev...)); err != nil {
					return err
				}
			}
			// Wait for the client to hang up.
			pc.readPacket()
			return nil
		}
	})
}

func TestSilentSourceIsDetectedDead(t *testing.T) {
	addr := dumpServer(t, event(XIDEvent, binary.LittleEndian.AppendUint64(nil, 1)))
	c, err := dialFake(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.Dump(ctx, DumpConfig{ServerID: 9, File: "f", Position: 4, Heartbeat: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Next(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Next(ctx)
	if err == nil || !strings.Contains(err.Error(), "presumed dead") || time.Since(start) > 2*time.Second {
		t.Fatalf("Next on a silent source = %v after %v", err, time.Since(start))
	}
}

func TestStreamErrorAndClose(t *testing.T) {
	errEv := append([]byte{errPacket, 0xd4, 0x04, '#'}, "HY000Could not find first log file name in binary log index file"...)
	addr := fakeServer(t, func(pc *packetConn) error {
		pc.writePacket(greeting(nativePassword))
		readResponse(pc)
		ok(pc)
		for {
			pc.seq = 0
			cmd, err := pc.readPacket()
			if err != nil {
				return err
			}
			if cmd[0] == comBinlogDump {
				return pc.writePacket(errEv)
			}
			ok(pc)
		}
	})
	c, err := dialFake(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Dump(ctx, DumpConfig{}); err == nil {
		t.Fatal("server id 0 accepted")
	}
	if _, err := c.Dump(ctx, DumpConfig{ServerID: 3, GTID: "0-1-1'"}); err == nil {
		t.Fatal("a GTID with a quote was accepted")
	}
	st, err := c.Dump(ctx, DumpConfig{ServerID: 3, GTID: "0-1-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Next(ctx)
	var se *ServerError
	if !errors.As(err, &se) || se.Code != 1236 {
		t.Fatalf("Next after the source refused = %v", err)
	}
	st.Close()
	if _, err := st.Next(ctx); !errors.Is(err, net.ErrClosed) && err == nil {
		t.Fatalf("Next after Close = %v", err)
	}
}
