package socks

import "testing"

func TestParseForward(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Forward
		wantErr string
	}{
		{name: "tcp by default", in: "127.0.0.1:2222=ms1:22", want: Forward{Network: "tcp", Listen: "127.0.0.1:2222", Target: "ms1:22"}},
		{name: "tcp prefix", in: "tcp:127.0.0.1:2222=ms1.mynetwork:22", want: Forward{Network: "tcp", Listen: "127.0.0.1:2222", Target: "ms1.mynetwork:22"}},
		{name: "udp prefix", in: "udp:127.0.0.1:5353=ms1:53", want: Forward{Network: "udp", Listen: "127.0.0.1:5353", Target: "ms1:53"}},
		{name: "IPv6 both sides", in: "[::1]:2222=[fd00::1]:22", want: Forward{Network: "tcp", Listen: "[::1]:2222", Target: "[fd00::1]:22"}},
		{name: "every interface", in: "0.0.0.0:8080=10.1.0.2:80", want: Forward{Network: "tcp", Listen: "0.0.0.0:8080", Target: "10.1.0.2:80"}},
		{name: "listen on a name", in: "localhost:2222=ms1:22", want: Forward{Network: "tcp", Listen: "localhost:2222", Target: "ms1:22"}},

		{name: "empty", in: "", wantErr: `--forward "": want [tcp:|udp:]LISTEN=HOST:PORT`},
		{name: "no equals sign", in: "x", wantErr: `--forward "x": want [tcp:|udp:]LISTEN=HOST:PORT`},
		{name: "ssh style", in: "2222:ms1:22", wantErr: `--forward "2222:ms1:22": want [tcp:|udp:]LISTEN=HOST:PORT`},
		{name: "unknown protocol", in: "sctp:127.0.0.1:2222=ms1:22", wantErr: `--forward "sctp:127.0.0.1:2222=ms1:22": unknown protocol "sctp", want tcp or udp`},
		{name: "listen without port", in: "127.0.0.1=ms1:22", wantErr: `--forward "127.0.0.1=ms1:22": listen address "127.0.0.1": want HOST:PORT`},
		{name: "listen bare port", in: "2222=ms1:22", wantErr: `--forward "2222=ms1:22": listen address "2222": want HOST:PORT`},
		{name: "listen without host", in: ":2222=ms1:22", wantErr: `--forward ":2222=ms1:22": listen address ":2222": missing host (127.0.0.1:2222 for this machine only, 0.0.0.0:2222 for every interface)`},
		{name: "listen port not a number", in: "127.0.0.1:ssh=ms1:22", wantErr: `--forward "127.0.0.1:ssh=ms1:22": listen port "ssh": want a number from 1 to 65535`},
		{name: "listen port 0", in: "127.0.0.1:0=ms1:22", wantErr: `--forward "127.0.0.1:0=ms1:22": listen port "0": want a number from 1 to 65535`},
		{name: "listen port too big", in: "127.0.0.1:65536=ms1:22", wantErr: `--forward "127.0.0.1:65536=ms1:22": listen port "65536": want a number from 1 to 65535`},
		{name: "target without port", in: "127.0.0.1:2222=ms1", wantErr: `--forward "127.0.0.1:2222=ms1": target "ms1": want HOST:PORT`},
		{name: "empty target", in: "127.0.0.1:2222=", wantErr: `--forward "127.0.0.1:2222=": target "": want HOST:PORT`},
		{name: "target without host", in: "127.0.0.1:2222=:22", wantErr: `--forward "127.0.0.1:2222=:22": target ":22": missing host`},
		{name: "target port 0", in: "127.0.0.1:2222=ms1:0", wantErr: `--forward "127.0.0.1:2222=ms1:0": target port "0": want a number from 1 to 65535`},
		{name: "target port negative", in: "127.0.0.1:2222=ms1:-1", wantErr: `--forward "127.0.0.1:2222=ms1:-1": target port "-1": want a number from 1 to 65535`},
		{name: "second equals sign", in: "127.0.0.1:2222=ms1:22=x", wantErr: `--forward "127.0.0.1:2222=ms1:22=x": target port "22=x": want a number from 1 to 65535`},
		{name: "unbracketed IPv6 target", in: "127.0.0.1:2222=fd00::1:22", wantErr: `--forward "127.0.0.1:2222=fd00::1:22": target "fd00::1:22": want HOST:PORT`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseForward(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v\nwant  %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseExpose(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Expose
		wantErr string
	}{
		{name: "tcp by default", in: "22=127.0.0.1:22", want: Expose{Network: "tcp", Port: 22, Target: "127.0.0.1:22"}},
		{name: "tcp prefix", in: "tcp:8080=localhost:80", want: Expose{Network: "tcp", Port: 8080, Target: "localhost:80"}},
		{name: "udp prefix", in: "udp:53=127.0.0.1:5353", want: Expose{Network: "udp", Port: 53, Target: "127.0.0.1:5353"}},
		{name: "highest port", in: "65535=[::1]:65535", want: Expose{Network: "tcp", Port: 65535, Target: "[::1]:65535"}},

		{name: "empty", in: "", wantErr: `--expose "": want [tcp:|udp:]PORT=HOST:PORT`},
		{name: "no equals sign", in: "22", wantErr: `--expose "22": want [tcp:|udp:]PORT=HOST:PORT`},
		{name: "unknown protocol", in: "sctp:22=127.0.0.1:22", wantErr: `--expose "sctp:22=127.0.0.1:22": unknown protocol "sctp", want tcp or udp`},
		{name: "address instead of port", in: "127.0.0.1:22=127.0.0.1:22", wantErr: `--expose "127.0.0.1:22=127.0.0.1:22": port "127.0.0.1:22": want a number from 1 to 65535`},
		{name: "port not a number", in: "ssh=127.0.0.1:22", wantErr: `--expose "ssh=127.0.0.1:22": port "ssh": want a number from 1 to 65535`},
		{name: "port 0", in: "0=127.0.0.1:22", wantErr: `--expose "0=127.0.0.1:22": port "0": want a number from 1 to 65535`},
		{name: "port too big", in: "70000=127.0.0.1:22", wantErr: `--expose "70000=127.0.0.1:22": port "70000": want a number from 1 to 65535`},
		{name: "empty port", in: "=127.0.0.1:22", wantErr: `--expose "=127.0.0.1:22": port "": want a number from 1 to 65535`},
		{name: "target without port", in: "22=127.0.0.1", wantErr: `--expose "22=127.0.0.1": target "127.0.0.1": want HOST:PORT`},
		{name: "target without host", in: "22=:22", wantErr: `--expose "22=:22": target ":22": missing host`},
		{name: "target port not a number", in: "udp:53=127.0.0.1:dns", wantErr: `--expose "udp:53=127.0.0.1:dns": target port "dns": want a number from 1 to 65535`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExpose(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v\nwant  %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
