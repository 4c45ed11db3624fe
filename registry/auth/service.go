package auth

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/registry"
)

// TokenPath is the Docker token endpoint (the realm of the challenges).
const TokenPath = "/portcullis/v1/token"

// PoliciesPath and the paths below it need policy-admin.
const PoliciesPath = "/portcullis/v1/policies"

// UIPrefix holds the web pages (the decision history): they need
// audit-read, and challenge browsers with Basic.
const UIPrefix = "/ui/"

// OIDCUser is the user name that says the password is an OIDC ID token.
const OIDCUser = "oidc"

// Options configure a Service.
type Options struct {
	// Open turns authentication off: every request passes as it did
	// before access control existed (only PerAddress applies). For
	// loopback development only.
	Open bool
	// Service is the token audience and the challenges' service
	// (default "portcullis"); Issuer the tokens' issuer (default the
	// service).
	Service, Issuer string
	// Realm is the token endpoint's absolute URL in challenges; default
	// the request's own scheme and host followed by TokenPath.
	Realm string
	// TokenTTL is how long issued tokens live (default 5m).
	TokenTTL time.Duration
	// Key signs the tokens (ES256). Required unless Open.
	Key *ecdsa.PrivateKey
	// Users, Robots and OIDC authenticate; any may be nil.
	Users  *Htpasswd
	Robots *Robots
	OIDC   *OIDC
	// Authorizer holds the grants. Required unless Open.
	Authorizer *Authorizer
	// Protected reports whether writes to repo go through the gate (they
	// need promote rather than push).
	Protected func(repo string) bool
	Limits    Limits
	Logger    *slog.Logger
}

// Service authenticates and authorizes the requests of a registry server.
type Service struct {
	o       Options
	tokens  *TokenService
	anon    *Principal
	perID   *limiters
	perAddr *limiters
	failed  *limiters
	uploads *uploadSlots
}

// New checks o and returns the service.
func New(o Options) (*Service, error) {
	if o.Service == "" {
		o.Service = "portcullis"
	}
	if o.Issuer == "" {
		o.Issuer = o.Service
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Protected == nil {
		o.Protected = func(string) bool { return false }
	}
	s := &Service{o: o, perID: newLimiters(o.Limits.PerIdentity), perAddr: newLimiters(o.Limits.PerAddress),
		failed: newLimiters(o.Limits.FailedAuth), uploads: &uploadSlots{max: o.Limits.UploadsPerIdentity, n: map[string]int{}}}
	if o.Open {
		return s, nil
	}
	if o.Key == nil || o.Authorizer == nil {
		return nil, errors.New("auth: a signing key and an authorizer are required")
	}
	s.tokens = NewTokenService(o.Key, o.Issuer, o.Service, o.TokenTTL)
	s.anon = &Principal{Kind: KindAnonymous, authz: o.Authorizer}
	return s, nil
}

// Tokens returns the token service (nil when Open).
func (s *Service) Tokens() *TokenService { return s.tokens }

// need is what a request requires.
type need struct {
	kind   needKind
	checks []check // needAction: every one must pass
	upload bool    // a blob upload request, counted against the upload limit
}

// check is an action on a repository ("" for the registry-wide roles).
type check struct {
	repo   string
	action registry.Action
}

func needs(repo string, action registry.Action) need {
	return need{kind: needAction, checks: []check{{repo, action}}}
}

type needKind int

const (
	needNothing  needKind = iota // health, metrics
	needSession                  // any valid credentials or token, anonymous tokens included (/v2/)
	needCatalog                  // as needSession; the registry filters the listing
	needIdentity                 // an authenticated identity; the handler checks more
	needAction                   // action on repo ("" for registry-wide roles)
)

// IsProbe reports whether path is a health probe: /healthz (the process
// is up) and /readyz (it can serve: database, storage and policies).
func IsProbe(path string) bool { return path == "/healthz" || path == "/readyz" }

// requirement maps a request to what it needs. Anything not listed needs
// an identity: a new endpoint is never open by accident.
func (s *Service) requirement(req *http.Request) need {
	p := req.URL.Path
	switch {
	case p == "/metrics":
		return need{kind: needNothing}
	case p == "/v2" || strings.HasPrefix(p, "/v2/"):
		return s.registryRequirement(req)
	case p == registry.PromotionsPath:
		return promotionRequirement(req)
	case p == PoliciesPath || strings.HasPrefix(p, PoliciesPath+"/"):
		return needs("", registry.ActionPolicyAdmin)
	case strings.HasPrefix(p, "/portcullis/") || strings.HasPrefix(p, UIPrefix):
		// The decision history: decisions, checkpoints, proofs, running.
		return needs("", registry.ActionAuditRead)
	}
	return need{kind: needIdentity}
}

// promotionRequirement reads the promotion request (restoring its body):
// pull on the source and promote on the target. A body it cannot read
// needs an identity only; the registry refuses it.
func promotionRequirement(req *http.Request) need {
	b, err := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(b))
	var pr registry.PromotionRequest
	if err != nil || json.Unmarshal(b, &pr) != nil {
		return need{kind: needIdentity}
	}
	from, to := imageRepository(pr.Source), imageRepository(pr.Target)
	if registry.ValidateRepository(from) != nil || registry.ValidateRepository(to) != nil {
		return need{kind: needIdentity}
	}
	return need{kind: needAction, checks: []check{{from, registry.ActionPull}, {to, registry.ActionPromote}}}
}

