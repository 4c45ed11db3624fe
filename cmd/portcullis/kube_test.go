package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
	"github.com/portcullis-dev/portcullis/webhook/webhooktest"
)

// kubeCluster is a real kube-apiserver (with Debian's etcd) on loopback:
// no controller-manager, no kubelet, so objects are stored, not run.
type kubeCluster struct {
	client   *kubernetes.Clientset
	warnings *warningLog
	logs     *syncBuffer
	// kubeconfig is a kubeconfig file for the cluster admin (token,
	// server certificate not verified).
	kubeconfig string
}

// warningLog collects the Warning headers the API server returns (the
// webhook's AdmissionReview warnings arrive this way).
type warningLog struct {
	mu  sync.Mutex
	all []string
}

func (w *warningLog) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all = append(w.all, text)
}

func (w *warningLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.all
	w.all = nil
	return out
}

// startKube starts etcd and kube-apiserver (the versions .ci/tools.sh
// pins) and returns a client authenticated as a cluster admin named
// "admin". With a webhook address and client PKI, the API server
// authenticates to the webhook at that address with the client
// certificate, configured as a cluster would: through
// --admission-control-config-file and a kubeconfig.
func startKube(t *testing.T, hookAddr string, hookClient *webhooktest.ClientPKI) *kubeCluster {
	t.Helper()
	etcdBin := requireTool(t, "etcd")
	apiBin := requireTool(t, "kube-apiserver")
	dir := t.TempDir()
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			out := logs.String()
			if len(out) > 8000 {
				out = out[len(out)-8000:]
			}
			t.Logf("etcd and kube-apiserver output (tail):\n%s", out)
		}
	})
	start := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	ports := make([]string, 3)
	for i := range ports {
		a, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		_, ports[i], _ = net.SplitHostPort(a)
	}
	etcdURL, peerURL := "http://127.0.0.1:"+ports[0], "http://127.0.0.1:"+ports[1]
	start(etcdBin, "--name", "portcullis-test", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "portcullis-test="+peerURL, "--log-level", "warn")

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	writeFile(t, filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	var admission []string
	if hookClient != nil {
		kubeconfig := filepath.Join(dir, "webhook-kubeconfig.yaml")
		// users[].name is the host and port of the webhook's URL.
		mustWrite(t, kubeconfig, fmt.Sprintf("apiVersion: v1\nkind: Config\nusers:\n- name: %q\n  user:\n    client-certificate: %s\n    client-key: %s\n",
			hookAddr, hookClient.CertFile, hookClient.KeyFile))
		plugin := func(name string) string {
			return fmt.Sprintf("- name: %s\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n    kind: WebhookAdmissionConfiguration\n    kubeConfigFile: %s\n", name, kubeconfig)
		}
		mustWrite(t, filepath.Join(dir, "admission.yaml"), "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n"+
			plugin("ValidatingAdmissionWebhook")+plugin("MutatingAdmissionWebhook"))
		admission = []string{"--admission-control-config-file=" + filepath.Join(dir, "admission.yaml")}
	}
	token := "admin-" + uniqueName("token")
	writeFile(t, filepath.Join(dir, "tokens.csv"), []byte(token+`,admin,admin-uid,"system:masters"`+"\n"))
	start(apiBin, append([]string{"--etcd-servers=" + etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + ports[2], "--cert-dir=" + filepath.Join(dir, "certs"), "--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=AlwaysAllow", "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(dir, "sa.pub"), "--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24", "--endpoint-reconciler-type=none"}, admission...)...)

	host := "https://127.0.0.1:" + ports[2]
	ready := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(90 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := ready.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready after 90s (last: %v)", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	warnings := &warningLog{}
	client, err := kubernetes.NewForConfig(&rest.Config{Host: host, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}, WarningHandler: warnings, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "admin-kubeconfig.yaml")
	mustWrite(t, kubeconfig, fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {server: %q, insecure-skip-tls-verify: true}\n"+
		"users:\n- name: admin\n  user: {token: %q}\ncontexts:\n- name: test\n  context: {cluster: test, user: admin}\ncurrent-context: test\n", host, token))
	return &kubeCluster{client: client, warnings: warnings, logs: logs, kubeconfig: kubeconfig}
}

// webhookConfigurations reads the two configurations from
// deploy/webhook.yaml, pointing them at url instead of the in-cluster
// service.
func webhookConfigurations(t *testing.T, url string, caBundle []byte) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	t.Helper()
	b := readFile(t, filepath.Join("..", "..", "deploy", "webhook.yaml"))
	var (
		m *admissionregistrationv1.MutatingWebhookConfiguration
		v *admissionregistrationv1.ValidatingWebhookConfiguration
	)
	client := func(cc *admissionregistrationv1.WebhookClientConfig) {
		u := url + *cc.Service.Path
		cc.Service, cc.URL, cc.CABundle = nil, &u, caBundle
	}
	for doc := range strings.SplitSeq(string(b), "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatal(err)
		}
		switch head.Kind {
		case "MutatingWebhookConfiguration":
			m = &admissionregistrationv1.MutatingWebhookConfiguration{}
			unmarshalYAML(t, doc, m)
			for i := range m.Webhooks {
				client(&m.Webhooks[i].ClientConfig)
			}
		case "ValidatingWebhookConfiguration":
			v = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			unmarshalYAML(t, doc, v)
			for i := range v.Webhooks {
				client(&v.Webhooks[i].ClientConfig)
			}
		}
	}
	if m == nil || v == nil {
		t.Fatal("deploy/webhook.yaml lacks a webhook configuration")
	}
	return m, v
}

func unmarshalYAML(t *testing.T, doc string, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		t.Fatalf("deploy/webhook.yaml: %v", err)
	}
}

