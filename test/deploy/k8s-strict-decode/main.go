// Command k8s-strict-decode reads a multi-document YAML stream (helm template output) on stdin and
// decodes every object strictly into its Kubernetes API Go type, as the API server's strict field
// validation does: unknown or duplicate fields, wrong types and unknown kinds are errors. It works
// offline: the API types are compiled in. Exit 1 with one line per problem, else the kinds decoded.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	sigsyaml "sigs.k8s.io/yaml"
)

func main() {
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		panic(err)
	}
	decoder := serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()

	reader := utilyaml.NewYAMLReader(bufio.NewReader(os.Stdin))
	problems := 0
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Printf("document %d: %v\n", n, err)
			os.Exit(1)
		}
		var probe map[string]any
		if err := sigsyaml.Unmarshal(doc, &probe); err != nil {
			fmt.Printf("document %d: not YAML: %v\n", n, err)
			problems++
			continue
		}
		if len(probe) == 0 || len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			name := ""
			if md, ok := probe["metadata"].(map[string]any); ok {
				name = fmt.Sprint(md["name"])
			}
			fmt.Printf("ERROR %v/%v %s: %v\n", probe["apiVersion"], probe["kind"], name, err)
			problems++
			continue
		}
		meta, _ := obj.(interface{ GetName() string })
		nm := ""
		if meta != nil {
			nm = meta.GetName()
		}
		fmt.Printf("ok %s/%s %s\n", gvk.GroupVersion().String(), gvk.Kind, nm)
	}
	if problems > 0 {
		os.Exit(1)
	}
}