// imageRepository is the repository of "repo:tag", "repo@digest" or "repo".
func imageRepository(s string) string {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		return s[:i]
	}
	if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, '/') {
		return s[:i]
	}
	return s
}

func (s *Service) registryRequirement(req *http.Request) need {
	rt, ok := registry.ParsePath(req.URL.Path)
	if !ok {
		return need{kind: needSession}
	}
	write := registry.ActionPush
	if s.o.Protected(rt.Name) {
		write = registry.ActionPromote
	}
	m := req.Method
	read := m == http.MethodGet || m == http.MethodHead
	switch rt.Kind {
	case "base":
		return need{kind: needSession}
	case "catalog":
		return need{kind: needCatalog}
	case "tags", "referrers":
		if read {
			return needs(rt.Name, registry.ActionPull)
		}
	case "manifest", "blob":
		switch {
		case read:
			return needs(rt.Name, registry.ActionPull)
		case m == http.MethodDelete:
			return needs(rt.Name, registry.ActionDelete)
		case m == http.MethodPut && rt.Kind == "manifest":
			return needs(rt.Name, write)
		}
	case "uploads", "upload":
		n := needs(rt.Name, write)
		n.upload = m == http.MethodPost || m == http.MethodPatch || m == http.MethodPut
		return n
	}
	// Methods the registry does not serve: it answers 405 itself.
	return need{kind: needSession}
}

// clientAddr is the request's peer address without the port. Headers
// such as X-Forwarded-For are not trusted.
func clientAddr(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// Middleware wraps next (the whole server: registry, promotions, audit
// API, ...) with authentication, authorization and the limits, and serves
// the token endpoint.
func (s *Service) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Health probes are open and never rate limited: a load balancer
		// must see a replica's health, whatever access control says and
		// however busy its address is. They reveal nothing but "up".
		if IsProbe(req.URL.Path) {
			next.ServeHTTP(w, req)
			return
		}
		addr := clientAddr(req)
		if ok, after := s.perAddr.take(addr); !ok {
			s.tooMany(w, req, after, "too many requests from "+addr)
			return
		}
		if s.o.Open {
			next.ServeHTTP(w, req)
			return
		}
		if req.URL.Path == TokenPath {
			s.serveToken(w, req, addr)
			return
		}
		n := s.requirement(req)
		if n.kind == needNothing {
			next.ServeHTTP(w, req)
			return
		}
		p, ok := s.authenticateRequest(w, req, addr, n)
		if !ok {
			return
		}
		if p.Kind != KindAnonymous {
			if ok, after := s.perID.take(p.Name); !ok {
				s.tooMany(w, req, after, "too many requests from "+p.Name)
				return
			}
		}
		if !s.authorize(w, req, p, n) {
			return
		}
		if n.upload {
			if !s.uploads.acquire(p.Name) {
				s.tooMany(w, req, time.Second, fmt.Sprintf("%s has %d uploads in progress, the limit", p.Name, s.o.Limits.UploadsPerIdentity))
				return
			}
			defer s.uploads.release(p.Name)
		}
		next.ServeHTTP(w, req.WithContext(registry.WithCaller(req.Context(), p)))
	})
}