// mustWrite fails the test on a write error.
func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(fmt.Errorf("write %s: %w", path, err))
	}
}

// TestKubeAdmission: a real kube-apiserver calls `portcullis serve
// --webhook-addr`, registered with the configurations in
// deploy/webhook.yaml. A promoted image is admitted and pinned to its
// digest (on the fast path: the promotion's verification summary); an
// unsigned one is denied with the policy's message, also inside a
// Deployment beside an allowed image; warn mode admits with a warning;
// break glass admits and is recorded; and every admission is in the
// decision history.
func TestKubeAdmission(t *testing.T) {
	hookAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	apiserver := apiServerPKI(t)
	kube := startKube(t, hookAddr, &apiserver)
	ctx := t.Context()
	dir, data := t.TempDir(), t.TempDir()
	key := writeTrustedKey(t, filepath.Join(dir, "release.pub"))
	mustWrite(t, filepath.Join(dir, "portcullis.yaml"), fmt.Sprintf(`trust:
  authorities:
    - name: release
      keys: [release.pub]
webhook:
  namespaces: {sandbox: warn}
  breakGlass:
    - {namespace: ops, until: %q}
%s`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), webhookAuthYAML(apiserver)))
	srv := startServer(t, data, "--config", filepath.Join(dir, "portcullis.yaml"), "--webhook-addr", hookAddr)
	reg := vt.Registry{Host: srv.Addr}
	signed := reg.PushImage(t, "staging/web", "1")
	reg.PushKeyBundle(t, key, "staging/web", signed, vt.Statement(t, signed, vt.CosignSign, `{}`))
	unsigned := reg.PushImage(t, "staging/web", "2")
	promote(t, srv.Addr+"/staging/web@"+signed.String(), srv.Addr+"/prod/web:1")
	prodImage, unsignedImage := srv.Addr+"/prod/web:1", srv.Addr+"/staging/web@"+unsigned.String()

	m, v := webhookConfigurations(t, "https://"+hookAddr, readFile(t, filepath.Join(data, "webhook", "ca.crt")))
	if _, err := kube.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"shop", "sandbox", "ops"} {
		if _, err := kube.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// No controller-manager: the default service account by hand.
		if _, err := kube.client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(ns, name string, annotations map[string]string, images ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations}}
		for i, img := range images {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
		}
		return p
	}
	createPod := func(p *corev1.Pod, dryRun bool) (*corev1.Pod, error) {
		o := metav1.CreateOptions{}
		if dryRun {
			o.DryRun = []string{metav1.DryRunAll}
		}
		return kube.client.CoreV1().Pods(p.Namespace).Create(ctx, p, o)
	}
	// The API server picks webhook configurations up asynchronously: wait
	// until a dry run of an unsigned pod is denied.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := createPod(pod("shop", "probe", nil, unsignedImage), true)
		if err != nil && strings.Contains(err.Error(), "portcullis denied") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook was not called within 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	kube.warnings.take()

	t.Run("promoted image admitted and pinned", func(t *testing.T) {
		got, err := createPod(pod("shop", "web", nil, prodImage), false)
		if err != nil {
			t.Fatalf("pod with %s: %v", prodImage, err)
		}
		if want := prodImage + "@" + signed.String(); got.Spec.Containers[0].Image != want {
			t.Fatalf("stored image %q, want it pinned to %q", got.Spec.Containers[0].Image, want)
		}
	})
	t.Run("unsigned image denied with the policy's message", func(t *testing.T) {
		_, err := createPod(pod("shop", "bad", nil, unsignedImage), false)
		if err == nil || !strings.Contains(err.Error(), "has no signature verified by a configured authority (release)") {
			t.Fatalf("error %v, want the policy's denial", err)
		}
	})
	t.Run("deployment with one unsigned container denied", func(t *testing.T) {
		labels := map[string]string{"app": "web"}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: pod("shop", "", nil, prodImage, unsignedImage).Spec}}}
		_, err := kube.client.AppsV1().Deployments("shop").Create(ctx, d, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), unsigned.String()) || strings.Contains(err.Error(), signed.String()+`"`) {
			t.Fatalf("error %v, want a denial naming only the unsigned image", err)
		}
		d.Spec.Template.Spec.Containers = d.Spec.Template.Spec.Containers[:1]
		got, err := kube.client.AppsV1().Deployments("shop").Create(ctx, d, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("deployment of the promoted image: %v", err)
		}
		if img := got.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, "@"+signed.String()) {
			t.Fatalf("deployment image %q is not pinned", img)
		}
	})
	t.Run("warn mode admits with a warning", func(t *testing.T) {
		if _, err := createPod(pod("sandbox", "try", nil, unsignedImage), false); err != nil {
			t.Fatalf("warn mode denied: %v", err)
		}
		if w := strings.Join(kube.warnings.take(), "\n"); !strings.Contains(w, "warn mode in namespace sandbox") || !strings.Contains(w, "no signature") {
			t.Fatalf("warnings %q, want the would-be denial", w)
		}
	})
	t.Run("break glass admits and is recorded", func(t *testing.T) {
		if _, err := createPod(pod("ops", "plain", nil, unsignedImage), false); err == nil {
			t.Fatal("an unsigned pod without break glass was admitted in ops")
		}
		why := "INC-4711: restore checkout"
		if _, err := createPod(pod("ops", "fix", map[string]string{"portcullis.dev/break-glass": why}, unsignedImage), false); err != nil {
			t.Fatalf("break glass refused: %v", err)
		}
		if w := strings.Join(kube.warnings.take(), "\n"); !strings.Contains(w, "BREAK GLASS by admin") {
			t.Fatalf("warnings %q, want the break-glass notice", w)
		}
		code, out, errOut := run2(t, "audit", "query", "--server", srv.URL(""), "--action", "break-glass", "--output", "json")
		if code != 0 || !strings.Contains(out, why) || !strings.Contains(out, `"kubernetesUser": "admin"`) || !strings.Contains(out, unsigned.String()) {
			t.Fatalf("audit query exit %d: %s%s", code, out, errOut)
		}
	})
	t.Run("admissions are in the decision history", func(t *testing.T) {
		code, out, errOut := run2(t, "audit", "query", "--server", srv.URL(""), "--action", "admit", "--digest", signed.String(), "--verdict", "allow", "--output", "json")
		if code != 0 || !strings.Contains(out, `"namespace": "shop"`) || !strings.Contains(out, `"vsaDigest": "sha256:`) || !strings.Contains(out, `"kubernetesUser": "admin"`) {
			t.Fatalf("audit query exit %d: want the admission of the promoted image on its VSA, by admin:\n%s%s", code, out, errOut)
		}
		code, out, errOut = run2(t, "audit", "query", "--server", srv.URL(""), "--action", "admit", "--digest", unsigned.String(), "--verdict", "deny", "--namespace", "shop", "--output", "json")
		if code != 0 || !strings.Contains(out, "no signature verified") {
			t.Fatalf("audit query exit %d: want the denial:\n%s%s", code, out, errOut)
		}
	})
}

