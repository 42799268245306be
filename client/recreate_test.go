package client

import (
	"errors"
	"net/http"
	"testing"
)

// TestGone: the ingestor's 410 and a refused fate are both ErrGone, and neither is another
// sentinel.
func TestGone(t *testing.T) {
	t.Parallel()
	refused := (&Fate{EventID: "e", Sequence: 7, Kind: "message_added", Status: FateRefused, Reason: "user_erased", Message: "stored after the erasure"}).Err()
	var ge *GoneError
	if !errors.As(refused, &ge) || ge.Sequence != 7 || ge.Reason != "user_erased" {
		t.Fatalf("refused fate's error: %v", refused)
	}
	for _, err := range []error{refused, &APIError{Op: "add_message", Status: http.StatusGone, Msg: "user erased"}} {
		if !errors.Is(err, ErrGone) {
			t.Errorf("%v is not ErrGone", err)
		}
		for _, other := range []error{ErrRejected, ErrConflict, ErrNotFound, ErrInvalid} {
			if errors.Is(err, other) {
				t.Errorf("%v is also %v", err, other)
			}
		}
	}
}
