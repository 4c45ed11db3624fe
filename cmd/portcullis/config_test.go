package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{
			name: "defaults",
			yaml: "",
			check: func(t *testing.T, c *Config) {
				if c.Addr != "127.0.0.1:5000" || c.Data != "portcullis-data" || c.Storage.Driver != "filesystem" ||
					c.Metadata.SQLite.Path != filepath.Join("portcullis-data", "metadata.db") || time.Duration(c.ShutdownTimeout) != 30*time.Second {
					t.Fatalf("defaults = %+v", c)
				}
			},
		},
		{
			name: "values",
			yaml: "addr: 127.0.0.1:6000\ndata: /srv/p\nshutdownTimeout: 5s\nlog: {level: debug, format: json}\n",
			check: func(t *testing.T, c *Config) {
				if c.Addr != "127.0.0.1:6000" || c.Storage.Filesystem.RootDirectory != "/srv/p/blobs" || time.Duration(c.ShutdownTimeout) != 5*time.Second {
					t.Fatalf("config = %+v", c)
				}
			},
		},
		{name: "unknown field is an error", yaml: "adress: x\n", wantErr: "adress"},
		{name: "unknown nested field", yaml: "storage: {drvier: s3}\n", wantErr: "drvier"},
		{name: "bad driver", yaml: "storage: {driver: gcs}\n", wantErr: "storage.driver"},
		{name: "s3 without bucket", yaml: "storage: {driver: s3}\n", wantErr: "storage.s3.bucket"},
		{name: "postgres without dsn", yaml: "metadata: {driver: postgres}\n", wantErr: "metadata.postgres.dsn"},
		{name: "bad duration", yaml: "shutdownTimeout: soon\n", wantErr: "soon"},
		{name: "bad log format", yaml: "log: {format: xml}\n", wantErr: "log.format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = filepath.Join(t.TempDir(), "portcullis.yaml")
				if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := loadConfig(path)
			if err == nil {
				err = c.defaults()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestRunUnknownCommand(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"frobnicate"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit code = %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unknown command "frobnicate"`) {
		t.Fatalf("stderr = %q", stderr.String())
	}
}
