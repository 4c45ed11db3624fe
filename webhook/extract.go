package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ContainerImage is one image named by a workload.
type ContainerImage struct {
	// Container is the container's name.
	Container string
	// Image is the reference as written.
	Image string
	// Path is the JSON pointer to the image field, for patches.
	Path string
}

// workload is what the webhook reads of an admitted object.
type workload struct {
	Kind, Name string
	// Meta is the object's metadata; PodMeta the pod template's (the same
	// for a Pod).
	Meta, PodMeta metav1.ObjectMeta
	Spec          *corev1.PodSpec
	// NamespaceLabels are the labels of the namespace, if known.
	NamespaceLabels map[string]string
	// Mode is the namespace's effective mode (set with NamespaceLabels).
	Mode Mode
	// specPath is the JSON pointer to Spec.
	specPath string
	Images   []ContainerImage
}

// supported reports whether group/kind is a workload the webhook checks.
func supported(group, kind string) bool {
	switch group + "/" + kind {
	case "/Pod", "/ReplicationController",
		"apps/Deployment", "apps/ReplicaSet", "apps/StatefulSet", "apps/DaemonSet",
		"batch/Job", "batch/CronJob":
		return true
	}
	return false
}

// extract decodes raw as group/kind (which must be supported) and lists
// its images: containers, then init containers, then ephemeral containers.
func extract(group, kind string, raw []byte) (*workload, error) {
	w := &workload{Kind: kind}
	var tmpl *corev1.PodTemplateSpec
	const tp = "/spec/template"
	path := tp
	unmarshal := func(v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("decoding the %s: %w", kind, err)
		}
		return nil
	}
	switch group + "/" + kind {
	case "/Pod":
		var o corev1.Pod
		if err := unmarshal(&o); err != nil {
			return nil, err
		}
		w.Meta, w.PodMeta, w.Spec, w.specPath = o.ObjectMeta, o.ObjectMeta, &o.Spec, "/spec"
	case "/ReplicationController":
		var o corev1.ReplicationController
		if err := unmarshal(&o); err != nil {
			return nil, err
		}
		w.Meta, tmpl = o.ObjectMeta, o.Spec.Template
	case "apps/Deployment":
		var o appsv1.Deployment
		if err := unmarshal(&o); err != nil {
			return nil, err
		}
		w.Meta, tmpl = o.ObjectMeta, &o.Spec.Template
	case "apps/ReplicaSet":
		var o appsv1.ReplicaSet
		if err := unmarshal(&o); err != nil {
			return nil, err
		}
		w.Meta, tmpl = o.ObjectMeta, &o.Spec.Template
	case "apps/StatefulSet":
		var o appsv1.StatefulSet
		if err := unmarshal(&o); err != nil {
			return nil, err
		}
		w.Meta, tmpl = o.ObjectMeta, &o.Spec.Template
	case "apps/DaemonSet":
		var o appsv1.DaemonSet
		if err := unmarshal(&o); err != nil {
			return nil, err
		}
		w.Meta, tmpl = o.ObjectMeta, &o.Spec.Template
	case "batch/Job":
		var o batchv1.Job
		if err := unmarshal(&o); err != nil {
			return nil, err
		}
		w.Meta, tmpl = o.ObjectMeta, &o.Spec.Template
	case "batch/CronJob":
		var o batchv1.CronJob
		if err := unmarshal(&o); err != nil {
			return nil, err
		}
		w.Meta, tmpl, path = o.ObjectMeta, &o.Spec.JobTemplate.Spec.Template, "/spec/jobTemplate/spec/template"
	default:
		return nil, fmt.Errorf("kind %s/%s is not a workload", group, kind)
	}
	if w.Spec == nil {
		if tmpl == nil {
			tmpl = &corev1.PodTemplateSpec{}
		}
		w.PodMeta, w.Spec, w.specPath = tmpl.ObjectMeta, &tmpl.Spec, path+"/spec"
	}
	w.Name = w.Meta.Name
	if w.Name == "" {
		w.Name = w.Meta.GenerateName
	}
	for i, c := range w.Spec.Containers {
		w.add(c.Name, c.Image, "containers", i)
	}
	for i, c := range w.Spec.InitContainers {
		w.add(c.Name, c.Image, "initContainers", i)
	}
	for i, c := range w.Spec.EphemeralContainers {
		w.add(c.Name, c.Image, "ephemeralContainers", i)
	}
	return w, nil
}

func (w *workload) add(name, image, list string, i int) {
	w.Images = append(w.Images, ContainerImage{
		Container: name,
		Image:     image,
		Path:      w.specPath + "/" + list + "/" + strconv.Itoa(i) + "/image",
	})
}

// serviceAccount is "namespace/name" of the pod's service account.
func (w *workload) serviceAccount(ns string) string {
	sa := w.Spec.ServiceAccountName
	if sa == "" {
		sa = w.Spec.DeprecatedServiceAccount //nolint:staticcheck // still honoured by the API server
	}
	if sa == "" {
		sa = "default"
	}
	return ns + "/" + sa
}

// annotation is the value of key on the object or, failing that, on its pod
// template (pods created by a controller carry only the template's).
func (w *workload) annotation(key string) (string, bool) {
	if v, ok := w.Meta.Annotations[key]; ok {
		return v, true
	}
	v, ok := w.PodMeta.Annotations[key]
	return v, ok
}
