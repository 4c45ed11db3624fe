package auth

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/registry"
)

// tokenResponse is the Docker token endpoint's answer; the OAuth2 form
// (POST) uses access_token and token_type.
type tokenResponse struct {
	Token       string `json:"token,omitempty"`
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type,omitempty"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
	Scope       string `json:"scope,omitempty"`
}

// serveToken is the token endpoint: GET with basic auth (Docker token
// specification) or POST with a password grant (OAuth2, as containerd and
// docker send). Anonymous requests get the anonymous grants. The token
// carries the requested scopes the caller holds, and no others.
func (s *Service) serveToken(w http.ResponseWriter, req *http.Request, addr string) {
	var scopes []string
	var user, pass string
	var haveCreds, oauth bool
	switch req.Method {
	case http.MethodGet:
		q := req.URL.Query()
		if svc := q.Get("service"); svc != "" && svc != s.o.Service {
			writeError(w, req, http.StatusBadRequest, "UNSUPPORTED", "tokens are issued for service "+s.o.Service+" only")
			return
		}
		for _, sc := range q["scope"] {
			scopes = append(scopes, strings.Fields(sc)...)
		}
	case http.MethodPost:
		oauth = true
		req.Body = http.MaxBytesReader(w, req.Body, 1<<16)
		if err := req.ParseForm(); err != nil {
			writeError(w, req, http.StatusBadRequest, "UNSUPPORTED", "token request: "+err.Error())
			return
		}
		if svc := req.PostForm.Get("service"); svc != "" && svc != s.o.Service {
			writeError(w, req, http.StatusBadRequest, "UNSUPPORTED", "tokens are issued for service "+s.o.Service+" only")
			return
		}
		switch gt := req.PostForm.Get("grant_type"); gt {
		case "password":
			user, pass, haveCreds = req.PostForm.Get("username"), req.PostForm.Get("password"), true
		default:
			// No refresh tokens are issued: clients fall back to GET.
			writeError(w, req, http.StatusBadRequest, "UNSUPPORTED", "unsupported grant_type "+gt+": use password, or GET with basic auth")
			return
		}
		scopes = strings.Fields(req.PostForm.Get("scope"))
	default:
		writeError(w, req, http.StatusMethodNotAllowed, "UNSUPPORTED", "use GET or POST")
		return
	}
	if !haveCreds {
		if h := req.Header.Get("Authorization"); h != "" {
			scheme, cred, _ := strings.Cut(h, " ")
			u, p, ok := parseBasic(strings.TrimSpace(cred))
			if !strings.EqualFold(scheme, "basic") || !ok {
				s.failed.take(addr)
				s.challengeToken(w, req, "the token endpoint takes basic credentials")
				return
			}
			user, pass, haveCreds = u, p, true
		}
	}
	p := s.anon
	if haveCreds {
		if spent, after := s.failed.spent(addr); spent {
			s.tooMany(w, req, after, "too many failed authentications from "+addr)
			return
		}
		var err error
		if p, err = s.login(req, user, pass); err != nil {
			s.failed.take(addr)
			s.o.Logger.InfoContext(req.Context(), "authentication failed", "addr", addr, "user", user, "error", err)
			s.challengeToken(w, req, "authentication failed: "+err.Error())
			return
		}
		if ok, after := s.perID.take(p.Name); !ok {
			s.tooMany(w, req, after, "too many requests from "+p.Name)
			return
		}
	}
	var access []Access
	for _, sc := range scopes {
		a, err := ParseScope(sc)
		if err != nil {
			writeError(w, req, http.StatusBadRequest, "UNSUPPORTED", err.Error())
			return
		}
		if g := s.grant(p, a); len(g.Actions) > 0 {
			access = append(access, g)
		}
	}
	tok, issued, err := s.tokens.Issue(p, access)
	if err != nil {
		writeError(w, req, http.StatusInternalServerError, "UNKNOWN", "signing the token failed")
		return
	}
	resp := tokenResponse{AccessToken: tok, ExpiresIn: int(s.tokens.TTL() / time.Second), IssuedAt: issued.UTC().Format(time.RFC3339)}
	if oauth {
		resp.TokenType = "Bearer"
		var granted []string
		for _, a := range access {
			granted = append(granted, a.Type+":"+a.Name+":"+strings.Join(a.Actions, ","))
		}
		resp.Scope = strings.Join(granted, " ")
	} else {
		resp.Token = tok
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Service) challengeToken(w http.ResponseWriter, req *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+s.o.Service+`"`)
	writeError(w, req, http.StatusUnauthorized, "UNAUTHORIZED", msg)
}

// grant returns the part of a requested scope that p holds.
func (s *Service) grant(p *Principal, a Access) Access {
	out := Access{Type: a.Type, Name: a.Name}
	add := func(act string) {
		if !slices.Contains(out.Actions, act) {
			out.Actions = append(out.Actions, act)
		}
	}
	authz := s.o.Authorizer
	switch {
	case a.Type == "repository":
		if registry.ValidateRepository(a.Name) != nil {
			return out
		}
		write := registry.ActionPush
		if s.o.Protected(a.Name) {
			write = registry.ActionPromote
		}
		for _, act := range a.Actions {
			if (act == "pull" || act == "*") && authz.Allowed(p, a.Name, registry.ActionPull) {
				add("pull")
			}
			if (act == "push" || act == "*") && authz.Allowed(p, a.Name, write) {
				add("push")
			}
			if (act == "delete" || act == "*") && authz.Allowed(p, a.Name, registry.ActionDelete) {
				add("delete")
			}
		}
	case a.Type == "registry" && a.Name == "catalog":
		// Everyone may ask; the listing shows only what they may pull.
		add("*")
	case a.Type == "registry" && a.Name == "portcullis":
		for _, act := range a.Actions {
			if r := registry.Action(act); registryWide(r) && authz.Allowed(p, "", r) {
				add(act)
			}
		}
	}
	return out
}
