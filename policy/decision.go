package policy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/portcullis-dev/portcullis/policy/contract"
)

// messages converts the value of a deny or warn set, as OPA returns it
// ([]any of strings or {msg, details} objects), checking its shape.
func messages(name string, v any) ([]contract.Message, error) {
	elems, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("policy: data.portcullis.%s is %s, want a set of messages", name, jsonType(v))
	}
	out := make([]contract.Message, 0, len(elems))
	for _, e := range elems {
		m, err := message(e)
		if err != nil {
			return nil, fmt.Errorf("policy: data.portcullis.%s: %w", name, err)
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b contract.Message) int { return cmp.Compare(a.Msg, b.Msg) })
	return out, nil
}

func message(e any) (contract.Message, error) {
	switch e := e.(type) {
	case string:
		return contract.Message{Msg: e}, nil
	case map[string]any:
		msg, ok := e["msg"].(string)
		if !ok {
			return contract.Message{}, fmt.Errorf("message %s has no string \"msg\"", abbreviate(e))
		}
		out := contract.Message{Msg: msg}
		for k, v := range e {
			switch k {
			case "msg":
			case "details":
				d, ok := v.(map[string]any)
				if !ok {
					return contract.Message{}, fmt.Errorf("message %q: details is %s, want an object", msg, jsonType(v))
				}
				out.Details = d
			default:
				return contract.Message{}, fmt.Errorf("message %q: unknown key %q (want msg and details)", msg, k)
			}
		}
		return out, nil
	default:
		return contract.Message{}, fmt.Errorf("message %s is %s, want a string or {msg, details}", abbreviate(e), jsonType(e))
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
