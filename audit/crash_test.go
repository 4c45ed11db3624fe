package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashDirEnv = "AUDIT_CRASH_DIR"

// TestCrashHelper is the child process of TestCrashKeepsAcknowledgedRecords:
// it appends from 8 goroutines until killed, printing "index leafhash" for
// every acknowledged record.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrashKeepsAcknowledgedRecords")
	}
	s, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := OpenSQLite(context.Background(), filepath.Join(dir, "audit.db"), WithSigner(s), WithCheckpointEvery(50, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				e, err := l.Append(context.Background(), record(g*1_000_000+i))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %x\n", e.Index, e.LeafHash)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64][]byte{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acked) < 400 {
		idx, h, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		i, err1 := strconv.ParseUint(idx, 10, 64)
		b, err2 := hex.DecodeString(h)
		if err1 == nil && err2 == nil && len(b) == 32 {
			acked[i] = b
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL, mid-append
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acked) < 400 {
		t.Fatalf("child acknowledged only %d records: %s", len(acked), stderr.String())
	}

	s, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := OpenSQLite(ctx, filepath.Join(dir, "audit.db"), WithSigner(s))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatalf("log after SIGKILL: %v", err)
	}
	for i, h := range acked {
		e, err := l.Get(ctx, i)
		if err != nil {
			t.Fatalf("acknowledged record %d lost: %v", i, err)
		}
		if !bytes.Equal(e.LeafHash, h) {
			t.Fatalf("acknowledged record %d changed", i)
		}
	}
	// The log goes on where it stopped.
	e, err := l.Append(ctx, record(0))
	if err != nil {
		t.Fatal(err)
	}
	if e.Index != rep.Size {
		t.Errorf("append after crash at %d, want %d", e.Index, rep.Size)
	}
	if _, err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records survived the kill, %d acknowledged were read", rep.Size, len(acked))
}