// authenticateRequest finds the request's principal, or answers 401/429.
func (s *Service) authenticateRequest(w http.ResponseWriter, req *http.Request, addr string, n need) (*Principal, bool) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return s.anon, true
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	if spent, after := s.failed.spent(addr); spent {
		s.tooMany(w, req, after, "too many failed authentications from "+addr)
		return nil, false
	}
	var p *Principal
	var err error
	switch strings.ToLower(scheme) {
	case "basic":
		user, pass, ok := parseBasic(cred)
		if !ok {
			err = errors.New("malformed basic credentials")
			break
		}
		p, err = s.login(req, user, pass)
	case "bearer":
		p, err = s.bearer(req, cred)
	default:
		err = fmt.Errorf("unsupported authorization scheme %q", scheme)
	}
	if err != nil {
		s.failed.take(addr)
		s.o.Logger.InfoContext(req.Context(), "authentication failed", "addr", addr, "path", req.URL.Path, "error", err)
		s.challenge(w, req, n, "invalid_token", "authentication failed: "+err.Error())
		return nil, false
	}
	return p, true
}

func parseBasic(cred string) (user, pass string, ok bool) {
	b, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(b), ":")
}

// login checks a user name and password: a robot token, an OIDC ID token
// (user "oidc") or an htpasswd password.
func (s *Service) login(req *http.Request, user, pass string) (*Principal, error) {
	ctx := req.Context()
	switch {
	case strings.HasPrefix(pass, robotTokenPrefix) && s.o.Robots != nil:
		r, err := s.o.Robots.Authenticate(ctx, pass)
		if err != nil {
			return nil, err
		}
		if user != "" && strings.TrimPrefix(user, RobotPrefix) != r.Name {
			return nil, fmt.Errorf("the token is robot %s's, not %s's", r.Name, user)
		}
		return &Principal{Name: RobotPrefix + r.Name, Kind: KindRobot, robot: r, authz: s.o.Authorizer}, nil
	case user == OIDCUser && s.o.OIDC != nil:
		name, groups, err := s.o.OIDC.Verify(pass)
		if err != nil {
			return nil, err
		}
		return &Principal{Name: name, Kind: KindOIDC, Groups: groups, authz: s.o.Authorizer}, nil
	case s.o.Users != nil:
		if !s.o.Users.Check(user, pass) {
			return nil, errBadCredentials
		}
		return &Principal{Name: user, Kind: KindUser, Groups: s.o.Authorizer.GroupsOf(user), authz: s.o.Authorizer}, nil
	}
	return nil, errBadCredentials
}

// bearer checks a registry token.
func (s *Service) bearer(req *http.Request, tok string) (*Principal, error) {
	c, err := s.tokens.verify(tok)
	if err != nil {
		return nil, err
	}
	p := &Principal{Name: c.Subject, Kind: c.Kind, Groups: c.Groups, access: c.access, authz: s.o.Authorizer}
	switch c.Kind {
	case KindAnonymous:
		p.Name = ""
	case KindRobot:
		if s.o.Robots == nil {
			return nil, errors.New("robots are not enabled")
		}
		r, ok := s.o.Robots.Active(req.Context(), c.Robot)
		if !ok || RobotPrefix+r.Name != c.Subject {
			return nil, fmt.Errorf("robot %s is revoked or expired", c.Subject)
		}
		p.robot = r
	}
	return p, nil
}

