package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// The kinds of failure the API tells apart. A backend marks an error with
// one (see Error and Errorf); the server answers with its status code, and
// the client's error is of the kind again, so errors.Is works at both ends.
// An error of no kind is the daemon's own failure: 500.
var (
	ErrBadRequest = errors.New("bad request")    // 400: the request can never succeed as sent
	ErrNotFound   = errors.New("not found")      // 404: no such peer or route
	ErrConflict   = errors.New("conflict")       // 409: the node's state (or its config file) stands in the way
	ErrInternal   = errors.New("internal error") // 500
	// ErrMesh is a failure out on the mesh: a dial refused, a ping not
	// answered. A backend returns such errors without a kind; the server
	// answers 502 for them where the mesh is what failed, and the client
	// gives this kind back.
	ErrMesh = errors.New("failed on the mesh") // 502
)

// kindStatus is the one mapping between kinds and status codes.
var kindStatus = []struct {
	kind error
	code int
}{
	{ErrBadRequest, http.StatusBadRequest},
	{ErrNotFound, http.StatusNotFound},
	{ErrConflict, http.StatusConflict},
	{ErrInternal, http.StatusInternalServerError},
	{ErrMesh, http.StatusBadGateway},
}

// Error is an error of a kind. Its message is Err's alone: the kind is for
// programs, the message for people.
type Error struct {
	Kind error // ErrBadRequest, ErrNotFound, ErrConflict, ErrInternal or ErrMesh
	Err  error
}

func (e *Error) Error() string   { return e.Err.Error() }
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// Errorf formats an error of kind, as fmt.Errorf does.
func Errorf(kind error, format string, a ...any) error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, a...)}
}

// statusOf is the status code that answers err: its kind's, or otherwise
// for an error of no kind.
func statusOf(err error, otherwise int) int {
	for _, ks := range kindStatus {
		if errors.Is(err, ks.kind) {
			return ks.code
		}
	}
	return otherwise
}

// fail answers err with its kind's status code, 500 for none, and the
// JSON body {"error": ...}.
func fail(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err, http.StatusInternalServerError), apiError{err.Error()})
}

// errorFrom turns a failed answer into the daemon's error: its message,
// of the kind its status code stands for. Only an answer without a
// message (one net/http made) falls back to the status.
func errorFrom(resp *http.Response) error {
	var e apiError
	if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
		e.Error = "daemon answered " + resp.Status
	}
	for _, ks := range kindStatus {
		if ks.code == resp.StatusCode {
			return &Error{Kind: ks.kind, Err: errors.New(e.Error)}
		}
	}
	return errors.New(e.Error)
}
