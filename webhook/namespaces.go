package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// NamespaceGetTimeout bounds the direct read of a namespace that the
// informer's cache does not hold yet (one created a moment ago).
const NamespaceGetTimeout = 2 * time.Second

// Namespaces gives namespaces' labels from a shared informer on the API
// server's Namespaces ([Config.NamespaceLabels] is its Labels method). It
// fails closed: before the informer has synced, and for a namespace that
// neither its cache nor a direct read knows, Labels returns an error,
// never "no labels".
type Namespaces struct {
	client   kubernetes.Interface
	informer cache.SharedIndexInformer
	log      *slog.Logger
}

// NewNamespaces watches the namespaces of the cluster that cfg reaches;
// call Start, then WaitForSync.
func NewNamespaces(cfg *rest.Config, log *slog.Logger) (*Namespaces, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("webhook: kubernetes client: %w", err)
	}
	return newNamespaces(client, log), nil
}

func newNamespaces(client kubernetes.Interface, log *slog.Logger) *Namespaces {
	if log == nil {
		log = slog.Default()
	}
	lw := cache.NewListWatchFromClient(client.CoreV1().RESTClient(), "namespaces", metav1.NamespaceAll, fields.Everything())
	return &Namespaces{client: client, informer: cache.NewSharedIndexInformer(lw, &corev1.Namespace{}, 0, cache.Indexers{}), log: log}
}

// Start runs the informer until ctx ends.
func (n *Namespaces) Start(ctx context.Context) {
	go n.informer.RunWithContext(ctx)
}

// WaitForSync waits, at most timeout, for the informer's first list.
func (n *Namespaces) WaitForSync(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), n.informer.HasSynced) {
		return fmt.Errorf("webhook: the namespace informer did not sync within %s (can the service account list and watch namespaces?)", timeout)
	}
	return nil
}

// Labels returns the labels of namespace ns: from the informer's cache,
// or, for a namespace it does not hold yet, from a direct read bounded by
// [NamespaceGetTimeout]. Any failure is an error (fail closed).
func (n *Namespaces) Labels(ctx context.Context, ns string) (map[string]string, error) {
	if !n.informer.HasSynced() {
		return nil, fmt.Errorf("the namespace informer has not synced with the API server yet")
	}
	obj, ok, err := n.informer.GetStore().GetByKey(ns)
	if err != nil {
		return nil, fmt.Errorf("namespace cache: %w", err)
	}
	if ok {
		nsObj, isNS := obj.(*corev1.Namespace)
		if !isNS {
			return nil, fmt.Errorf("namespace cache holds a %T", obj)
		}
		return maps.Clone(nsObj.Labels), nil
	}
	// Not in the cache: created after the last event the informer saw.
	ctx, cancel := context.WithTimeout(ctx, NamespaceGetTimeout)
	defer cancel()
	got, err := n.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("namespace %s does not exist", ns)
	}
	if err != nil {
		return nil, fmt.Errorf("reading namespace %s from the API server: %w", ns, err)
	}
	n.log.DebugContext(ctx, "webhook: namespace read directly (not in the informer's cache yet)", "namespace", ns)
	return maps.Clone(got.Labels), nil
}