// authorize answers 401 or 403 unless p may do what n needs.
func (s *Service) authorize(w http.ResponseWriter, req *http.Request, p *Principal, n need) bool {
	bearer := p.access != nil
	switch n.kind {
	case needSession, needCatalog:
		if p.Kind == KindAnonymous && !bearer {
			s.challenge(w, req, n, "", "authentication required")
			return false
		}
		return true
	case needIdentity:
		if p.Kind == KindAnonymous {
			s.challenge(w, req, n, "", "authentication required")
			return false
		}
		return true
	}
	var missing []check
	identityMay := true
	for _, c := range n.checks {
		if !p.Allowed(c.repo, c.action) {
			missing = append(missing, c)
			identityMay = identityMay && s.o.Authorizer.Allowed(p, c.repo, c.action)
		}
	}
	if len(missing) == 0 {
		return true
	}
	var whats []string
	for _, c := range missing {
		what := string(c.action)
		if c.repo != "" {
			what += " " + c.repo
		}
		whats = append(whats, what)
	}
	what := strings.Join(whats, " and ")
	switch {
	case p.Kind == KindAnonymous:
		s.challenge(w, req, n, errIfBearer(bearer), "authentication required to "+what)
	case bearer && identityMay:
		// The identity may, the token does not say so: ask for another.
		s.challenge(w, req, n, "insufficient_scope", "the token does not grant "+what)
	default:
		s.o.Logger.InfoContext(req.Context(), "access denied", "identity", p.Name, "denied", what, "method", req.Method, "path", req.URL.Path)
		writeError(w, req, http.StatusForbidden, "DENIED", fmt.Sprintf("%s may not %s", p.display(), what))
	}
	return false
}

func errIfBearer(bearer bool) string {
	if bearer {
		return "insufficient_scope"
	}
	return ""
}

// challenge answers 401 UNAUTHORIZED with the Bearer challenge for n.
func (s *Service) challenge(w http.ResponseWriter, req *http.Request, n need, errCode, msg string) {
	if strings.HasPrefix(req.URL.Path, UIPrefix) {
		// Browsers know basic auth, not the token flow.
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q`, s.o.Service))
		writeError(w, req, http.StatusUnauthorized, "UNAUTHORIZED", msg)
		return
	}
	c := fmt.Sprintf(`Bearer realm=%q,service=%q`, s.realm(req), s.o.Service)
	if scope := challengeScope(n); scope != "" {
		c += fmt.Sprintf(`,scope=%q`, scope)
	}
	if errCode != "" {
		c += fmt.Sprintf(`,error=%q`, errCode)
	}
	w.Header().Set("WWW-Authenticate", c)
	writeError(w, req, http.StatusUnauthorized, "UNAUTHORIZED", msg)
}

// challengeScope is the scope (space-separated scopes) a client should
// ask a token for.
func challengeScope(n need) string {
	switch n.kind {
	case needCatalog:
		return "registry:catalog:*"
	case needAction:
		var scopes []string
		for _, c := range n.checks {
			switch {
			case c.repo == "":
				scopes = append(scopes, "registry:portcullis:"+string(c.action))
			case c.action == registry.ActionPush || c.action == registry.ActionPromote:
				scopes = append(scopes, "repository:"+c.repo+":pull,push")
			default:
				scopes = append(scopes, "repository:"+c.repo+":"+string(c.action))
			}
		}
		return strings.Join(scopes, " ")
	}
	return ""
}

func (s *Service) realm(req *http.Request) string {
	if s.o.Realm != "" {
		return s.o.Realm
	}
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + req.Host + TokenPath
}

func (s *Service) tooMany(w http.ResponseWriter, req *http.Request, after time.Duration, msg string) {
	secs := max(1, int(math.Ceil(after.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, req, http.StatusTooManyRequests, "TOOMANYREQUESTS", fmt.Sprintf("%s: retry after %ds", msg, secs))
}

// writeError writes the OCI error JSON.
func writeError(w http.ResponseWriter, req *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(status)
	if req.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}
