package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/readyz" && ready.Load():
			_, _ = w.Write([]byte("ready\n"))
		case r.URL.Path == "/slow":
			time.Sleep(2 * time.Second)
		default:
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	listen := strings.TrimPrefix(srv.URL, "http://")
	port := listen[strings.LastIndex(listen, ":"):]

	tests := []struct {
		name    string
		notRdy  bool
		args    []string
		wantOut string
		wantErr string
	}{
		{name: "url ready", args: []string{"--url", srv.URL + "/readyz"}, wantOut: "200 OK"},
		{name: "url not ready", notRdy: true, args: []string{"--url", srv.URL + "/readyz"}, wantErr: "503"},
		{name: "from http-listen", args: []string{"--http-listen", listen}, wantOut: srv.URL + "/readyz: 200 OK"},
		{name: "unspecified host asks loopback", args: []string{"--http-listen", port}, wantOut: srv.URL + "/readyz"},
		{name: "quiet", args: []string{"--quiet", "--url", srv.URL + "/readyz"}},
		{name: "timeout", args: []string{"--url", srv.URL + "/slow", "--timeout", "100ms"}, wantErr: "deadline"},
		{name: "nothing listens", args: []string{"--url", "http://127.0.0.1:1/readyz"}, wantErr: "refused"},
		{name: "bad listen", args: []string{"--http-listen", "8080"}, wantErr: "want [host]:port"},
		{name: "stray argument", args: []string{"now"}, wantErr: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready.Store(!tt.notRdy)
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"health"}, tt.args...), nil, &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v (%s)", err, errOut.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) || (tt.wantOut == "" && out.Len() > 0) {
				t.Errorf("out = %q, want %q", out.String(), tt.wantOut)
			}
		})
	}
}