// run2 runs the portcullis CLI in-process.
func run2(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// promote copies src to dst with go-containerregistry, as crane copy does.
func promote(t *testing.T, src, dst string) {
	t.Helper()
	s, err := name.NewDigest(src)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(s)
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewTag(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(d, img); err != nil {
		t.Fatalf("promote %s to %s: %v", src, dst, err)
	}
}

// TestHelmChart: the chart in deploy/helm renders, with helm itself, the
// same webhook configurations as deploy/webhook.yaml (the ones the
// kube-apiserver test registers), pointed at its own service, and refuses
// to render without the CA bundle or without webhook authentication.
func TestHelmChart(t *testing.T) {
	requireTool(t, "helm")
	chart := filepath.Join("..", "..", "deploy", "helm", "portcullis")
	runTool(t, "", nil, "helm", "lint", chart, "--set", "tls.caBundle=Q0E=", "--set", "auth.clientCASecret=ca")
	out, _ := runTool(t, "", nil, "helm", "template", "gate", chart, "--namespace", "security", "--set", "tls.caBundle=Q0E=", "--set", "auth.clientCASecret=ca")
	wantM, wantV := webhookConfigurations(t, "https://x", []byte("CA"))
	var gotM *admissionregistrationv1.MutatingWebhookConfiguration
	var gotV *admissionregistrationv1.ValidatingWebhookConfiguration
	for doc := range strings.SplitSeq(out, "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatal(err)
		}
		switch head.Kind {
		case "MutatingWebhookConfiguration":
			gotM = &admissionregistrationv1.MutatingWebhookConfiguration{}
			unmarshalYAML(t, doc, gotM)
		case "ValidatingWebhookConfiguration":
			gotV = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			unmarshalYAML(t, doc, gotV)
		}
	}
	if gotM == nil || gotV == nil || len(gotM.Webhooks) != 1 || len(gotV.Webhooks) != 1 {
		t.Fatalf("helm template rendered %v and %v", gotM, gotV)
	}
	check := func(kind string, got, want admissionregistrationv1.ValidatingWebhook, path string) {
		t.Helper()
		if s := got.ClientConfig.Service; s == nil || s.Namespace != "security" || s.Name != "gate-webhook" || *s.Path != path || string(got.ClientConfig.CABundle) != "CA" {
			t.Fatalf("%s client config %+v", kind, got.ClientConfig)
		}
		gotRules, _ := json.Marshal(got.Rules)
		wantRules, _ := json.Marshal(want.Rules)
		if string(gotRules) != string(wantRules) || *got.FailurePolicy != *want.FailurePolicy ||
			*got.TimeoutSeconds != *want.TimeoutSeconds || *got.SideEffects != *want.SideEffects {
			t.Fatalf("%s differs from deploy/webhook.yaml:\n got %+v\nwant %+v", kind, got, want)
		}
		if sel := fmt.Sprint(got.NamespaceSelector.MatchExpressions); !strings.Contains(sel, "kube-system") || !strings.Contains(sel, "security") {
			t.Fatalf("%s namespace selector %s does not exclude kube-system and the release namespace", kind, sel)
		}
	}
	asValidating := func(m admissionregistrationv1.MutatingWebhook) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{Name: m.Name, ClientConfig: m.ClientConfig, Rules: m.Rules, FailurePolicy: m.FailurePolicy,
			SideEffects: m.SideEffects, TimeoutSeconds: m.TimeoutSeconds, NamespaceSelector: m.NamespaceSelector}
	}
	check("mutating", asValidating(gotM.Webhooks[0]), asValidating(wantM.Webhooks[0]), "/mutate")
	check("validating", gotV.Webhooks[0], wantV.Webhooks[0], "/validate")

	_, stderr, err := tryTool(t, "", nil, "helm", "template", "gate", chart, "--set", "auth.clientCASecret=ca")
	if err == nil || !strings.Contains(stderr, "set tls.caBundle") {
		t.Fatalf("helm template without a CA bundle: %v %s", err, stderr)
	}
	_, stderr, err = tryTool(t, "", nil, "helm", "template", "gate", chart, "--set", "tls.caBundle=Q0E=")
	if err == nil || !strings.Contains(stderr, "set auth.clientCASecret or auth.tokenSecret") {
		t.Fatalf("helm template without webhook authentication: %v %s", err, stderr)
	}
}
