package stream

import "testing"

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                     "nats://127.0.0.1:4222",
		"nats://engram-ingestor:s3cret@nats:4222":   "nats://REDACTED@nats:4222",
		"nats://tok3n@nats:4222,nats://u:p@@b:4222": "nats://REDACTED@nats:4222,nats://REDACTED@b:4222",
		"user:pw@host:4222":                         "REDACTED@host:4222",
		"tls://a:b@x:4222, nats://y:4222":           "tls://REDACTED@x:4222, nats://y:4222",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
