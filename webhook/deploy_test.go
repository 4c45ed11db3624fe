package webhook

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// TestDeployManifests keeps deploy/webhook.yaml in step with the code:
// every kind the webhook checks is routed to it, to the right path, with
// a timeout above the webhook's own deadline and failing closed.
func TestDeployManifests(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "deploy", "webhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	groupOf := map[string]string{"pods": "", "replicationcontrollers": "", "deployments": "apps", "replicasets": "apps",
		"statefulsets": "apps", "daemonsets": "apps", "jobs": "batch", "cronjobs": "batch"}
	seen := map[string]bool{}
	for doc := range strings.SplitSeq(string(b), "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatal(err)
		}
		var hooks []admissionregistrationv1.ValidatingWebhook
		switch head.Kind {
		case "ValidatingWebhookConfiguration":
			var c admissionregistrationv1.ValidatingWebhookConfiguration
			if err := yaml.UnmarshalStrict([]byte(doc), &c); err != nil {
				t.Fatal(err)
			}
			hooks = c.Webhooks
		case "MutatingWebhookConfiguration":
			var c admissionregistrationv1.MutatingWebhookConfiguration
			if err := yaml.UnmarshalStrict([]byte(doc), &c); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.Webhooks {
				if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
					t.Errorf("%s: reinvocationPolicy should be IfNeeded (pin images added by later webhooks)", w.Name)
				}
				hooks = append(hooks, admissionregistrationv1.ValidatingWebhook{Name: w.Name, ClientConfig: w.ClientConfig, Rules: w.Rules,
					FailurePolicy: w.FailurePolicy, TimeoutSeconds: w.TimeoutSeconds, AdmissionReviewVersions: w.AdmissionReviewVersions})
			}
		default:
			continue
		}
		seen[head.Kind] = true
		for _, w := range hooks {
			wantPath := map[string]string{"ValidatingWebhookConfiguration": "/validate", "MutatingWebhookConfiguration": "/mutate"}[head.Kind]
			if w.ClientConfig.Service == nil || w.ClientConfig.Service.Path == nil || *w.ClientConfig.Service.Path != wantPath {
				t.Errorf("%s: path, want %s", w.Name, wantPath)
			}
			if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Fail {
				t.Errorf("%s: failurePolicy should be Fail", w.Name)
			}
			if w.TimeoutSeconds == nil || time.Duration(*w.TimeoutSeconds)*time.Second <= cfg.Timeout {
				t.Errorf("%s: timeoutSeconds should exceed the webhook's deadline (%s)", w.Name, cfg.Timeout)
			}
			if !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
				t.Errorf("%s: admissionReviewVersions %v", w.Name, w.AdmissionReviewVersions)
			}
			routed := map[string]bool{}
			for _, r := range w.Rules {
				for _, res := range r.Resources {
					for _, g := range r.APIGroups {
						if groupOf[res] == g {
							routed[res] = true
						}
					}
				}
			}
			for res := range groupOf {
				if !routed[res] {
					t.Errorf("%s: %s not routed to the webhook", w.Name, res)
				}
			}
		}
	}
	if len(seen) != 2 {
		t.Errorf("webhook configurations found: %v", seen)
	}
}
