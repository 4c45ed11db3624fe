package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portcullis-dev/portcullis/audit"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// TestKubeNamespaceLabels (I7): namespace labels come from the real
// kube-apiserver through webhook.kubernetes.kubeconfig. The mode label
// warn admits an unsigned image with a warning (and audit running lists
// it, enforcement warn); relabelled enforce, the
// same pod is denied once the informer has seen the change; a policy set
// with namespaceSelector {env: prod} applies its stricter rule to a
// namespace labelled env=prod (also one created a moment before the pod),
// and the default set to the others.
func TestKubeNamespaceLabels(t *testing.T) {
	hookAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	apiserver := apiServerPKI(t)
	kube := startKube(t, hookAddr, &apiserver)
	ctx := t.Context()
	dir, data := t.TempDir(), t.TempDir()
	release, other := vt.NewKey(t), vt.NewKey(t)
	for name, k := range map[string]any{"release.pub": release.Public(), "other.pub": other.Public()} {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	for bundle, authority := range map[string]string{"policy-default": "release", "policy-prod": "other"} {
		if err := os.MkdirAll(filepath.Join(dir, bundle), 0o755); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(dir, bundle, "data.json"), fmt.Sprintf(`{"portcullis":{"config":{"signatures":{"authorities":[%q]},"errors":{"warnOnly":["scan"]}}}}`, authority))
	}
	mustWrite(t, filepath.Join(dir, "portcullis.yaml"), fmt.Sprintf(`trust:
  authorities:
    - {name: release, keys: [release.pub]}
    - {name: other, keys: [other.pub]}
policies:
  default: {bundle: policy-default}
  sets:
    - name: prod
      kubernetes: {namespaceSelector: {matchLabels: {env: prod}}}
      bundle: policy-prod
webhook:
  kubernetes: {kubeconfig: %s}
  modeLabelRelaxes: true
%s`, kube.kubeconfig, webhookAuthYAML(apiserver)))
	srv := startServer(t, data, "--config", filepath.Join(dir, "portcullis.yaml"), "--webhook-addr", hookAddr)
	reg := vt.Registry{Host: srv.Addr}
	signed := reg.PushImage(t, "staging/web", "1")
	reg.PushKeyBundle(t, release, "staging/web", signed, vt.Statement(t, signed, vt.CosignSign, `{}`))
	unsigned := reg.PushImage(t, "staging/web", "2")
	signedImage, unsignedImage := srv.Addr+"/staging/web@"+signed.String(), srv.Addr+"/staging/web@"+unsigned.String()

	m, v := webhookConfigurations(t, "https://"+hookAddr, readFile(t, filepath.Join(data, "webhook", "ca.crt")))
	if _, err := kube.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createNamespace := func(name string, labels map[string]string) {
		t.Helper()
		if _, err := kube.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// No controller-manager: the default service account by hand.
		if _, err := kube.client.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createNamespace("trial", map[string]string{"portcullis.dev/mode": "warn"})
	createNamespace("payments", map[string]string{"env": "prod"})
	createNamespace("shop", nil)
	createPod := func(ns, name, image string) error {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
		_, err := kube.client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	// until polls f (a dry-run admission) until it returns true.
	until := func(what string, f func() (bool, error)) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ok, err := f()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s (last: %v)", what, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// The API server picks webhook configurations up asynchronously.
	until("the webhook is called", func() (bool, error) {
		err := createPod("shop", "probe", unsignedImage)
		return err != nil && strings.Contains(err.Error(), "portcullis denied"), err
	})
	kube.warnings.take()

	t.Run("mode label warn admits with a warning", func(t *testing.T) {
		if err := createPod("trial", "try", unsignedImage); err != nil {
			t.Fatalf("warn-labelled namespace denied: %v", err)
		}
		if w := strings.Join(kube.warnings.take(), "\n"); !strings.Contains(w, "warn mode in namespace trial") || !strings.Contains(w, "no signature") {
			t.Fatalf("warnings %q, want the would-be denial", w)
		}
		// What warn mode let run is in the decision history as running.
		code, out, errOut := run2(t, "audit", "running", "--data", data, "--namespace", "trial", "--output", "json")
		var running []audit.Entry
		if code != 0 || json.Unmarshal([]byte(out), &running) != nil {
			t.Fatalf("audit running: exit %d %s%s", code, out, errOut)
		}
		if !slices.ContainsFunc(running, func(e audit.Entry) bool {
			return e.Record.Target.Name == "try" && e.Record.Verdict == audit.VerdictDeny && e.Record.Enforcement == audit.EnforcementWarn
		}) {
			t.Fatalf("audit running in trial misses pod try (denied, enforcement warn):\n%s", out)
		}
	})
	t.Run("relabelled enforce denies", func(t *testing.T) {
		patch := []byte(`{"metadata":{"labels":{"portcullis.dev/mode":"enforce"}}}`)
		if _, err := kube.client.CoreV1().Namespaces().Patch(ctx, "trial", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		until("the relabelled namespace denies", func() (bool, error) {
			err := createPod("trial", "try", unsignedImage)
			return err != nil && strings.Contains(err.Error(), `has no signature verified by authority "release"`), err
		})
	})
	t.Run("namespaceSelector set applies to env=prod", func(t *testing.T) {
		if err := createPod("shop", "web", signedImage); err != nil {
			t.Fatalf("the default set denied a release-signed image in shop: %v", err)
		}
		err := createPod("payments", "web", signedImage)
		if err == nil || !strings.Contains(err.Error(), `has no signature verified by authority "other"`) {
			t.Fatalf("env=prod namespace: %v, want the prod set's denial (a signature of other)", err)
		}
	})
	t.Run("a namespace created a moment ago gets its set", func(t *testing.T) {
		createNamespace("payments-new", map[string]string{"env": "prod"})
		err := createPod("payments-new", "web", signedImage)
		if err == nil || !strings.Contains(err.Error(), `has no signature verified by authority "other"`) {
			t.Fatalf("new env=prod namespace: %v, want the prod set's denial", err)
		}
	})
}
