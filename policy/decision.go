package policy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// Decision is the outcome of evaluating a policy for one input.
type Decision struct {
	// Allow is true only when the policy evaluated without error and its
	// deny set is empty.
	Allow bool `json:"allow"`
	// Deny and Warn are the policy's messages, sorted by Msg.
	Deny []Message `json:"deny"`
	Warn []Message `json:"warn"`
	// Revision is the digest of the compiled bundle ([Bundle].Revision).
	Revision string `json:"revision"`
	// PolicySet names the policy set that decided, when a [Set] chose it.
	PolicySet string `json:"policySet,omitempty"`
	// Error says why evaluation failed; the decision is then a denial.
	Error string `json:"error,omitempty"`
}

// Message is one reason a policy gives.
type Message struct {
	// Msg is an actionable sentence.
	Msg string `json:"msg"`
	// Details is structured data the policy added (the library adds
	// "policy", naming itself, and what the message is about).
	Details map[string]any `json:"details,omitempty"`
}

// messages converts the value of a deny or warn set, as OPA returns it
// ([]any of strings or {msg, details} objects), checking its shape.
func messages(name string, v any) ([]Message, error) {
	elems, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("policy: data.portcullis.%s is %s, want a set of messages", name, jsonType(v))
	}
	out := make([]Message, 0, len(elems))
	for _, e := range elems {
		m, err := message(e)
		if err != nil {
			return nil, fmt.Errorf("policy: data.portcullis.%s: %w", name, err)
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b Message) int { return cmp.Compare(a.Msg, b.Msg) })
	return out, nil
}

func message(e any) (Message, error) {
	switch e := e.(type) {
	case string:
		return Message{Msg: e}, nil
	case map[string]any:
		msg, ok := e["msg"].(string)
		if !ok {
			return Message{}, fmt.Errorf("message %s has no string \"msg\"", abbreviate(e))
		}
		out := Message{Msg: msg}
		for k, v := range e {
			switch k {
			case "msg":
			case "details":
				d, ok := v.(map[string]any)
				if !ok {
					return Message{}, fmt.Errorf("message %q: details is %s, want an object", msg, jsonType(v))
				}
				out.Details = d
			default:
				return Message{}, fmt.Errorf("message %q: unknown key %q (want msg and details)", msg, k)
			}
		}
		return out, nil
	default:
		return Message{}, fmt.Errorf("message %s is %s, want a string or {msg, details}", abbreviate(e), jsonType(e))
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, int:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

func abbreviate(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}
