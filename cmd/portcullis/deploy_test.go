package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/portcullis-dev/portcullis/webhook"
	"github.com/portcullis-dev/portcullis/webhook/webhooktest"
)

// TestDeployedWebhookStarts: the Deployment and ConfigMap of
// deploy/webhook.yaml, and of the Helm chart as helm renders it, start
// `portcullis serve` as written (its arguments and portcullis.yaml, with
// the mounted paths moved into a temporary directory), and the webhook
// they start answers the API server's client certificate and refuses
// anyone else with 401.
func TestDeployedWebhookStarts(t *testing.T) {
	t.Parallel()
	t.Run("deploy/webhook.yaml", func(t *testing.T) {
		t.Parallel()
		startDeployed(t, string(readFile(t, filepath.Join("..", "..", "deploy", "webhook.yaml"))))
	})
	t.Run("helm chart", func(t *testing.T) {
		t.Parallel()
		requireTool(t, "helm")
		out, _ := runTool(t, "", nil, "helm", "template", "gate", filepath.Join("..", "..", "deploy", "helm", "portcullis"), "--namespace", "security",
			"--set", "tls.caBundle=Q0E=", "--set", "auth.clientCASecret=apiserver-client-ca")
		startDeployed(t, out)
	})
}

// startDeployed starts the Deployment of manifests with its ConfigMap.
func startDeployed(t *testing.T, manifests string) {
	var args []string
	var config string
	for doc := range strings.SplitSeq(manifests, "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatal(err)
		}
		switch head.Kind {
		case "Deployment":
			var d appsv1.Deployment
			unmarshalYAML(t, doc, &d)
			args = d.Spec.Template.Spec.Containers[0].Args
		case "ConfigMap":
			var c corev1.ConfigMap
			unmarshalYAML(t, doc, &c)
			config = c.Data["portcullis.yaml"]
		}
	}
	if len(args) == 0 || args[0] != "serve" || config == "" {
		t.Fatalf("no Deployment running serve with a ConfigMap's portcullis.yaml: args %q, config %q", args, config)
	}
	root, data := t.TempDir(), t.TempDir()
	etc := filepath.Join(root, "etc")
	for _, d := range []string{"tls", "client-ca"} {
		if err := os.MkdirAll(filepath.Join(etc, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	serving, err := webhook.SelfSigned(filepath.Join(etc, "tls"), []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pki := webhooktest.NewClientPKI(t, t.TempDir(), "kube-apiserver-webhook-client")
	mustWrite(t, filepath.Join(etc, "client-ca", "ca.crt"), string(readFile(t, pki.CAFile)))
	mustWrite(t, filepath.Join(etc, "portcullis.yaml"), strings.ReplaceAll(config, "/etc/portcullis", etc))
	hookAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, a := range args[1:] {
		a = strings.ReplaceAll(a, "/etc/portcullis", etc)
		a = strings.ReplaceAll(a, "/var/lib/portcullis", data)
		a = strings.ReplaceAll(a, "--webhook-addr=:8443", "--webhook-addr="+hookAddr)
		extra = append(extra, a)
	}
	startServer(t, data, extra...)
	// The manifests' own serving certificate (not the self-signed one the
	// server writes without it): the client trusts its CA only.
	if err := os.MkdirAll(filepath.Join(data, "webhook"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(data, "webhook", "ca.crt"), string(readFile(t, serving.CA)))
	review := podReview("shop", "alice", "127.0.0.1:1/staging/x:1", nil)
	if code, body := postReview(t, webhookClient(t, data, nil), "https://"+hookAddr+"/validate", review, ""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d %s", code, body)
	}
	if code, body := postReview(t, webhookClient(t, data, &pki.Cert), "https://"+hookAddr+"/validate", review, ""); code != http.StatusOK || !strings.Contains(body, `"uid":"u-web"`) {
		t.Fatalf("the API server's certificate: %d %s", code, body)
	}
}
