package main

import "testing"

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "512MiB", want: 512 << 20},
		{in: "1.5GiB", want: 3 << 29},
		{in: "2GB", want: 2e9},
		{in: "16 GiB", want: 16 << 30},
		{in: "-1", wantErr: true},
		{in: "lots", wantErr: true},
		{in: "9999999TiB", wantErr: true},
	}
	for _, tc := range tests {
		var b byteSize
		err := b.Set(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && b.n != tc.want) {
			t.Errorf("%q: got %d, %v; want %d, error %v", tc.in, b.n, err, tc.want, tc.wantErr)
		}
	}
	if memoryLimit() <= 0 {
		t.Error("no memory limit read on a Linux machine")
	}
}
