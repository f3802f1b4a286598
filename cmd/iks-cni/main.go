// Command iks-cni is the iks CNI plugin (Calico-style veth and /32
// routing) as its own small binary: containerd runs it for every pod
// sandbox added or deleted, and the plugin needs none of the Kubernetes
// packages whose initialisation makes each run of the full iks binary
// cost ~0.1 s and ~100 MB. scripts/build-assets.sh builds it and iks
// carries it like runc; `iks` still answers as iks-cni through argv[0].
package main

import "github.com/iks-dev/iks/agent/cni"

func main() { cni.PluginMain() }
